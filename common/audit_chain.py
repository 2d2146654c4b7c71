"""The audit trail as evidence: one hash chain per service over the events' canonical forms.

Each chained event carries `seq` (its place), `chain_prev` (the link before it) and
`chain_hash` = SHA-256(chain_prev || canonical form). The canonical form (canonical()) is
every column that says what happened, and not `seq`: an event's own hash survives a move,
so `verify` can tell a moved event (intact, in the wrong place) from a changed one.

Writers never touch the chain (a read's event is inserted by the read's own statement). A
chainer links them afterwards (common/migrations/0003_audit_chain.sql says why this order
holds): `chain_pass` takes the service's head row FOR UPDATE SKIP LOCKED, so one chainer
at a time extends a chain and a second one skips instead of forking it; every process runs
it about every second (common/audit_pump.py), so events are chained within a second or two.
An event still unchained LATE_LIMIT after it occurred is refused: only an event written
into the past looks like that, and `verify` names it as inserted.

The head is written to the log at least every CHECKPOINT_SECONDS (and to every sink:
audit_stream), so that cutting events off the end, or rewriting the chain and its head in
the database, shows against what left the database: `verify --head SEQ:HASH`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from common import audit_chain_store as store
from common.db import Database

log = logging.getLogger("audit")

GENESIS = bytes(32)  # the link before a chain's first event
BATCH = 2000
MAX_PER_PASS = 20_000
LATE_LIMIT = timedelta(minutes=15)  # far longer than any transaction of the services (statement timeouts)
CHECKPOINT_SECONDS = 60
_MOVED_WINDOW = 10_000  # how far back `verify` looks for where a moved event was chained


def canonical(event: dict) -> bytes:
    """The bytes an event's hash covers: JSON, sorted keys, no spaces, UTC microseconds."""
    occurred = event["occurred"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    form = {
        "id": event["id"], "service": event["service"], "occurred": occurred,
        "xid": None if event["xid"] is None else str(event["xid"]),
        "request_id": event["request_id"], "principal": event["principal"], "action": event["action"],
        "target": event["target"], "outcome": event["outcome"], "details": event["details"],
    }
    return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(prev: bytes, event: dict) -> bytes:
    return hashlib.sha256(bytes(prev) + canonical(event)).digest()


# --------------------------------------------------------------------------- chaining


def chain_pass(db: Database, service: str, *, late_limit: timedelta | None = LATE_LIMIT) -> int | None:
    """Chain what can be chained; the number of events linked, or None when another chainer
    holds the head. `late_limit` None chains old events too (tests that make past days)."""
    with db.cursor() as cur:
        # Cheap first: most passes find nothing, and then take no lock and write nothing.
        row = store.horizon_and_xmin(cur, service)
        if not store.any_takeable(cur, {"service": service, "horizon": _horizon(row["horizon"], row["xmin"], service),
                                        "xmin": row["xmin"], "first": row["horizon"] is None, "late": _late(late_limit)}):
            return 0
    with db.transaction() as cur:
        head = store.lock_head(cur, service, GENESIS)
        if head is None:
            return None
        # Every transaction below xmin has ended: its events are all visible now, and no event
        # with a lower xid can appear any more. (Later statements' snapshots are newer: they see
        # at least as much.)
        xmin = store.snapshot_xmin(cur)
        seq, prev, linked = head["seq"], bytes(head["hash"]), 0
        takeable = {"service": service, "horizon": _horizon(head["horizon"], xmin, service, say=True), "xmin": xmin,
                    "first": head["horizon"] is None, "late": _late(late_limit)}
        while True:
            events = store.takeable_events(cur, takeable, limit=BATCH)
            if not events:
                break
            rows = []
            for event in events:
                seq += 1
                digest = link(prev, event)
                rows.append((event["id"], event["occurred"], seq, prev, digest))
                prev = digest
            store.link_events(cur, service, rows)
            linked += len(rows)
            if len(events) < BATCH:
                break
            if linked >= MAX_PER_PASS:
                # A short transaction (its own xid holds every chainer's xmin back); the next pass
                # goes on from here. Below the last linked xid everything is linked now.
                xmin = events[-1]["xid"]
                break
        store.advance_head(cur, service, seq=seq, digest=prev, horizon=xmin)
    return linked


def _horizon(horizon, xmin, service: str, *, say: bool = False):
    """The stored horizon, unless the server's transaction ids are now below it: the database was
    restored into another server (a dump has the old server's ids), so chaining goes on from 0."""
    if horizon is None or int(str(horizon)) <= int(str(xmin)):
        return horizon
    if say:
        log.warning("audit chain: transaction ids are below the chained horizon (a restore into another server?); "
                    "chaining goes on", extra={"audit_service": service})
    return "0"


def _late(late_limit: timedelta | None) -> datetime | None:
    return None if late_limit is None else datetime.now(timezone.utc) - late_limit


def head(db: Database, service: str) -> dict | None:
    """{"seq", "hash" (hex), "anchor_seq", ...} of the service's chain, or None before its first event."""
    with db.cursor() as cur:
        row = store.head(cur, service)
    if row is None:
        return None
    return {**row, "hash": bytes(row["hash"]).hex(), "anchor_hash": bytes(row["anchor_hash"]).hex()}


def checkpoint(db: Database, service: str, *, every: float = CHECKPOINT_SECONDS) -> dict | None:
    """Write the head to the log if nobody did in the last `every` seconds (one process of all
    of them wins each time); the head written, or None."""
    with db.cursor() as cur:
        row = store.claim_checkpoint(cur, service, every=every)
    if row is None:
        return None
    written = head_record(service, row["seq"], bytes(row["hash"]), row["checkpointed_at"])
    log.info("audit chain head", extra={"audit_chain_head": written})
    return written


def head_record(service: str, seq: int, digest: bytes, at: datetime) -> dict:
    """The head as it leaves the database (log line, sinks): what `verify --head` takes back."""
    return {"service": service, "seq": seq, "hash": digest.hex(), "at": at.astimezone(timezone.utc).isoformat(),
            "verify": f"{seq}:{digest.hex()}"}


# --------------------------------------------------------------------------- verification


@dataclass
class Problem:
    kind: str  # changed, deleted, inserted, moved
    message: str
    event_id: int | None = None
    seq: int | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "event_id": self.event_id, "seq": self.seq, "message": self.message}


