"""A real Active Directory domain controller: Samba (`samba-tool domain provision`), for the AD path.

Samba binds the fixed ports 127.0.0.1:389, 636, 88 and 445, so one instance serves the
whole test session, and test sessions on one machine take turns: each holds a machine-wide
lock (LOCK_FILE) while its DC runs, and one that cannot get it in LOCK_WAIT_SECONDS skips. Provisioning takes about 15 s
and the DC answers LDAPS about 12 s later on this kind of machine. `old password allowed
period = 0` makes a reset password stop binding at once (AD's default lets the old one work
for an hour); password age and history limits are off so tests may reset at will.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REALM, DOMAIN = "CORP.TEST", "CORP"
BASE_DN = "DC=corp,DC=test"
USERS_DN = f"CN=Users,{BASE_DN}"
PORTS = (389, 636, 88, 445)
LOCK_FILE = "/tmp/secrets-suite-samba-dc.lock"
LOCK_WAIT_SECONDS = 300


class Busy(Exception):
    """Another test session on this machine runs its DC."""


def available() -> str | None:
    if not (shutil.which("samba-tool") and shutil.which("samba")):
        return "Samba is not installed (Debian: apt-get install samba winbind; .ci/run does)"
    if os.geteuid() != 0:
        return "a Samba domain controller needs root"
    return None


def _rpc_port_range() -> str:
    """Ports for Samba's RPC endpoints above the kernel's ephemeral range: its default (49152 up)
    lies inside Linux's, so a client connection of any other test could hold 49153 and Samba
    would exit with NT_STATUS_ADDRESS_ALREADY_ASSOCIATED."""
    try:
        high = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        high = 60999
    low = min(high + 1, 65535 - 200)
    return f"{low}-{low + 200}"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class SambaDC:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="sm-samba-"))
        self.admin_password = "Adm1n-" + secrets.token_urlsafe(10) + "!"
        self.process: subprocess.Popen | None = None
        self.provision_seconds = self.start_seconds = 0.0

    @property
    def conf(self) -> str:
        return str(self.folder / "etc" / "smb.conf")

    def tool(self, *args: str) -> None:
        subprocess.run(["samba-tool", *args, "-s", self.conf], check=True, cwd=self.folder,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def _lock(self) -> None:
        self._lock_file = open(LOCK_FILE, "a")
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock_file.close()
                    raise Busy(f"another test session on this machine kept the Samba DC for {LOCK_WAIT_SECONDS} s")
                time.sleep(1)

    def __enter__(self) -> "SambaDC":
        self._lock()
        try:
            return self._start()
        except BaseException:
            self._lock_file.close()
            raise

    def _start(self) -> "SambaDC":
        deadline = time.monotonic() + 120
        while any(_listening(p) for p in PORTS):  # another session's DC on this machine
            if time.monotonic() > deadline:
                raise RuntimeError("the AD ports (389, 636, 88, 445) stay busy")
            time.sleep(1)
        started = time.monotonic()
        subprocess.run(["samba-tool", "domain", "provision", f"--targetdir={self.folder}", f"--realm={REALM}",
                        f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
                        f"--adminpass={self.admin_password}", "--option=interfaces=lo",
                        "--option=bind interfaces only=yes"],
                       check=True, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        self.provision_seconds = time.monotonic() - started
        text = Path(self.conf).read_text()
        Path(self.conf).write_text(text.replace("[global]", "[global]\n\told password allowed period = 0"
                                                f"\n\trpc server dynamic port range = {_rpc_port_range()}", 1))
        started = time.monotonic()
        self.log = open(self.folder / "samba.log", "wb")
        self.process = subprocess.Popen(["samba", "-i", "-M", "single", "-s", self.conf], cwd=self.folder,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_for_ldaps()
            self.start_seconds = time.monotonic() - started
            self.tool("domain", "passwordsettings", "set", "--min-pwd-age=0", "--history-length=0")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_ldaps(self) -> None:
        from secrets_manager_service.drivers import ldap as driver

        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("samba exited: " + (self.folder / "samba.log").read_text(errors="replace")[-1500:])
            try:
                with driver.connect(self.endpoint()):
                    return
            except driver.DirectoryError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        self.stop()
        self._lock_file.close()  # the next session's turn

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # Its smbd and winbindd children end with it.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def endpoint(self, protocol: str = "LDAPS"):
        from secrets_manager_service.drivers import ldap as driver

        unbound = driver.Endpoint(type="AD", protocol=protocol, address="127.0.0.1",
                                  port=636 if protocol == "LDAPS" else 389, bind_dn=f"Administrator@{REALM.lower()}",
                                  bind_password=self.admin_password, skip_strict_cert_check=True)
        return dataclasses.replace(unbound, bound_to=unbound.fingerprint)  # its password was set for it

    def add_user(self, name: str, password: str) -> str:
        self.tool("user", "create", name, password, f"--given-name={name}", f"--mail-address={name}@corp.test")
        return f"CN={name},{USERS_DN}"
