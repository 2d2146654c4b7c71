"""The audit chain's queries (common/audit_chain.py holds its rules: what a pass may take, how
an event is linked, what verification reports). Each runs on the caller's cursor, inside the
caller's transaction where it has one."""
from __future__ import annotations

from collections.abc import Iterator

EVENT_COLUMNS = "id, service, occurred, xid, request_id, principal, action, target, outcome, details"
CHAINED_COLUMNS = EVENT_COLUMNS + ", seq, chain_prev, chain_hash"

# Events a pass may take: below xmin; after the first pass also at or above the horizon (below
# it everything was taken) and not older than the late limit.
_TAKEABLE = """(xid IS NULL AND %(first)s OR xid < %(xmin)s::xid8)
               AND (%(first)s OR (xid >= %(horizon)s::xid8
                                  AND (%(late)s::timestamptz IS NULL OR occurred >= %(late)s::timestamptz)))"""


# --- chaining -----------------------------------------------------------------------------------

def horizon_and_xmin(cur, service: str) -> dict:
    """{"horizon" (None before the first pass), "xmin"}: the chained horizon and the oldest
    transaction still running."""
    cur.execute("""SELECT h.horizon, (SELECT pg_snapshot_xmin(pg_current_snapshot())) AS xmin
                     FROM (SELECT 1) one LEFT JOIN audit_chain_heads h ON h.service = %(service)s""",
                {"service": service})
    return cur.fetchone()


def any_takeable(cur, takeable: dict) -> bool:
    """Whether an unchained event is takeable (`takeable`: service, horizon, xmin, first, late)."""
    cur.execute(f"""SELECT EXISTS (SELECT 1 FROM audit_events WHERE service = %(service)s AND seq IS NULL
                                     AND {_TAKEABLE}) AS due""", takeable)
    return cur.fetchone()["due"]


def lock_head(cur, service: str, genesis: bytes) -> dict | None:
    """The service's head row {seq, hash, horizon}, locked for this transaction (made at
    `genesis` if it is the first), or None when another chainer holds it."""
    cur.execute("""INSERT INTO audit_chain_heads (service, hash, anchor_hash) VALUES (%(s)s, %(g)s, %(g)s)
                   ON CONFLICT (service) DO NOTHING""", {"s": service, "g": genesis})
    cur.execute("SELECT seq, hash, horizon FROM audit_chain_heads WHERE service = %(s)s FOR UPDATE SKIP LOCKED",
                {"s": service})
    return cur.fetchone()


def snapshot_xmin(cur):
    """The oldest transaction still running: every one below it has ended."""
    cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin")
    return cur.fetchone()["xmin"]


def takeable_events(cur, takeable: dict, *, limit: int) -> list[dict]:
    """The next unchained takeable events, in chain order (transaction id, then id)."""
    cur.execute(f"""SELECT {EVENT_COLUMNS} FROM audit_events
                     WHERE service = %(service)s AND seq IS NULL AND {_TAKEABLE}
                     ORDER BY xid NULLS FIRST, id LIMIT %(batch)s""", {**takeable, "batch": limit})
    return cur.fetchall()


def link_events(cur, service: str, links: list[tuple]) -> None:
    """Write each (id, occurred, seq, prev, hash) into its event; occurred too, so that each row
    is found in its own partition; arrays in binary (the text form of a bytea array costs the
    chainer a quarter of its time)."""
    cur.execute("""UPDATE audit_events e SET seq = r.seq, chain_prev = r.prev, chain_hash = r.hash
                     FROM unnest(%(ids)b::bigint[], %(occurred)b::timestamptz[], %(seqs)b::bigint[],
                                 %(prevs)b::bytea[], %(hashes)b::bytea[]) AS r(id, occurred, seq, prev, hash)
                    WHERE e.service = %(service)s AND e.id = r.id AND e.occurred = r.occurred
                      AND e.seq IS NULL""",
                {"service": service, **dict(zip(("ids", "occurred", "seqs", "prevs", "hashes"), map(list, zip(*links))))})


def advance_head(cur, service: str, *, seq: int, digest: bytes, horizon) -> None:
    """The head after a pass (the horizon kept where `horizon` is None)."""
    cur.execute("""UPDATE audit_chain_heads SET seq = %(seq)s, hash = %(hash)s,
                          horizon = coalesce(%(xmin)s::xid8, horizon), chained_at = now() WHERE service = %(s)s""",
                {"seq": seq, "hash": digest, "xmin": horizon, "s": service})


