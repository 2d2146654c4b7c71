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

from common.db import Database

log = logging.getLogger("audit")

GENESIS = bytes(32)  # the link before a chain's first event
BATCH = 2000
MAX_PER_PASS = 20_000
LATE_LIMIT = timedelta(minutes=15)  # far longer than any transaction of the services (statement timeouts)
CHECKPOINT_SECONDS = 60
_MOVED_WINDOW = 10_000  # how far back `verify` looks for where a moved event was chained

_EVENT_COLUMNS = "id, service, occurred, xid, request_id, principal, action, target, outcome, details"
_CHAINED_COLUMNS = _EVENT_COLUMNS + ", seq, chain_prev, chain_hash"


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
        cur.execute("""SELECT h.horizon, (SELECT pg_snapshot_xmin(pg_current_snapshot())) AS xmin
                         FROM (SELECT 1) one LEFT JOIN audit_chain_heads h ON h.service = %(service)s""",
                    {"service": service})
        row = cur.fetchone()
        cur.execute(f"""SELECT EXISTS (SELECT 1 FROM audit_events WHERE service = %(service)s AND seq IS NULL
                                         AND {_TAKEABLE}) AS due""",
                    {"service": service, "horizon": _horizon(row["horizon"], row["xmin"], service), "xmin": row["xmin"],
                     "first": row["horizon"] is None, "late": _late(late_limit)})
        if not cur.fetchone()["due"]:
            return 0
    with db.transaction() as cur:
        cur.execute("""INSERT INTO audit_chain_heads (service, hash, anchor_hash) VALUES (%(s)s, %(g)s, %(g)s)
                       ON CONFLICT (service) DO NOTHING""", {"s": service, "g": GENESIS})
        cur.execute("SELECT seq, hash, horizon FROM audit_chain_heads WHERE service = %(s)s FOR UPDATE SKIP LOCKED",
                    {"s": service})
        head = cur.fetchone()
        if head is None:
            return None
        # Every transaction below xmin has ended: its events are all visible now, and no event
        # with a lower xid can appear any more. (Later statements' snapshots are newer: they see
        # at least as much.)
        cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin")
        xmin = cur.fetchone()["xmin"]
        seq, prev, linked = head["seq"], bytes(head["hash"]), 0
        params = {"service": service, "horizon": _horizon(head["horizon"], xmin, service, say=True), "xmin": xmin,
                  "first": head["horizon"] is None,
                  "late": _late(late_limit), "batch": BATCH}
        while True:
            cur.execute(f"""SELECT {_EVENT_COLUMNS} FROM audit_events
                             WHERE service = %(service)s AND seq IS NULL AND {_TAKEABLE}
                             ORDER BY xid NULLS FIRST, id LIMIT %(batch)s""", params)
            events = cur.fetchall()
            if not events:
                break
            rows = []
            for event in events:
                seq += 1
                digest = link(prev, event)
                rows.append((event["id"], event["occurred"], seq, prev, digest))
                prev = digest
            # occurred too, so that each row is found in its own partition; arrays in binary (the
            # text form of a bytea array costs the chainer a quarter of its time)
            cur.execute("""UPDATE audit_events e SET seq = r.seq, chain_prev = r.prev, chain_hash = r.hash
                             FROM unnest(%(ids)b::bigint[], %(occurred)b::timestamptz[], %(seqs)b::bigint[],
                                         %(prevs)b::bytea[], %(hashes)b::bytea[]) AS r(id, occurred, seq, prev, hash)
                            WHERE e.service = %(service)s AND e.id = r.id AND e.occurred = r.occurred
                              AND e.seq IS NULL""",
                        {"service": service, **dict(zip(("ids", "occurred", "seqs", "prevs", "hashes"),
                                                        map(list, zip(*rows))))})
            linked += len(rows)
            if len(events) < BATCH:
                break
            if linked >= MAX_PER_PASS:
                # A short transaction (its own xid holds every chainer's xmin back); the next pass
                # goes on from here. Below the last linked xid everything is linked now.
                xmin = events[-1]["xid"]
                break
        cur.execute("""UPDATE audit_chain_heads SET seq = %(seq)s, hash = %(hash)s,
                              horizon = coalesce(%(xmin)s::xid8, horizon), chained_at = now() WHERE service = %(s)s""",
                    {"seq": seq, "hash": prev, "xmin": xmin, "s": service})
    return linked


# Events a pass may take: below xmin; after the first pass also at or above the horizon (below
# it everything was taken) and not older than the late limit.
_TAKEABLE = """(xid IS NULL AND %(first)s OR xid < %(xmin)s::xid8)
               AND (%(first)s OR (xid >= %(horizon)s::xid8
                                  AND (%(late)s::timestamptz IS NULL OR occurred >= %(late)s::timestamptz)))"""


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
        cur.execute("SELECT seq, hash, horizon, chained_at, anchor_seq, anchor_hash FROM audit_chain_heads "
                    "WHERE service = %(s)s", {"s": service})
        row = cur.fetchone()
    if row is None:
        return None
    return {**row, "hash": bytes(row["hash"]).hex(), "anchor_hash": bytes(row["anchor_hash"]).hex()}


