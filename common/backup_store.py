"""The queries of a backup and a restore (common/backup.py): the exported snapshot a dump is
taken in, and what the manifest says that snapshot held."""
from __future__ import annotations

import psycopg
from psycopg import sql


def export_snapshot(conn: psycopg.Connection) -> str:
    """Open a read-only REPEATABLE READ transaction on `conn` (autocommit) and export its
    snapshot, for pg_dump to take; end it with release_snapshot."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    return conn.execute("SELECT pg_export_snapshot()").fetchone()[0]


def release_snapshot(conn: psycopg.Connection) -> None:
    conn.execute("COMMIT")


def server_version(conn: psycopg.Connection) -> str:
    return conn.execute("SHOW server_version").fetchone()[0]


def schema_versions(conn: psycopg.Connection) -> dict[str, list[int]]:
    """The migrations applied, per set (service)."""
    rows = conn.execute("SELECT service, version FROM schema_migrations ORDER BY service, version").fetchall()
    versions: dict[str, list[int]] = {}
    for service, version in rows:
        versions.setdefault(service, []).append(version)
    return versions


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every table (partitions each on their own) of the database's schema."""
    tables = [row[0] for row in conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname""").fetchall()]
    return {table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            for table in tables}
