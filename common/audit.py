"""The audit trail: every secret read, write, delete, checkout, release and rotation.

Fail closed: an event that cannot be written fails the operation. Writes record their
event inside the operation's own transaction (both or neither); reads record theirs
before the data leaves the service. Events go to the database and to the log, and never
carry a secret value.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import psycopg
from flask import current_app, g, has_request_context
from psycopg.types.json import Jsonb

from common import audit_store, errors
from common.db import Database

log = logging.getLogger("audit")

SUCCESS, DENIED, NOT_FOUND, FAILED = "success", "denied", "not_found", "failed"

def new_event(action: str, target: str, outcome: str = SUCCESS, *, details: dict | None = None,
              principal: str | None = None, service: str | None = None) -> dict:
    """An event's columns, filled from the request (request id, caller) where not given."""
    in_request = has_request_context()
    return {
        "service": service or current_app.config["SERVICE_NAME"],
        "request_id": g.get("request_id") if in_request else None,
        "principal": principal or (g.principal.sub if in_request and g.get("principal") else None),
        "action": action,
        "target": target,
        "outcome": outcome,
        "details": details or {},
    }


def record(action: str, target: str, outcome: str = SUCCESS, *, cur=None, details: dict | None = None,
           db: Database | None = None, principal: str | None = None, service: str | None = None) -> None:
    """Write one event; with `cur`, inside that transaction. Raises DatabaseUnavailable on failure."""
    event = new_event(action, target, outcome, details=details, principal=principal, service=service)
    params = {**event, "details": Jsonb(event["details"])}
    with failing_closed(action, target):
        if cur is not None:
            audit_store.insert_event(cur, params)
        else:
            with (db or current_app.extensions["db"]).cursor() as own:
                audit_store.insert_event(own, params)
    log_event(event)


@contextmanager
def failing_closed(action: str, target: str):
    """Around any statement that writes an audit event: no event, no operation."""
    try:
        yield
    except psycopg.Error:
        # A transaction around it rolls back; a read returns nothing.
        log.error("audit event could not be written", extra={"action": action, "target": target})
        raise errors.DatabaseUnavailable("the audit trail could not be written") from None


def log_event(event: dict) -> None:
    """The log's copy of an event (the database has the other)."""
    log.info("audit event", extra={"audit": event})
