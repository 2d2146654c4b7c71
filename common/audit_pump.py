"""Every process's background audit work, about once a second (common.db runs it on a daemon
thread from the moment the process opens its pool): chain what can be chained
(audit_chain.chain_pass), write the head to the log when it is due, feed the sinks whose lease
this process holds (audit_stream.Delivery), and find out whether a sink is too far behind.

Every step is safe in any number of processes and replicas at once: the chain is extended by
whoever holds its head row, the head is logged by whoever moves checkpointed_at, a sink is
fed by its lease holder. A failed step is logged and tried again next second.
"""
from __future__ import annotations

import logging
import os
import socket

import psycopg
from flask import current_app, request

from common import audit_chain, audit_stream, errors, ratelimit
from common.db import Database

log = logging.getLogger("audit")


class AuditStreamBehind(errors.IntraServiceError):
    """Requests are refused while a sink is further behind than AUDIT_SINK_MAX_LAG_SECONDS."""


class AuditPump:
    def __init__(self, db: Database, service: str, *, sinks: list, redactor: audit_stream.Redactor,
                 max_lag_seconds: int = 0):
        self.db, self.service, self.max_lag_seconds = db, service, max_lag_seconds
        self._nonce = os.urandom(4).hex()
        self.deliveries = [audit_stream.Delivery(db, service, sink, redactor, owner=self._owner) for sink in sinks]
        self.redactor = redactor
        self.behind: str | None = None  # why requests are refused now (fail closed), or None

    def _owner(self) -> str:
        # Evaluated at each lease: a forked worker is another owner than its parent.
        return f"{socket.gethostname()}:{os.getpid()}:{self._nonce}"

    def tick(self) -> None:
        try:
            audit_chain.chain_pass(self.db, self.service)
            audit_chain.checkpoint(self.db, self.service)
            for delivery in self.deliveries:
                delivery.tick()
            if self.max_lag_seconds and self.deliveries:
                self._judge_lag()
        except (psycopg.Error, errors.ApiError) as exc:
            log.warning("audit background pass failed", extra={"exception_type": type(exc).__name__})

    def _judge_lag(self) -> None:
        age = audit_stream.oldest_undelivered_age(self.db, self.service, [d.sink.name for d in self.deliveries])
        behind = (f"the audit stream is {age:.0f} s behind (more than AUDIT_SINK_MAX_LAG_SECONDS="
                  f"{self.max_lag_seconds}): requests wait until its sinks catch up") if age > self.max_lag_seconds else None
        if bool(behind) != bool(self.behind):
            log.warning("audit stream behind: refusing requests" if behind else "audit stream caught up",
                        extra={"audit_lag_seconds": round(age, 1)})
        self.behind = behind

    def refuse_if_behind(self) -> None:
        """Before a request (fail closed, as HashiCorp Vault does when no audit device can log);
        status and metrics still answer."""
        # Status, metrics and the API documents (no token, no audit event) answer whatever the
        # stream does: the routes the rate limits leave alone too.
        if self.behind and request.endpoint is not None and not ratelimit.is_exempt(current_app, request.endpoint):
            raise AuditStreamBehind(self.behind)


def install(app, db: Database) -> AuditPump:
    """The app's pump, started with the process's pool (Database.pool)."""
    settings = app.config
    pump = AuditPump(db, settings["SERVICE_NAME"], sinks=audit_stream.sinks_from(settings),
                     redactor=audit_stream.redactor_from(settings),
                     max_lag_seconds=settings["AUDIT_SINK_MAX_LAG_SECONDS"])
    db.audit_pump = pump
    app.extensions["audit_pump"] = pump
    if pump.max_lag_seconds and pump.deliveries:
        app.before_request(pump.refuse_if_behind)
    return pump


def leave_to_the_services(app) -> None:
    """A command-line run of the app (vault-admin rewrap) does no audit background work: the
    services' processes do it, and its log lines would mix into the command's output."""
    app.extensions["db"].audit_pump = None
