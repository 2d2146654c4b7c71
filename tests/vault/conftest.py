"""Fixtures the Vault's test modules share (pytest finds them here; no module imports another's)."""
from __future__ import annotations

import psycopg
import pytest


@pytest.fixture()
def svc(tokens):
    """Headers of a token with the `service` scope (the versioned API's data routes)."""
    return tokens.headers("service")


@pytest.fixture()
def sql(vault_db):
    """An autocommit connection to the Vault's test database, for looking at (and moving) rows."""
    with psycopg.connect(vault_db, autocommit=True) as conn:
        yield conn
