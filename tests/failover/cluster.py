"""A PostgreSQL primary and a streaming standby on this machine, from Debian's server binaries
(postgresql-15 under /usr/lib/postgresql/15/bin), on free ports of 127.0.0.1, for the failover
test. Synchronous (the standby must have flushed a commit before it is acknowledged) or
asynchronous. PostgreSQL refuses to run as root: as root, every server command runs as the
`postgres` user (runuser)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from tests.support import TcpLink, free_port

BINDIR = Path(os.environ.get("PG_SERVER_BINDIR", "/usr/lib/postgresql/15/bin"))
STANDBY_NAME = "standby1"


def missing() -> str | None:
    if not (BINDIR / "postgres").exists():
        return f"PostgreSQL's server binaries are not in {BINDIR} (apt-get install postgresql-15)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as postgres"
    return None


class Pair:
    def __init__(self, folder: Path, *, synchronous: bool):
        self.folder, self.synchronous = folder, synchronous
        self.primary_dir, self.standby_dir = folder / "primary", folder / "standby"
        self.primary_port, self.standby_port = free_port(), free_port()
        self.running: list[Path] = []
        self.replication_link: TcpLink | None = None  # the standby streams through it, to be cut

    # --- the servers ------------------------------------------------------

    def _as_postgres(self, *command, check=True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{Path(str(command[0])).name} failed: {done.stderr.strip()[-1500:]}")
        return done

    def start(self) -> "Pair":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.parent.chmod(0o755)  # (a private temp folder) the postgres user must reach it
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(BINDIR / "initdb", "-D", self.primary_dir, "-U", "postgres", "--auth=trust", "--no-sync")
        self._configure(self.primary_dir, self.primary_port, synchronous_standby_names=(
            f"'{STANDBY_NAME}'" if self.synchronous else "''"))
        self._pg_ctl_start(self.primary_dir)
        self.replication_link = TcpLink("127.0.0.1", self.primary_port).start()
        # -R writes the standby's primary_conninfo from these parameters: it streams through the link.
        self._as_postgres(BINDIR / "pg_basebackup", "-D", self.standby_dir, "-R", "-X", "stream", "--no-sync",
                          f"--dbname=host=127.0.0.1 port={self.replication_link.port} user=postgres "
                          f"application_name={STANDBY_NAME}")
        # The standby's copy of postgresql.conf names itself as the synchronous standby: once
        # promoted, with no standby of its own, every commit would wait for one forever. Who
        # promotes (CloudNativePG, Patroni, an operator) sets this for the new topology.
        self._configure(self.standby_dir, self.standby_port, synchronous_standby_names="''")
        self._pg_ctl_start(self.standby_dir)
        self._wait_until_streaming()
        return self

    def _configure(self, data_dir: Path, port: int, **extra) -> None:
        settings = {
            "port": port, "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.folder}'",
            "wal_level": "replica", "max_wal_senders": 5, "hot_standby": "on", "fsync": "on",
            "max_connections": 60, "shared_buffers": "'32MB'", "wal_keep_size": "'64MB'",
            **extra,
        }
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# failover test\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))

    def _pg_ctl_start(self, data_dir: Path) -> None:
        self._as_postgres(BINDIR / "pg_ctl", "start", "-D", data_dir, "-w", "-t", "60", "-l", data_dir / "server.log")
        self.running.append(data_dir)

    def _wait_until_streaming(self) -> None:
        wanted = "sync" if self.synchronous else "async"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(self.primary_url("postgres"), autocommit=True) as conn:
                row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                                   (STANDBY_NAME,)).fetchone()
            if row and row[0] == wanted:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the standby is not streaming ({wanted})")

    def crash_primary(self) -> None:
        """The primary dies as in a power cut: no shutdown checkpoint, nothing flushed on the way out."""
        self._as_postgres(BINDIR / "pg_ctl", "stop", "-D", self.primary_dir, "-m", "immediate", "-w")
        self.running.remove(self.primary_dir)

    def cut_replication(self) -> None:
        """The standby loses the primary (a network partition): its stream breaks, reconnecting fails."""
        self.replication_link.reject()

    def cancel_commits_waiting_for_the_standby(self) -> int:
        """pg_cancel_backend on every commit waiting for the synchronous standby, as an operator
        (or a pooler's timeout) unsticking the database would: PostgreSQL then reports those
        commits as done, with a WARNING, though the standby never got them."""
        with psycopg.connect(self.primary_url("postgres"), autocommit=True) as conn:
            return conn.execute("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
                                "WHERE wait_event = 'SyncRep'").fetchone()[0]

    def promote_standby(self) -> None:
        self._as_postgres(BINDIR / "pg_ctl", "promote", "-D", self.standby_dir, "-w", "-t", "60")

    def stop(self) -> None:
        if self.replication_link:
            self.replication_link.cut()
        for data_dir in list(self.running):
            self._as_postgres(BINDIR / "pg_ctl", "stop", "-D", data_dir, "-m", "fast", "-w", check=False)
            self.running.remove(data_dir)

    # --- how clients reach them ---------------------------------------------

    def primary_url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.primary_port}/{dbname}"

    def standby_url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.standby_port}/{dbname}"

    def service_url(self, dbname: str) -> str:
        """Both hosts; libpq takes the one that accepts writes (the primary, then the promoted standby)."""
        return (f"postgresql://postgres@127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}/{dbname}"
                "?target_session_attrs=read-write")

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.primary_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
