"""The audit trail's partition upkeep in SQL (common/audit_partitions.py schedules it): passes
of different processes and replicas take turns on an advisory lock (a busy one is skipped, not
waited for), and their DDL gives up after LOCK_TIMEOUT instead of queueing every insert behind
a lock it waits for."""
from __future__ import annotations

DAYS_AHEAD = 7
LOCK_TIMEOUT = "2s"
_LOCK_KEY = "audit-partitions"


def maintain(cur, *, retention_days: int = 0, days_ahead: int = DAYS_AHEAD) -> dict:
    """One pass inside the caller's transaction: {"created", "dropped"}, or None when another
    process holds the turn."""
    cur.execute("SELECT pg_try_advisory_xact_lock(hashtext(%(key)s)) AS mine", {"key": _LOCK_KEY})
    if not cur.fetchone()["mine"]:
        return None
    cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cur.execute(
        """SELECT audit_ensure_partitions(((now() AT TIME ZONE 'UTC') - interval '1 day')::date,
                                          ((now() AT TIME ZONE 'UTC') + make_interval(days => %(ahead)s))::date) AS n""",
        {"ahead": days_ahead},
    )
    result = {"created": cur.fetchone()["n"], "dropped": 0}
    if retention_days > 0:
        cur.execute("SELECT audit_drop_partitions(%(keep)s) AS n", {"keep": retention_days})
        result["dropped"] = cur.fetchone()["n"]
    return result
