"""tests/round_trips.py counts what a request costs once warm: a statement that reaches psycopg's
prepare threshold inside the counted block is not prepared there (its own round trip, once per
connection, made CI's checkout count 7 where 6 is the warm figure)."""
from __future__ import annotations

from psycopg_pool import ConnectionPool

from tests import round_trips


def test_a_statement_reaching_the_prepare_threshold_costs_no_extra_round_trip(vault_db):
    with ConnectionPool(vault_db, min_size=1, max_size=1, open=True,
                        kwargs={"prepare_threshold": 2, "autocommit": True}) as pool:
        with pool.connection() as conn:
            for n in range(2):  # twice: the next run would prepare it
                conn.execute("SELECT %s::int", (n,))
        with round_trips.counted(pool) as counter:
            with pool.connection() as conn:
                conn.execute("SELECT %s::int", (2,))
        assert counter.round_trips == 1, counter.statements
        with pool.connection() as conn:  # the connection's own threshold again afterwards
            assert conn.prepare_threshold == 2
