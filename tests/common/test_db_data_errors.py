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