def checkpoint(db: Database, service: str, *, every: float = CHECKPOINT_SECONDS) -> dict | None:
    """Write the head to the log if nobody did in the last `every` seconds (one process of all
    of them wins each time); the head written, or None."""
    with db.cursor() as cur:
        cur.execute("""UPDATE audit_chain_heads SET checkpointed_at = now()
                        WHERE service = %(s)s
                          AND (checkpointed_at IS NULL OR checkpointed_at <= now() - make_interval(secs => %(every)s))
                        RETURNING seq, hash, checkpointed_at""", {"s": service, "every": every})
        row = cur.fetchone()
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
        cur.execute("SELECT seq, hash, horizon, anchor_seq, anchor_hash FROM audit_chain_heads WHERE service = %(s)s",
                    {"s": service})
        chain = cur.fetchone()
    if chain is None:
        chain = {"seq": 0, "hash": GENESIS, "horizon": None, "anchor_seq": 0, "anchor_hash": GENESIS}
    low, prev = chain["anchor_seq"], bytes(chain["anchor_hash"])
    high = chain["seq"]
    with db.cursor() as cur:
        if since is not None:
            cur.execute("SELECT min(seq) AS s FROM audit_events WHERE service = %(s)s AND seq > %(low)s "
                        "AND occurred >= %(since)s", {"s": service, "low": low, "since": since})
            first = cur.fetchone()["s"]
            if first is None:
                low = high
            elif first - 1 > low:
                # The link before the range, as stored: the range is checked against it.
                cur.execute("SELECT chain_hash FROM audit_events WHERE service = %(s)s AND seq = %(seq)s "
                            "ORDER BY id LIMIT 1", {"s": service, "seq": first - 1})
                before = cur.fetchone()
                low = first - 1
                if before is None:
                    report.problems.append(Problem("deleted", f"the event at seq {low}, just before the range, "
                                                              "is missing", seq=low))
                    prev = None
                else:
                    prev = bytes(before["chain_hash"])
        if until is not None:
            cur.execute("SELECT max(seq) AS s FROM audit_events WHERE service = %(s)s AND seq > %(low)s "
                        "AND occurred < %(until)s", {"s": service, "low": low, "until": until})
            high = min(high, cur.fetchone()["s"] or low)
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
        # A server-side cursor (inside a transaction): the chain may be millions of events.
        cur = outer.connection.cursor(name="audit_verify", row_factory=outer.row_factory)
        try:
            cur.itersize = 5000
            cur.execute(f"""SELECT {_CHAINED_COLUMNS} FROM audit_events
                             WHERE service = %(s)s AND seq > %(low)s AND seq <= %(high)s AND seq IS NOT NULL
                             ORDER BY seq, id""", {"s": service, "low": low, "high": high})
            for row in cur:
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
            cur.close()
    if whole_tail and expected <= high:
        report.problems.append(Problem(
            "deleted", f"the events at seq {expected}..{high} are missing at the end (the chain's head in the "
                       f"database is seq {high})", None, expected))


def _find_unchained(db: Database, service: str, report: Report, *, horizon, since, until) -> None:
    """Events without a place in the chain: recent ones are waiting for the chainer; ones below
    the horizon (or older than the late limit) were written into the chained past."""
    with db.cursor() as cur:
        cur.execute("""SELECT id, seq, occurred,
                              (%(horizon)s::xid8 IS NOT NULL AND (xid IS NULL OR xid < %(horizon)s::xid8))
                              OR occurred < now() - make_interval(secs => %(late)s) AS sealed
                         FROM audit_events
                        WHERE service = %(s)s AND seq IS NULL
                          AND (%(since)s::timestamptz IS NULL OR occurred >= %(since)s::timestamptz)
                          AND (%(until)s::timestamptz IS NULL OR occurred < %(until)s::timestamptz)
                        ORDER BY id""",
                    {"s": service, "horizon": horizon, "late": LATE_LIMIT.total_seconds(), "since": since,
                     "until": until})
        for row in cur.fetchall():
            if row["sealed"]:
                report.problems.append(Problem(
                    "inserted", f"event id {row['id']} (occurred {row['occurred'].isoformat()}) is not in the chain: "
                                "it was written after that part of the trail was sealed", row["id"], None))
            else:
                report.unchained += 1


def _check_head(db: Database, service: str, report: Report, seq: int, digest: bytes) -> None:
    """The database's chain must still reach a head written out earlier (log, SIEM)."""
    with db.cursor() as cur:
        cur.execute("SELECT id, chain_hash FROM audit_events WHERE service = %(s)s AND seq = %(seq)s",
                    {"s": service, "seq": seq})
        rows = cur.fetchall()
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
