"""The audit trail's queries: events written and searched (common/audit.py), and each sink's
cursor and lease (common/audit_stream.py). The chain has its own (audit_chain), the partitions
theirs (audit_partition_store)."""
from __future__ import annotations

from datetime import datetime, timedelta

from common.db import Database, fetch_page

INSERT_EVENT = """INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
                  VALUES (%(service)s, %(request_id)s, %(principal)s, %(action)s, %(target)s, %(outcome)s, %(details)s)"""
SORT_DIRECTIONS = {"ASC": "ASC", "DESC": "DESC"}


def insert_event(cur, event: dict) -> None:
    """One event's row (its details already a Jsonb), inside the caller's transaction."""
    cur.execute(INSERT_EVENT, event)


def search(db: Database, service: str, *, filters: dict, offset: int, limit: int, sortdir: str) -> tuple[int, list[dict]]:
    """Events of `service` matching every given filter, newest first by default."""
    where, params = ["service = %(service)s"], {"service": service}
    for column in ("principal", "action", "target", "outcome", "request_id"):
        if filters.get(column):
            where.append(f"{column} = %({column})s")
            params[column] = filters[column]
    if filters.get("since"):
        where.append("occurred >= %(since)s")
        params["since"] = filters["since"]
    if filters.get("until"):
        where.append("occurred < %(until)s")
        params["until"] = filters["until"]
    direction = SORT_DIRECTIONS[sortdir]
    return fetch_page(db, columns="id, occurred, request_id, principal, action, target, outcome, details",
                      source="audit_events", where=" AND ".join(where), order=f"occurred {direction}, id {direction}",
                      params=params, offset=offset, limit=limit)


# --- sinks ------------------------------------------------------------------------------------

def take_sink_lease(db: Database, service: str, sink: str, *, owner: str, lease_seconds: float,
                    head_every_seconds: float) -> tuple[int, bool] | None:
    """(delivered_seq, head due) if `owner` holds the sink's lease now (taken or renewed for
    `lease_seconds`). A new sink starts at the beginning of the retained trail, so it gets the
    history too."""
    with db.cursor() as cur:
        cur.execute("""INSERT INTO audit_sink_cursors (service, sink, delivered_seq)
                       SELECT %(s)s, %(k)s,
                              coalesce((SELECT anchor_seq FROM audit_chain_heads WHERE service = %(s)s), 0)
                       ON CONFLICT (service, sink) DO NOTHING""", {"s": service, "k": sink})
        cur.execute("""UPDATE audit_sink_cursors
                          SET lease_owner = %(me)s, lease_until = now() + make_interval(secs => %(lease)s)
                        WHERE service = %(s)s AND sink = %(k)s
                          AND (lease_owner = %(me)s OR lease_until IS NULL OR lease_until < now())
                    RETURNING delivered_seq,
                              head_sent_at IS NULL OR head_sent_at <= now() - make_interval(secs => %(every)s)
                                  AS head_due""",
                    {"s": service, "k": sink, "me": owner, "lease": lease_seconds, "every": head_every_seconds})
        row = cur.fetchone()
    return None if row is None else (row["delivered_seq"], row["head_due"])


def chained_events_after(db: Database, service: str, seq: int, *, limit: int) -> list[dict]:
    with db.cursor() as cur:
        cur.execute("""SELECT id, service, occurred, request_id, principal, action, target, outcome, details,
                              seq, chain_hash
                         FROM audit_events WHERE service = %(s)s AND seq > %(seq)s AND seq IS NOT NULL
                        ORDER BY seq LIMIT %(n)s""", {"s": service, "seq": seq, "n": limit})
        return cur.fetchall()


def confirm_delivered(db: Database, service: str, sink: str, seq: int, *, owner: str) -> None:
    """Move the sink's cursor to `seq` (never back), if `owner` still holds its lease."""
    with db.cursor() as cur:
        cur.execute("""UPDATE audit_sink_cursors SET delivered_seq = greatest(delivered_seq, %(seq)s)
                        WHERE service = %(s)s AND sink = %(k)s AND lease_owner = %(me)s""",
                    {"seq": seq, "s": service, "k": sink, "me": owner})


def mark_head_sent(db: Database, service: str, sink: str) -> None:
    with db.cursor() as cur:
        cur.execute("UPDATE audit_sink_cursors SET head_sent_at = now() WHERE service = %(s)s AND sink = %(k)s",
                    {"s": service, "k": sink})


def database_now(db: Database) -> datetime:
    with db.cursor() as cur:
        cur.execute("SELECT now() AS now")
        return cur.fetchone()["now"]


def oldest_undelivered_age(db: Database, service: str, sinks: list[str], *, late_limit: timedelta) -> float:
    """Seconds since the oldest event some sink does not have yet occurred (0: none waits).
    Events the chainer has not taken yet (and may still: not older than `late_limit`) count
    too: a sink only gets chained events."""
    with db.cursor() as cur:
        cur.execute("""SELECT extract(epoch FROM now() - least(
                                  (SELECT min(occurred) FROM audit_events
                                    WHERE service = %(s)s AND seq IS NULL AND occurred > now() - %(late)s::interval),
                                  (SELECT min(e.occurred) FROM audit_sink_cursors c
                                     JOIN audit_events e ON e.service = c.service AND e.seq = c.delivered_seq + 1
                                    WHERE c.service = %(s)s AND c.sink = ANY(%(sinks)s))))::float AS age""",
                    {"s": service, "sinks": sinks, "late": late_limit})
        age = cur.fetchone()["age"]
    return max(age or 0.0, 0.0)
