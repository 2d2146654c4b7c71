"""Rotation over SSH: log in and run the host's script template with the new password.

The rendered script holds passwords, so it is never logged, never put in an
error message, and never put on a Linux command line (other local users can
read those in /proc): it is sent on the session's standard input to a shell.
The script's output is drained and discarded for the same reason; only its
exit status is reported.
"""
from __future__ import annotations

import base64
import logging
import os
import socket
import time

import paramiko

from ..script_templates import rendering
from . import binding
from .base import RotationFailed, Target, TargetUnreachable

log = logging.getLogger(__name__)

PROTOCOL = "SSH"
CONNECT_TIMEOUT = 10
SCRIPT_TIMEOUT = 120

# Run by the account's login shell, whatever it is (sh, bash, zsh, fish, tcsh all
# parse this line alike); the script then arrives on stdin to bash, or sh without it.
LINUX_RUNNER = "exec sh -c 'if command -v bash >/dev/null 2>&1; then exec bash -s; else exec sh -s; fi'"


class LoginRefused(RotationFailed):
    """The SSH server answered and refused these credentials."""

    unchanged = True


class SSHDriver:
    def __init__(self, script_timeout: float = SCRIPT_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT):
        self.script_timeout = script_timeout
        self.connect_timeout = connect_timeout

    def rotate(self, target: Target, new_password: str) -> None:
        if not target.script:
            raise RotationFailed("no script template is configured for this host", unchanged=True)
        values = {
            "Username": target.account,
            "Password": new_password,
            "OldPassword": target.old_password or "",
            "Address": target.address,
            "Port": str(target.port),
        }
        try:
            script = rendering.render(target.script, values, target.operating_system)
        except rendering.TemplateError as exc:
            raise RotationFailed(f"script template error at position {exc.position}: {exc.message}",
                                 unchanged=True) from None
        except ValueError:
            raise RotationFailed(f"unsupported operating_system {target.operating_system!r}", unchanged=True) from None
        command, stdin = _command(script, target.operating_system)
        user, password = target.login()
        log.info("rotating SSH account %r on %s:%s as %r", target.account, target.address, target.port, user)
        with self._login(target, user, password) as client:
            status = self._run(client, command, stdin)
        if status != 0:
            raise RotationFailed(f"script exited with status {status}")

    def verify(self, target: Target, password: str) -> bool:
        try:
            with self._login(target, target.account, password):
                return True
        except LoginRefused:
            return False

    def check_bound(self, target: Target) -> None:
        binding.require(binding.host_fingerprint(PROTOCOL, target.address, target.port,
                                                 target.certificate_validation_options),
                        target.bound_to, where=f"{target.address}:{target.port}", whose="host")

    def _login(self, target: Target, user: str, password: str) -> paramiko.SSHClient:
        self.check_bound(target)  # before any byte goes to the server
        client = paramiko.SSHClient()
        _trust_host_keys(client, target.certificate_validation_options)
        try:
            client.connect(target.address, port=int(target.port), username=user, password=password,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, channel_timeout=self.connect_timeout,
                           look_for_keys=False, allow_agent=False)
        except Exception as exc:
            client.close()
            fact = _connect_failure(exc)
            if isinstance(exc, paramiko.AuthenticationException):
                raise LoginRefused(fact) from None
            if isinstance(exc, (OSError, socket.timeout, paramiko.ssh_exception.NoValidConnectionsError)):
                raise TargetUnreachable(fact) from None
            # A host key or protocol refusal before any login: nothing ran there.
            raise RotationFailed(fact, unchanged=True) from None
        return client

    def _run(self, client: paramiko.SSHClient, command: str, stdin: bytes | None) -> int:
        try:
            channel = client.get_transport().open_session(timeout=self.connect_timeout)
            channel.settimeout(self.connect_timeout)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            deadline = time.monotonic() + self.script_timeout
            # Drain both streams (a script blocks once a window fills) and keep nothing.
            while not channel.exit_status_ready():
                if time.monotonic() > deadline:
                    channel.close()
                    raise RotationFailed(f"script did not finish within {self.script_timeout:g} seconds")
                busy = False
                if channel.recv_ready():
                    channel.recv(65536)
                    busy = True
                if channel.recv_stderr_ready():
                    channel.recv_stderr(65536)
                    busy = True
                if not busy:
                    time.sleep(0.02)
            return channel.recv_exit_status()
        except RotationFailed:
            raise
        except Exception as exc:
            raise RotationFailed(f"running the script failed: {_connect_failure(exc)}") from None


def _command(script: str, operating_system: str) -> tuple[str, bytes | None]:
    """(command line, standard input) that run the rendered script on the target."""
    if operating_system == "WINDOWS":
        # -EncodedCommand survives either default shell (cmd or PowerShell) without any
        # quoting; Windows shows command lines of other users' processes only to admins.
        encoded = base64.b64encode(("$ErrorActionPreference = 'Stop'\n" + script).encode("utf-16-le")).decode()
        return f"powershell.exe -NoProfile -NonInteractive -EncodedCommand {encoded}", None
    # Braces make the shell read the whole script before running any of it, so a
    # command in it that reads stdin gets end-of-file, not the rest of the script.
    return LINUX_RUNNER, ("{\n" + script + "\n}\n").encode()


def _trust_host_keys(client: paramiko.SSHClient, option: str | None) -> None:
    if (option or "").strip().upper() == "DISABLED":
        log.warning("host key checking is disabled for this host (certificate_validation_options=DISABLED)")
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.load_system_host_keys()
    except (OSError, paramiko.SSHException):
        log.warning("the system known_hosts file could not be read")
    if option and os.path.isfile(option):
        try:
            # load_system_host_keys, not load_host_keys: nothing is ever written back.
            client.load_system_host_keys(option)
        except (OSError, paramiko.SSHException):
            log.warning("the known_hosts file in certificate_validation_options could not be read")


def _connect_failure(exc: BaseException) -> str:
    """A safe description of an SSH failure, from its type only."""
    if isinstance(exc, paramiko.AuthenticationException):
        return "authentication failed"
    if isinstance(exc, paramiko.BadHostKeyException):
        return "host key does not match the known host key"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        # paramiko raises it only when every address refused or was unreachable
        refused = all(isinstance(e, ConnectionRefusedError) for e in exc.errors.values())
        return "connection refused" if refused else "host unreachable"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "connection timed out"
    if isinstance(exc, socket.gaierror):
        return "host name could not be resolved"
    if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
        return "host key is not trusted (not in known_hosts)"
    if isinstance(exc, paramiko.ChannelException):
        return "the server refused to open a session"
    if isinstance(exc, paramiko.SSHException):
        return f"SSH protocol error ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"network error ({type(exc).__name__})"
    return f"unexpected error ({type(exc).__name__})"