@dataclass
class Report:
    service: str
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    unchained: int = 0  # recent events not chained yet (not a problem: the next pass takes them)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self, *, limit: int = 20) -> dict:
        body = {"service": self.service, "ok": self.ok, "checked": self.checked, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "not_yet_chained": self.unchained}
        if self.problems:
            body["first_problem"] = self.problems[0].as_dict()
            body["problems"] = [p.as_dict() for p in self.problems[:limit]]
            body["problem_count"] = len(self.problems)
        return body


def verify(db: Database, service: str, *, since: datetime | None = None, until: datetime | None = None,
           expected_head: tuple[int, bytes] | None = None) -> Report:
    """Walk the service's chain (the part whose events occurred in [since, until)) and report
    every changed, deleted, inserted or moved event, first one first."""
    report = Report(service)
    with db.cursor() as cur:
        chain = store.head(cur, service)
    if chain is None:
        chain = {"seq": 0, "hash": GENESIS, "horizon": None, "anchor_seq": 0, "anchor_hash": GENESIS}
    low, prev = chain["anchor_seq"], bytes(chain["anchor_hash"])
    high = chain["seq"]
    with db.cursor() as cur:
        if since is not None:
            first = store.first_seq_since(cur, service, after=low, since=since)
            if first is None:
                low = high
            elif first - 1 > low:
                # The link before the range, as stored: the range is checked against it.
                low = first - 1
                prev = store.chain_hash_at(cur, service, low)
                if prev is None:
                    report.problems.append(Problem("deleted", f"the event at seq {low}, just before the range, "
                                                              "is missing", seq=low))
        if until is not None:
            high = min(high, store.last_seq_before(cur, service, after=low, until=until) or low)
    _walk(db, service, report, low=low, high=high, prev=prev, whole_tail=until is None)
    _find_unchained(db, service, report, horizon=chain["horizon"], since=since, until=until)
    if expected_head is not None:
        _check_head(db, service, report, *expected_head)
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


