"""The audit trail: every secret read, write, delete, checkout, release and rotation.

Fail closed: an event that cannot be written fails the operation. Writes record their
event inside the operation's own transaction (both or neither); reads record theirs
before the data leaves the service. Events go to the database and to the log, and never
carry a secret value.
"""
from __future__ import annotations

import logging

import psycopg
from psycopg.types.json import Jsonb

from common import audit_store, current, errors, logs
from common.db import Database

log = logging.getLogger("audit")

SUCCESS, DENIED, NOT_FOUND, FAILED = "success", "denied", "not_found", "failed"

def new_event(action: str, target: str, outcome: str = SUCCESS, *, details: dict | None = None,
              principal: str | None = None, service: str | None = None) -> dict:
    """An event's columns, filled from the request (request id, caller) where not given."""
    in_request = current.in_request()
    g = current.g() if in_request else None
    caller = g.get("principal") if in_request else None
    return {
        "service": service or current.app().config["SERVICE_NAME"],
        "request_id": g.get("request_id") if in_request else None,
        "principal": principal or (caller.sub if caller else None),
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
            with (db or current.app().extensions["db"]).cursor() as own:
                audit_store.insert_event(own, params)
    log_event(event)


class failing_closed:
    """Around any statement that writes an audit event: no event, no operation. (A class, not a
    generator: entered on every read, issue 25.)"""

    __slots__ = ("action", "target")

    def __init__(self, action: str, target: str):
        self.action, self.target = action, target

    def __enter__(self):
        return None

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, psycopg.Error):
            # A transaction around it rolls back; a read returns nothing.
            log.error("audit event could not be written", extra={"action": self.action, "target": self.target})
            raise errors.DatabaseUnavailable("the audit trail could not be written") from None
        return False


def log_event(event: dict) -> None:
    """The log's copy of an event (the database has the other)."""
    if log.isEnabledFor(logging.INFO):
        logs.log_line(log, logging.INFO, "audit event", {"audit": event}, encoded={"audit": _event_json(event)})


_EVENT_FIELDS = ("service", "request_id", "principal", "action", "target", "outcome", "details")
_EVENT_JSON = ('{"service": %s, "request_id": %s, "principal": %s, "action": %s, "target": %s, "outcome": %s, '
               '"details": %s}')


def _event_json(event: dict) -> str:
    """logs.to_json(event), the same text, written with the keys known (a read's log line at
    INFO, issue 25)."""
    if tuple(event) == _EVENT_FIELDS:
        service, request_id, principal, action, target, outcome, details = event.values()
        if (type(service) is str and type(action) is str and type(target) is str and type(outcome) is str
                and (request_id is None or type(request_id) is str) and (principal is None or type(principal) is str)):
            quoted = logs.quoted
            return _EVENT_JSON % (quoted(service), "null" if request_id is None else quoted(request_id),
                                  "null" if principal is None else quoted(principal), quoted(action), quoted(target),
                                  quoted(outcome), _details_json(details))
    return logs.to_json(event)


def _details_json(details: dict) -> str:
    """logs.to_json(details); a read's {"version": n} written directly."""
    if len(details) == 1 and type(details.get("version")) is int:
        return '{"version": %d}' % details["version"]
    return logs.to_json(details)