def head(cur, service: str) -> dict | None:
    """{seq, hash, horizon, chained_at, anchor_seq, anchor_hash} of the service's chain, or None."""
    cur.execute("SELECT seq, hash, horizon, chained_at, anchor_seq, anchor_hash FROM audit_chain_heads "
                "WHERE service = %(s)s", {"s": service})
    return cur.fetchone()


def claim_checkpoint(cur, service: str, *, every: float) -> dict | None:
    """{seq, hash, checkpointed_at} if no checkpoint was written in the last `every` seconds
    (this caller writes it now), else None."""
    cur.execute("""UPDATE audit_chain_heads SET checkpointed_at = now()
                    WHERE service = %(s)s
                      AND (checkpointed_at IS NULL OR checkpointed_at <= now() - make_interval(secs => %(every)s))
                    RETURNING seq, hash, checkpointed_at""", {"s": service, "every": every})
    return cur.fetchone()


# --- verification -------------------------------------------------------------------------------

def first_seq_since(cur, service: str, *, after: int, since) -> int | None:
    cur.execute("SELECT min(seq) AS s FROM audit_events WHERE service = %(s)s AND seq > %(low)s "
                "AND occurred >= %(since)s", {"s": service, "low": after, "since": since})
    return cur.fetchone()["s"]


def last_seq_before(cur, service: str, *, after: int, until) -> int | None:
    cur.execute("SELECT max(seq) AS s FROM audit_events WHERE service = %(s)s AND seq > %(low)s "
                "AND occurred < %(until)s", {"s": service, "low": after, "until": until})
    return cur.fetchone()["s"]


def chain_hash_at(cur, service: str, seq: int) -> bytes | None:
    """The stored link of the (first) event at `seq`, None if no event holds it."""
    cur.execute("SELECT chain_hash FROM audit_events WHERE service = %(s)s AND seq = %(seq)s "
                "ORDER BY id LIMIT 1", {"s": service, "seq": seq})
    row = cur.fetchone()
    return None if row is None else bytes(row["chain_hash"])


def events_at(cur, service: str, seq: int) -> list[dict]:
    """{id, chain_hash} of every event that claims `seq`."""
    cur.execute("SELECT id, chain_hash FROM audit_events WHERE service = %(s)s AND seq = %(seq)s",
                {"s": service, "seq": seq})
    return cur.fetchall()


def chained_events(transaction_cur, service: str, *, after: int, upto: int) -> Iterator[dict]:
    """The chained events with after < seq <= upto, by seq, through a server-side cursor on the
    connection of `transaction_cur` (inside its transaction): the chain may be millions of events."""
    cur = transaction_cur.connection.cursor(name="audit_verify", row_factory=transaction_cur.row_factory)
    try:
        cur.itersize = 5000
        cur.execute(f"""SELECT {CHAINED_COLUMNS} FROM audit_events
                         WHERE service = %(s)s AND seq > %(low)s AND seq <= %(high)s AND seq IS NOT NULL
                         ORDER BY seq, id""", {"s": service, "low": after, "high": upto})
        yield from cur
    finally:
        cur.close()


def unchained_events(cur, service: str, *, horizon, late_seconds: float, since, until) -> list[dict]:
    """{id, seq, occurred, sealed} of the events without a place in the chain, `sealed` when
    they are below the horizon or older than the late limit (written into the chained past)."""
    cur.execute("""SELECT id, seq, occurred,
                          (%(horizon)s::xid8 IS NOT NULL AND (xid IS NULL OR xid < %(horizon)s::xid8))
                          OR occurred < now() - make_interval(secs => %(late)s) AS sealed
                     FROM audit_events
                    WHERE service = %(s)s AND seq IS NULL
                      AND (%(since)s::timestamptz IS NULL OR occurred >= %(since)s::timestamptz)
                      AND (%(until)s::timestamptz IS NULL OR occurred < %(until)s::timestamptz)
                    ORDER BY id""",
                {"s": service, "horizon": horizon, "late": late_seconds, "since": since, "until": until})
    return cur.fetchall()
