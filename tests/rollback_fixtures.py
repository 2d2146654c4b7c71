"""Fixtures for in-process database tests whose every write is undone by one ROLLBACK.

A plugin (tests/conftest.py names it in pytest_plugins). `rolled_back_connection` is a
connection inside a transaction that is rolled back when the test ends; `rolled_back_db` is
the common.db.Database the stores take, running every cursor() and transaction() on that
connection as a savepoint (so a statement that fails undoes only its own block, as it would
on its own connection). Both work on one database, migrated with the Vault's schema (the
common migrations too) once per session: each test finds it as the migrations left it, at
the cost of a BEGIN and a ROLLBACK instead of creating, migrating and dropping a database.

Not for what needs other sessions to see the writes (an app's own pool, the audit chainer's
snapshots, concurrent transactions, migrations): those keep databases of their own."""
from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from psycopg.rows import dict_row

from common.db import Database, _translated_errors
from tests import support

ROLLBACK_SERVICE = "vault"


@pytest.fixture(scope="session")
def rollback_database_url(db_server):
    """A database migrated once for the session, only ever changed by transactions rolled back."""
    with support.fresh_database(db_server, "rolled_back") as url:
        database = Database(url, service=ROLLBACK_SERVICE, migrations_package="vault_service")
        try:
            database.migrate()
        finally:
            database.close()
        yield url


@pytest.fixture()
def rolled_back_connection(rollback_database_url):
    """A connection (rows as dicts) inside a transaction rolled back when the test ends."""
    with psycopg.connect(rollback_database_url, autocommit=True, row_factory=dict_row) as conn:
        with conn.transaction(force_rollback=True):
            yield conn


@pytest.fixture()
def rolled_back_db(rolled_back_connection):
    """The Database stores take, on the test's rolled-back connection."""
    return OneConnectionDatabase(rolled_back_connection, service=ROLLBACK_SERVICE)


class OneConnectionDatabase(Database):
    """A Database whose cursor() and transaction() are savepoints on one open transaction,
    with the same translation of database errors (Conflict, DatabaseUnavailable, 400s)."""

    def __init__(self, conn: psycopg.Connection, *, service: str):
        super().__init__(conn.info.dsn, service=service, migrations_package=None)
        self._conn = conn

    @contextmanager
    def _connection(self):
        with _translated_errors(), self._conn.transaction():
            yield self._conn

    @contextmanager
    def transaction(self):
        with self._connection() as conn, conn.cursor() as cur:
            yield cur

    cursor = transaction  # Database.cursor() gets its connection from the pool, not _connection()

    def close(self) -> None:
        pass  # the fixture's connection is closed by the fixture
