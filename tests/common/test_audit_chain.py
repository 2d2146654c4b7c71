"""The audit trail's hash chain: linked by a chainer after the inserts, never forked by
concurrent writers or chainers, and `verify` naming the first event that was changed, deleted,
inserted or moved by SQL, or a partition dropped that retention did not drop."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from common import audit, audit_chain, audit_partition_store
from common.db import Database
from tests import support

SERVICE = "vault"


@pytest.fixture()
def db(db_server):
    with support.migrated_database(db_server, "audit_chain", service=SERVICE) as database:
        yield database


def _record(db: Database, n: int, *, service: str = SERVICE, prefix: str = "secret:s") -> None:
    for i in range(n):
        audit.record("secret.read", f"{prefix}{i}", db=db, principal="p", service=service, details={"version": i})


def _insert_at(db: Database, occurred: datetime, target: str) -> None:
    with db.cursor() as cur:
        cur.execute("""INSERT INTO audit_events (service, occurred, principal, action, target, outcome)
                       VALUES (%s, %s, 'p', 'secret.read', %s, 'success')""", (SERVICE, occurred, target))


def chain_all(db: Database, service: str = SERVICE, *, late_limit=audit_chain.LATE_LIMIT, timeout: float = 120) -> None:
    """Chain passes until nothing the chainer may take is left. (Another session's open
    transaction on the shared server holds the horizon back a while: the pass waits for it.)"""
    deadline = time.monotonic() + timeout
    while True:
        audit_chain.chain_pass(db, service, late_limit=late_limit)
        with db.cursor() as cur:
            cur.execute("""SELECT count(*) AS n FROM audit_events WHERE service = %s AND seq IS NULL
                             AND (%s::timestamptz IS NULL OR occurred >= %s::timestamptz)""",
                        (service, *[None if late_limit is None else datetime.now(timezone.utc) - late_limit] * 2))
            if cur.fetchone()["n"] == 0:
                return
        assert time.monotonic() < deadline, "the chainer did not take every event"
        time.sleep(0.2)


def _ids_by_seq(db: Database) -> dict[int, int]:
    with db.cursor() as cur:
        cur.execute("SELECT seq, id FROM audit_events WHERE service = %s AND seq IS NOT NULL ORDER BY seq", (SERVICE,))
        return {row["seq"]: row["id"] for row in cur.fetchall()}


def _first(report: audit_chain.Report) -> audit_chain.Problem:
    assert not report.ok, report.as_dict()
    return report.problems[0]


def test_events_are_chained_in_one_line_and_verify_counts_them(db):
    _record(db, 25)
    chain_all(db)
    ids = _ids_by_seq(db)
    assert sorted(ids) == list(range(1, 26))
    report = audit_chain.verify(db, SERVICE)
    assert report.ok, report.as_dict()
    assert (report.checked, report.first_seq, report.last_seq) == (25, 1, 25)
    head = audit_chain.head(db, SERVICE)
    assert head["seq"] == 25
    # Every link is SHA-256(previous link || the event's canonical form), from 32 zero bytes.
    with db.cursor() as cur:
        cur.execute("SELECT * FROM audit_events WHERE service = %s ORDER BY seq", (SERVICE,))
        prev = audit_chain.GENESIS
        for row in cur.fetchall():
            assert bytes(row["chain_prev"]) == prev
            prev = audit_chain.link(prev, row)
            assert bytes(row["chain_hash"]) == prev
    assert head["hash"] == prev.hex()
    # Another service's events are a chain of their own.
    _record(db, 3, service="secrets-manager")
    chain_all(db, "secrets-manager")
    assert audit_chain.verify(db, "secrets-manager").checked == 3
    assert audit_chain.verify(db, SERVICE).checked == 25


def test_concurrent_writers_and_chainers_never_fork_the_chain(db):
    """Eight writers and four chainers at once: one line, each event once, in (xid, id) order."""
    stop = threading.Event()
    results: list = []

    def write(k):
        _record(db, 40, prefix=f"secret:w{k}-")

    def chain():
        while not stop.is_set():
            results.append(audit_chain.chain_pass(db, SERVICE))

    chainers = [threading.Thread(target=chain) for _ in range(4)]
    writers = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for thread in chainers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in chainers:
        thread.join()
    chain_all(db)
    ids = _ids_by_seq(db)
    assert sorted(ids) == list(range(1, 321)) and len(set(ids.values())) == 320
    with db.cursor() as cur:
        cur.execute("SELECT xid::text::numeric AS xid, id FROM audit_events WHERE service = %s ORDER BY seq", (SERVICE,))
        order = [(row["xid"], row["id"]) for row in cur.fetchall()]
    assert order == sorted(order)
    assert audit_chain.verify(db, SERVICE).ok


def _six_chained_then(db: Database, tampering: str) -> tuple[dict[int, int], audit_chain.Report]:
    """Six chained events, `tampering` run on the table: (event ids by seq before it, verify's report)."""
    _record(db, 6)
    chain_all(db)
    ids = _ids_by_seq(db)
    with db.cursor() as cur:
        cur.execute(tampering)
    return ids, audit_chain.verify(db, SERVICE)


def test_a_changed_event_is_named(db):
    ids, report = _six_chained_then(db, "UPDATE audit_events SET principal = 'someone-else' WHERE seq = 3")
    problem = _first(report)
    assert (problem.kind, problem.event_id, problem.seq) == ("changed", ids[3], 3)
    assert len(report.problems) == 1  # the next link still holds


def test_a_deleted_event_is_named(db):
    ids, report = _six_chained_then(db, "DELETE FROM audit_events WHERE seq = 4")
    problem = _first(report)
    assert (problem.kind, problem.seq) == ("deleted", 4)
    assert f"between event id {ids[3]} and event id {ids[5]}" in problem.message
    assert len(report.problems) == 1


def test_events_cut_off_the_end_show_against_the_head(db):
    problem = _first(_six_chained_then(db, "DELETE FROM audit_events WHERE seq >= 5")[1])
    assert (problem.kind, problem.seq) == ("deleted", 5) and "at the end" in problem.message


def test_a_rewritten_head_shows_against_the_head_written_out(db):
    """Whoever cuts the tail and moves the head row back too fools the database alone; the head
    that went to the log and the SIEM does not agree."""
    _record(db, 6)
    chain_all(db)
    written = audit_chain.checkpoint(db, SERVICE)
    with db.cursor() as cur:
        cur.execute("DELETE FROM audit_events WHERE seq = 6")
        cur.execute("""UPDATE audit_chain_heads h SET seq = 5, hash = e.chain_hash FROM audit_events e
                        WHERE e.seq = 5 AND h.service = e.service""")
    assert audit_chain.verify(db, SERVICE).ok
    problem = _first(audit_chain.verify(db, SERVICE, expected_head=audit_chain.parse_head(written["verify"])))
    assert (problem.kind, problem.seq) == ("deleted", 6)
    # An unchanged chain reaches the head written out.
    _record(db, 1)
    chain_all(db)
    assert not audit_chain.verify(db, SERVICE, expected_head=audit_chain.parse_head(written["verify"])).ok
    fresh = audit_chain.head(db, SERVICE)
    assert audit_chain.verify(db, SERVICE, expected_head=(fresh["seq"], bytes.fromhex(fresh["hash"]))).ok


def test_an_inserted_copy_is_named(db):
    _record(db, 5)
    chain_all(db)
    with db.cursor() as cur:
        cur.execute("""INSERT INTO audit_events (service, occurred, xid, principal, action, target, outcome, details,
                                                 seq, chain_prev, chain_hash)
                       SELECT service, occurred, xid, 'intruder', action, target, outcome, details,
                              seq, chain_prev, chain_hash
                         FROM audit_events WHERE seq = 2 RETURNING id""")
        forged = cur.fetchone()["id"]
    problem = _first(audit_chain.verify(db, SERVICE))
    assert (problem.kind, problem.event_id, problem.seq) == ("inserted", forged, 2)


def test_an_event_inserted_into_the_past_is_never_chained_and_named(db):
    _record(db, 3)
    chain_all(db)
    _insert_at(db, datetime.now(timezone.utc) - timedelta(hours=2), "secret:backdated")
    with db.cursor() as cur:
        cur.execute("SELECT id FROM audit_events WHERE target = 'secret:backdated'")
        forged = cur.fetchone()["id"]
    _record(db, 2)
    chain_all(db)  # takes the two new events, refuses the backdated one
    with db.cursor() as cur:
        cur.execute("SELECT seq FROM audit_events WHERE id = %s", (forged,))
        assert cur.fetchone()["seq"] is None
    report = audit_chain.verify(db, SERVICE)
    problem = _first(report)
    assert (problem.kind, problem.event_id) == ("inserted", forged)
    assert report.checked == 5


def test_a_moved_event_is_named(db):
    # events 2 and 4 trade places
    ids, report = _six_chained_then(db, "UPDATE audit_events SET seq = CASE seq WHEN 2 THEN 4 ELSE 2 END "
                                        "WHERE seq IN (2, 4)")
    problem = _first(report)
    assert (problem.kind, problem.event_id, problem.seq) == ("moved", ids[4], 2)
    assert f"chained after event id {ids[3]} (seq 3)" in problem.message


def _days(db: Database, *offsets: int) -> dict[int, datetime]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    days = {offset: today + timedelta(days=offset) for offset in offsets}
    with db.cursor() as cur:
        cur.execute("SELECT audit_ensure_partitions(%s, %s)", (days[min(offsets)].date(), days[max(offsets)].date()))
    return days


def test_a_partition_dropped_by_hand_is_named(db):
    days = _days(db, -3, -2, -1, 0)
    for offset, day in days.items():
        for hour in (1, 2):
            _insert_at(db, day + timedelta(hours=hour), f"secret:day{offset}-{hour}")
    chain_all(db, late_limit=None)
    with db.cursor() as cur:
        cur.execute(f"DROP TABLE audit_events_{days[-2]:%Y%m%d}")
    problem = _first(audit_chain.verify(db, SERVICE))
    assert (problem.kind, problem.seq) == ("deleted", 3) and "seq 3..4 are missing" in problem.message


def test_retention_keeps_what_is_left_verifiable_and_a_dropped_oldest_day_still_shows(db):
    days = _days(db, -40, -35, -1, 0)
    for offset, day in days.items():
        _insert_at(db, day + timedelta(hours=3), f"secret:day{offset}")
    chain_all(db, late_limit=None)
    with db.transaction() as cur:
        assert audit_partition_store.maintain(cur, retention_days=30)["dropped"] >= 2
    report = audit_chain.verify(db, SERVICE)
    assert report.ok, report.as_dict()
    assert (report.checked, report.first_seq, report.last_seq) == (2, 3, 4)
    assert audit_chain.head(db, SERVICE)["anchor_seq"] == 2
    # The oldest day that is left, dropped by hand: that is a deletion, not retention.
    with db.cursor() as cur:
        cur.execute(f"DROP TABLE audit_events_{days[-1]:%Y%m%d}")
    problem = _first(audit_chain.verify(db, SERVICE))
    assert (problem.kind, problem.seq) == ("deleted", 3)


def test_verify_since_and_until_check_that_part_only(db):
    days = _days(db, -2, -1, 0)
    for offset, day in days.items():
        for hour in (1, 2, 3):
            _insert_at(db, day + timedelta(hours=hour), f"secret:day{offset}-{hour}")
    chain_all(db, late_limit=None)
    ids = _ids_by_seq(db)
    report = audit_chain.verify(db, SERVICE, since=days[-1], until=days[0])
    assert report.ok and (report.checked, report.first_seq, report.last_seq) == (3, 4, 6)
    with db.cursor() as cur:
        cur.execute("UPDATE audit_events SET target = 'x' WHERE seq = 8")
    assert audit_chain.verify(db, SERVICE, since=days[-1], until=days[0]).ok  # outside the range
    problem = _first(audit_chain.verify(db, SERVICE, since=days[0]))
    assert (problem.kind, problem.event_id) == ("changed", ids[8])


def _cli(program: str, db: Database, *args: str) -> tuple[int, dict]:
    env = {**os.environ, "DATABASE_URL": db.url, "DEV_MODE": "", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), program), "audit", "verify", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_the_commands_say_all_is_well_or_name_the_first_problem(db):
    _record(db, 4)
    _record(db, 2, service="secrets-manager")
    chain_all(db)
    chain_all(db, "secrets-manager")
    code, body = _cli("vault-admin", db)
    assert code == 0 and body["ok"] and body["checked"] == 4
    code, body = _cli("secrets-manager-worker", db)
    assert code == 0 and body["ok"] and body["checked"] == 2
    ids = _ids_by_seq(db)
    with db.cursor() as cur:
        cur.execute("UPDATE audit_events SET outcome = 'denied' WHERE service = 'vault' AND seq = 2")
    code, body = _cli("vault-admin", db, "--since", "2000-01-01T00:00:00Z")
    assert code == 1 and body["first_problem"]["kind"] == "changed" and body["first_problem"]["event_id"] == ids[2]
    code, body = _cli("secrets-manager-worker", db)
    assert code == 0


