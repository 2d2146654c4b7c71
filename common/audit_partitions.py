"""Upkeep of the audit trail's daily partitions (common/migrations/0002_audit_partitions.sql).

Every process of a service does it: once when it migrates (at its first use of the
database), then about hourly from one daemon thread per process. A pass creates the
partitions of yesterday to DAYS_AHEAD days ahead that are missing and, with
AUDIT_RETENTION_DAYS set, drops the partitions whose every event is older than that.
Passes of different processes and replicas take turns on an advisory lock (a busy one
is skipped, not waited for), and their DDL gives up after LOCK_TIMEOUT instead of
queueing every insert behind a lock it waits for. A failed pass is logged and retried
next time: the default partition takes the events of a day whose partition is late.
"""
from __future__ import annotations

import logging
import threading
import weakref

log = logging.getLogger(__name__)

DAYS_AHEAD = 7
INTERVAL_SECONDS = 3600.0
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


class Scheduler:
    """One daemon thread per process running `duty(db)` every `interval` seconds for every
    open Database of it registered here."""

    def __init__(self, name: str, interval: float, duty):
        self.name, self.interval, self._duty = name, interval, duty
        self._databases = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._owner_pid: int | None = None
        self._wake = threading.Event()

    def register(self, db, pid: int) -> None:
        with self._lock:
            if self._owner_pid != pid:  # a forked child: the parent's thread did not come along
                self._databases = weakref.WeakSet()
                self._thread = None
                self._owner_pid = pid
            self._databases.add(db)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def unregister(self, db) -> None:
        with self._lock:
            self._databases.discard(db)

    def _run(self) -> None:
        while not self._wake.wait(self.interval):
            for db in list(self._databases):
                self._duty(db)


scheduler = Scheduler("audit-partitions", INTERVAL_SECONDS, lambda db: db.maintain_audit_partitions())
