"""A small SSH server standing in for a Linux target host (no sshd on the test machine).

paramiko's server side with password authentication against a `user:password`
file; exec requests run `bash -c <command>` in a subprocess with a fake HOME,
stdin/stdout/stderr wired to the channel and the exit status sent back. A fake
`chpasswd` on PATH rewrites the password file, so a rotation script changes
what the server accepts, like on a real host.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from pathlib import Path

import paramiko

FAKE_CHPASSWD = """#!/bin/bash
# user:password lines on stdin replace those users' lines in the server's password file
set -e
while IFS= read -r line || [ -n "$line" ]; do
  user="${line%%:*}"
  awk -F: -v u="$user" '$1 != u' "$SSH_TEST_PASSWD" > "$SSH_TEST_PASSWD.new"
  printf '%s\\n' "$line" >> "$SSH_TEST_PASSWD.new"
  mv "$SSH_TEST_PASSWD.new" "$SSH_TEST_PASSWD"
done
"""


class FakeSSHHost:
    """Runs until stop(); `passwords` is the live `user -> password` table, `commands` the exec'd command lines."""

    def __init__(self, root: Path, users: dict[str, str]):
        self.root = Path(root)
        self.home = self.root / "home"
        self.bin = self.root / "bin"
        self.passwd = self.root / "passwd"
        for folder in (self.home, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        chpasswd = self.bin / "chpasswd"
        chpasswd.write_text(FAKE_CHPASSWD)
        chpasswd.chmod(0o755)
        self.set_passwords(users)
        self.host_key = paramiko.ECDSAKey.generate()
        self.commands: list[str] = []
        self.auth_attempts: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.address, self.port = self._sock.getsockname()[:2]
        self._transports: list[paramiko.Transport] = []
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def passwords(self) -> dict[str, str]:
        table = {}
        for line in self.passwd.read_text().splitlines():
            user, _, password = line.partition(":")
            table[user] = password
        return table

    def set_passwords(self, users: dict[str, str]) -> None:
        self.passwd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))

    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self._sock.close()
        for transport in self._transports:
            transport.close()

    def _accept(self):
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Interface(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def run(self, channel: paramiko.Channel, command: str) -> None:
        self.commands.append(command)
        env = {"HOME": str(self.home), "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "SHELL": "/bin/bash", "SSH_TEST_PASSWD": str(self.passwd), "LANG": "C.UTF-8"}
        process = subprocess.Popen(["bash", "-c", command], cwd=self.home, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def feed():
            try:
                while data := channel.recv(65536):
                    process.stdin.write(data)
                    process.stdin.flush()
            except (OSError, EOFError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    process.stdin.close()

        def pump(stream, send):
            with contextlib.suppress(OSError, EOFError):
                while data := stream.read1(65536):
                    send(data)

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=pump, args=(process.stdout, channel.sendall), daemon=True),
                   threading.Thread(target=pump, args=(process.stderr, channel.sendall_stderr), daemon=True)]
        for thread in threads:
            thread.start()
        status = process.wait()
        for thread in threads[1:]:
            thread.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
        with contextlib.suppress(OSError, EOFError):
            channel.send_exit_status(status)
            channel.close()


class _Interface(paramiko.ServerInterface):
    def __init__(self, host: FakeSSHHost):
        self.host = host

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        self.host.auth_attempts.append(username)
        if self.host.passwords.get(username) == password:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self.host.run, args=(channel, command.decode()), daemon=True).start()
        return True


@contextlib.contextmanager
def fake_ssh_host(root: Path, users: dict[str, str]):
    host = FakeSSHHost(root, users)
    try:
        yield host
    finally:
        host.stop()