def test_chaining_goes_on_after_a_restore_into_a_server_with_lower_transaction_ids(db):
    """A dump restored elsewhere keeps the old server's xids in the rows and the head's horizon."""
    _record(db, 3)
    chain_all(db)
    with db.cursor() as cur:
        cur.execute("UPDATE audit_chain_heads SET horizon = '900000000000'::xid8")
    _record(db, 2)
    chain_all(db)
    report = audit_chain.verify(db, SERVICE)
    assert report.ok and report.checked == 5, report.as_dict()


def test_the_head_goes_to_the_log_once_a_minute_whoever_asks(db, caplog):
    _record(db, 2)
    chain_all(db)
    with caplog.at_level(logging.INFO, logger="audit"):
        written = audit_chain.checkpoint(db, SERVICE)
        assert audit_chain.checkpoint(db, SERVICE) is None  # another process, the same minute: not again
    logged = [r for r in caplog.records if r.getMessage() == "audit chain head"]
    assert len(logged) == 1 and logged[0].audit_chain_head == written
    head = audit_chain.head(db, SERVICE)
    assert written["verify"] == f"{head['seq']}:{head['hash']}" and written["seq"] == 2
    with db.cursor() as cur:  # a minute later
        cur.execute("UPDATE audit_chain_heads SET checkpointed_at = checkpointed_at - interval '61 seconds'")
    assert audit_chain.checkpoint(db, SERVICE)["verify"] == written["verify"]
