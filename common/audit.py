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
        ids = logs.request_ids()
        logs.log_line(log, logging.INFO, "audit event", {"audit": event}, tail=', "audit": ' + _event_json(event, ids),
                      ids=ids, enabled=True)


def _event_json(event: dict, ids: logs.RequestIds | None = None) -> str:
    """logs.to_json(event), the same text, written with the keys known (a read's log line at INFO,
    issue 25; an f-string joins its parts in one step, where % formatting took twice the
    instructions). Events are made by new_event (and copied from one), so their keys come in its
    order, which the text keeps whatever the dict's: checking the dict's order took 2,700
    instructions. `ids`: the request's (logs.request_ids()), whose JSON texts are the event's
    where it has the same."""
    try:
        if len(event) != 7:
            return logs.to_json(event)
        service, request_id, principal, action, target, outcome, details = (
            event["service"], event["request_id"], event["principal"], event["action"], event["target"],
            event["outcome"], event["details"])
    except KeyError:
        return logs.to_json(event)
    if (type(service) is str and type(action) is str and type(target) is str and type(outcome) is str
            and (request_id is None or type(request_id) is str) and (principal is None or type(principal) is str)):
        quoted, names = logs.quoted, _QUOTED_NAMES
        version = details.get("version")
        return (f'{{"service": {names.get(service) or _quoted_name(service)}, "request_id": '
                f'{ids[1] if ids is not None and request_id is ids[0] else _null_or_quoted(request_id)}, '
                f'"principal": {ids[3] if ids is not None and principal is ids[2] else _null_or_quoted(principal)}, '
                f'"action": {names.get(action) or _quoted_name(action)}, "target": {quoted(target)}, '
                f'"outcome": {names.get(outcome) or _quoted_name(outcome)}, "details": '
                # a read's {"version": n} written directly
                f'{f"{{{_VERSION_KEY}{version}}}" if type(version) is int and len(details) == 1 else logs.to_json(details)}}}')
    return logs.to_json(event)


_VERSION_KEY = '"version": '


def _null_or_quoted(text: str | None) -> str:
    return "null" if text is None else logs.quoted(text)


_QUOTED_NAMES: dict[str, str] = {}  # a service's, an action's or an outcome's name -> its JSON text
_QUOTED_NAMES_MOST = 256  # names are constants of the code: a few dozen


def _quoted_name(name: str) -> str:
    text = logs.quoted(name)
    if len(_QUOTED_NAMES) < _QUOTED_NAMES_MOST:
        _QUOTED_NAMES[name] = text
    return text
