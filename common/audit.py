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

from common import errors
from common.db import Database, fetch_page

log = logging.getLogger("audit")

SUCCESS, DENIED, NOT_FOUND, FAILED = "success", "denied", "not_found", "failed"

_INSERT = """INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
             VALUES (%(service)s, %(request_id)s, %(principal)s, %(action)s, %(target)s, %(outcome)s, %(details)s)"""


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
            cur.execute(_INSERT, params)
        else:
            with (db or current_app.extensions["db"]).cursor() as own:
                own.execute(_INSERT, params)
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


SORT_DIRECTIONS = {"ASC": "ASC", "DESC": "DESC"}


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
