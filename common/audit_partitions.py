"""Upkeep of the audit trail's daily partitions (common/migrations/0002_audit_partitions.sql).

Every process of a service does it: once when it migrates (at its first use of the
database), then about hourly from one daemon thread per process. A pass creates the
partitions of yesterday to DAYS_AHEAD days ahead that are missing and, with
AUDIT_RETENTION_DAYS set, drops the partitions whose every event is older than that
(audit_partition_store: the SQL, and how passes of many processes take turns). A failed pass is logged and retried
next time: the default partition takes the events of a day whose partition is late.
"""
from __future__ import annotations

import logging
import threading
import weakref

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0


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