def _walk(db: Database, service: str, report: Report, *, low: int, high: int, prev: bytes | None,
          whole_tail: bool) -> None:
    expected = low + 1
    recent: dict[bytes, tuple[int, int]] = {}  # chain_hash -> (seq, id) of the last _MOVED_WINDOW links
    pending_moves: dict[bytes, Problem] = {}  # a moved event's chain_prev, until its old neighbour shows up
    last_id = None
    with db.transaction() as outer:
        rows = store.chained_events(outer, service, after=low, upto=high)
        try:
            for row in rows:
                report.checked += 1
                report.first_seq = report.first_seq or row["seq"]
                report.last_seq = row["seq"]
                own = bytes(row["chain_hash"])
                if row["seq"] < expected:
                    report.problems.append(Problem(
                        "inserted", f"event id {row['id']} claims seq {row['seq']}, which event id {last_id} holds",
                        row["id"], row["seq"]))
                    continue
                if row["seq"] > expected:
                    report.problems.append(Problem(
                        "deleted", f"the events at seq {expected}..{row['seq'] - 1} are missing (between event id "
                                   f"{last_id} and event id {row['id']})", row["id"], expected))
                    prev = bytes(row["chain_prev"])  # resynchronise: that gap is reported
                if link(row["chain_prev"], row) != own:
                    report.problems.append(Problem(
                        "changed", f"event id {row['id']} (seq {row['seq']}) no longer matches its hash: "
                                   "its content was changed", row["id"], row["seq"]))
                elif prev is not None and bytes(row["chain_prev"]) != prev:
                    where = recent.get(bytes(row["chain_prev"]))
                    problem = Problem("moved", f"event id {row['id']} (seq {row['seq']}) is intact but not where it "
                                               "was chained" + (f": it was chained after event id {where[1]} (seq "
                                                                f"{where[0]})" if where else ""), row["id"], row["seq"])
                    if where is None:
                        pending_moves[bytes(row["chain_prev"])] = problem
                    report.problems.append(problem)
                if own in pending_moves:  # the moved event's old neighbour, found later in the walk
                    problem = pending_moves.pop(own)
                    problem.message += f": it was chained after event id {row['id']} (seq {row['seq']})"
                recent[own] = (row["seq"], row["id"])
                if len(recent) > _MOVED_WINDOW:
                    recent.pop(next(iter(recent)))
                prev, expected, last_id = own, row["seq"] + 1, row["id"]
        finally:
            rows.close()
    if whole_tail and expected <= high:
        report.problems.append(Problem(
            "deleted", f"the events at seq {expected}..{high} are missing at the end (the chain's head in the "
                       f"database is seq {high})", None, expected))


def _find_unchained(db: Database, service: str, report: Report, *, horizon, since, until) -> None:
    """Events without a place in the chain: recent ones are waiting for the chainer; ones below
    the horizon (or older than the late limit) were written into the chained past."""
    with db.cursor() as cur:
        for row in store.unchained_events(cur, service, horizon=horizon, late_seconds=LATE_LIMIT.total_seconds(),
                                          since=since, until=until):
            if row["sealed"]:
                report.problems.append(Problem(
                    "inserted", f"event id {row['id']} (occurred {row['occurred'].isoformat()}) is not in the chain: "
                                "it was written after that part of the trail was sealed", row["id"], None))
            else:
                report.unchained += 1


def _check_head(db: Database, service: str, report: Report, seq: int, digest: bytes) -> None:
    """The database's chain must still reach a head written out earlier (log, SIEM)."""
    with db.cursor() as cur:
        rows = store.events_at(cur, service, seq)
    if not rows:
        report.problems.append(Problem("deleted", f"the head written out at seq {seq} is not in the database: the "
                                                  "chain was cut there", None, seq))
    elif all(bytes(r["chain_hash"]) != digest for r in rows):
        report.problems.append(Problem("changed", f"the chain at seq {seq} no longer ends in the head written out "
                                                  "then: it was rewritten up to there", rows[0]["id"], seq))


def parse_head(text: str) -> tuple[int, bytes]:
    """`SEQ:HASH` as the log and the sinks print it (ValueError if not)."""
    seq, _, digest = text.partition(":")
    value = bytes.fromhex(digest)
    if not seq.isdigit() or len(value) != 32:
        raise ValueError("is not SEQ:HASH (a number, a colon and 64 hex digits)")
    return int(seq), value
