"""A value PostgreSQL refuses is the client's mistake: 400 in the envelope, never a 500."""
from __future__ import annotations

import pytest

from common import errors
from common.db import Database


@pytest.fixture()
def db(vault_db):
    database = Database(vault_db, service="data-errors", migrations_package=None)
    yield database
    database.close()


@pytest.mark.parametrize("statement, params", [
    ("SELECT %(v)s::int", {"v": 2**40}),             # numeric value out of range
    ("SELECT 1 OFFSET %(v)s", {"v": 2**63}),         # beyond bigint
    ("SELECT %(v)s::text", {"v": "a\x00b"}),         # NUL in text (refused by the driver)
    ("SELECT %(v)s::uuid", {"v": "not-a-uuid"}),     # invalid text representation
])
def test_a_value_the_database_refuses_is_400(db, statement, params):
    with pytest.raises(errors.ApiError) as caught:
        with db.cursor() as cur:
            cur.execute(statement, params)
    assert caught.value.status == 400 and caught.value.code == "INVALID_REQUEST_DATA"
    assert db.ping() and not db.known_down  # the database is fine and still believed so


@pytest.mark.parametrize("statement, params", [
    # libpq refuses to send more than 65,535 parameters (an OperationalError without SQLSTATE,
    # on a sound connection): issue 18's 70,000 keywords took the process down as an outage.
    ("SELECT " + " + ".join(["%s::int"] * 70_000), [1] * 70_000),
    ("SELECT " + ", ".join(["1"] * 2_000), None),    # the server's limit: 54011 too_many_columns
])
def test_a_statement_over_a_database_limit_is_400_and_no_outage(db, statement, params):
    for open_cursor in (db.cursor, db.transaction):  # in a transaction too
        with pytest.raises(errors.ApiError) as caught:
            with open_cursor() as cur:
                cur.execute(statement, params)
        assert caught.value.status == 400 and caught.value.code == "VALUE_OUT_OF_BOUNDS"
        assert not db.known_down
    assert db.ping() and not db.known_down
