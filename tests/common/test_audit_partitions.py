"""The audit trail's daily partitions: made ahead, queried across, dropped whole by retention,
and the migration that moved an existing table into them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from common import audit_store
from common.db import Database, _migration_files
from tests import support

SERVICE = "vault"


@pytest.fixture()
def freshly_migrated_db(db_server):
    """A database of its own, migrated by this test's run (what migrating makes is the point);
    the other tests take rolled_back_db (tests/rollback_fixtures.py)."""
    with support.migrated_database(db_server, "audit_parts", service=SERVICE) as database:
        yield database


def _partitions(db: Database) -> list[str]:
    with db.cursor() as cur:
        cur.execute("""SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'audit_events'::regclass ORDER BY c.relname""")
        return [row["relname"] for row in cur.fetchall()]


def _day(offset: int) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=offset)


def _partition_of(day: datetime) -> str:
    return f"audit_events_{day:%Y%m%d}"


def _insert(db: Database, occurred: datetime, *, principal="p", action="secret.read", target="secret:a",
            outcome="success", service=SERVICE) -> None:
    with db.cursor() as cur:
        cur.execute("""INSERT INTO audit_events (service, occurred, principal, action, target, outcome)
                       VALUES (%s, %s, %s, %s, %s, %s)""", (service, occurred, principal, action, target, outcome))


def _ensure(db: Database, first: int, last: int) -> None:
    with db.cursor() as cur:
        cur.execute("SELECT audit_ensure_partitions(%s, %s)", (_day(first).date(), _day(last).date()))


def test_the_partitions_of_the_days_ahead_are_there_after_migrating(freshly_migrated_db):
    parts = _partitions(freshly_migrated_db)
    for offset in range(0, 8):  # today and the seven days after it
        assert _partition_of(_day(offset)) in parts
    assert "audit_events_default" in parts
    _insert(freshly_migrated_db, _day(3) + timedelta(hours=5))
    with freshly_migrated_db.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM {_partition_of(_day(3))}")
        assert cur.fetchone()["n"] == 1
        cur.execute("SELECT count(*) AS n FROM audit_events_default")
        assert cur.fetchone()["n"] == 0


def test_queries_by_principal_target_action_and_time_are_right_across_partitions(rolled_back_db):
    _ensure(rolled_back_db, -5, 0)
    # Two events a day over six days, one of them another service's, at the edges of days too.
    expected = []
    for offset in range(-5, 1):
        for hour, principal, target, action in ((0, "alice", "secret:x", "secret.read"),
                                                (23, "bob", "secret:y", "secret.write")):
            occurred = _day(offset) + timedelta(hours=hour, minutes=59 if hour else 0)
            _insert(rolled_back_db, occurred, principal=principal, target=target, action=action)
            expected.append((occurred, principal, target, action))
    _insert(rolled_back_db, _day(-2) + timedelta(hours=12), principal="alice", service="secrets-manager")
    assert len({_partition_of(e[0]) for e in expected}) == 6

    def search(**filters):
        total, rows = audit_store.search(rolled_back_db, SERVICE, filters=filters, offset=0, limit=100, sortdir="DESC")
        assert total == len(rows)
        return [(r["occurred"], r["principal"], r["target"], r["action"]) for r in rows]

    newest_first = sorted(expected, reverse=True)
    assert search() == newest_first
    assert search(principal="alice") == [e for e in newest_first if e[1] == "alice"]
    assert search(target="secret:y") == [e for e in newest_first if e[2] == "secret:y"]
    assert search(action="secret.write") == [e for e in newest_first if e[3] == "secret.write"]
    since, until = _day(-3), _day(-1) + timedelta(hours=23, minutes=59)
    assert search(since=since, until=until) == [e for e in newest_first if since <= e[0] < until]
    assert search(principal="bob", since=since) == [e for e in newest_first if e[1] == "bob" and e[0] >= since]
    # Paging walks across partition boundaries without losing or repeating a row.
    pages = [audit_store.search(rolled_back_db, SERVICE, filters={}, offset=offset, limit=5, sortdir="ASC")[1] for offset in (0, 5, 10)]
    walked = [(r["occurred"], r["principal"], r["target"], r["action"]) for page in pages for r in page]
    assert walked == sorted(expected)


def test_retention_drops_whole_partitions_only(rolled_back_db):
    _ensure(rolled_back_db, -40, 0)
    for offset in (-40, -31, -30, -29, 0):
        _insert(rolled_back_db, _day(offset) + timedelta(hours=1), principal=f"day{offset}")
    with rolled_back_db.transaction() as cur:
        from common import audit_partition_store

        result = audit_partition_store.maintain(cur, retention_days=30)
    assert result["dropped"] == 10  # day -40 .. day -31: no event of them is younger than 30 days
    parts = _partitions(rolled_back_db)
    assert _partition_of(_day(-31)) not in parts and _partition_of(_day(-40)) not in parts
    assert _partition_of(_day(-30)) in parts  # the end of that day is within 30 days: kept whole
    total, rows = audit_store.search(rolled_back_db, SERVICE, filters={}, offset=0, limit=100, sortdir="ASC")
    assert [r["principal"] for r in rows] == ["day-30", "day-29", "day0"]


def test_without_retention_nothing_is_dropped(rolled_back_db):
    _ensure(rolled_back_db, -400, -399)
    _insert(rolled_back_db, _day(-400))
    assert rolled_back_db.maintain_audit_partitions() == {"created": 0, "dropped": 0}
    assert _partition_of(_day(-400)) in _partitions(rolled_back_db)


def test_a_late_partition_takes_over_the_rows_the_default_partition_caught(rolled_back_db):
    late = _day(20) + timedelta(hours=2)  # beyond the days made ahead
    _insert(rolled_back_db, late, principal="early-bird")
    with rolled_back_db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM audit_events_default")
        assert cur.fetchone()["n"] == 1
    _ensure(rolled_back_db, 20, 20)
    with rolled_back_db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM audit_events_default")
        assert cur.fetchone()["n"] == 0
        cur.execute(f"SELECT principal FROM {_partition_of(late)}")
        assert cur.fetchone()["principal"] == "early-bird"


def test_the_migration_moves_an_existing_trail_into_partitions(rolled_back_connection):
    """A schema with only the first migration and events of several days, then 0002: a schema of
    its own in the rolled-back transaction is to these statements what an empty database is."""
    files = {version: sql for version, _, sql in _migration_files("common")}
    conn = rolled_back_connection
    conn.execute("CREATE SCHEMA audit_move; SET LOCAL search_path TO audit_move")
    conn.execute(files[1])
    for offset in (-3, -1, 0):
        conn.execute("""INSERT INTO audit_events (service, occurred, principal, action, target, outcome)
                        VALUES ('vault', %s, 'old', 'secret.read', 'secret:o', 'success')""",
                     (_day(offset) + timedelta(hours=6),))
    before = conn.execute("SELECT id, occurred FROM audit_events ORDER BY id").fetchall()
    conn.execute(files[2])
    after = conn.execute("SELECT id, occurred FROM audit_events ORDER BY id").fetchall()
    assert after == before
    assert conn.execute("SELECT count(*) AS n FROM audit_events_default").fetchone()["n"] == 0
    parts = {r["relname"] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit_events'::regclass")}
    assert {_partition_of(_day(o)) for o in (-3, -2, -1, 0, 7)} <= parts
    # New events keep numbering after the old ones.
    new_id = conn.execute("""INSERT INTO audit_events (service, principal, action, target, outcome)
                             VALUES ('vault', 'new', 'secret.read', 'secret:o', 'success') RETURNING id""").fetchone()
    assert new_id["id"] > before[-1]["id"]
