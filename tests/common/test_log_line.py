"""logs.log_line writes the line the logging module and JsonFormatter write for the same record."""
from __future__ import annotations

import io
import json
import logging
import time

from flask import Flask, g

from common import audit, logs
from common.auth import Principal


def _lines(monkeypatch, write) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test-log-line")
    logger.propagate, logger.handlers, logger.level = False, [handler], logging.INFO
    monkeypatch.setattr(time, "time", lambda: 1764936000.987654)
    try:
        write(logger)
    finally:
        logger.handlers, logger.filters = [], []
    return stream.getvalue()


def test_the_same_line_as_the_formatter_in_and_out_of_a_request(monkeypatch):
    event = {"service": "vault", "request_id": "r-1", "principal": "p\u00e9", "action": "secret.read",
             "target": 'secret:a"b', "outcome": "success", "details": {"version": 3}}
    app = Flask(__name__)
    for in_request, caller in ((False, None), (True, "s\u00e9"), (True, None)):
        # the request's own ids in the event (as audit.new_event puts them), or others
        events = [event, {**event, "request_id": "r-1", "principal": caller}, {**event, "principal": None}]
        for details, event_ in ((d, e) for d in ({"version": 3}, {"version": None}, {"versions": [2, 1]}, {})
                                for e in events):
            extra = {"audit": {**event_, "details": details}}

            def write(logger, fast):
                if fast:
                    logs.log_line(logger, logging.INFO, "audit event", extra,
                                  tail=', "audit": ' + audit._event_json(extra["audit"], ids := logs.request_ids()),
                                  ids=ids)
                else:
                    logger.info("audit event", extra=extra)

            def both():
                return [_lines(monkeypatch, lambda logger: write(logger, fast)) for fast in (True, False)]

            if in_request:
                with app.test_request_context("/"):
                    g.request_id = "r-1"
                    if caller is not None:
                        g.principal = Principal(sub=caller, scopes=frozenset())
                    fast, slow = both()
            else:
                fast, slow = both()
            assert fast == slow and fast.endswith("}\n")


def test_an_event_in_another_key_order_is_the_same_object():
    event = {"service": "vault", "request_id": None, "principal": "p", "action": "secret.read",
             "target": "secret:a", "outcome": "success", "details": {"version": 3}}
    reordered = dict(reversed(list(event.items())))
    assert audit._event_json(event) == logs.to_json(event)
    assert json.loads(audit._event_json(reordered)) == event


def test_a_filter_or_another_handler_takes_the_logging_path(monkeypatch):
    seen = []

    class Keep(logging.Filter):
        def filter(self, record):
            seen.append(record.getMessage())
            return True

    def write(logger):
        logger.addFilter(Keep())
        logs.log_line(logger, logging.INFO, "audit event", {"audit": {"a": 1}})

    assert '"audit": {"a": 1}' in _lines(monkeypatch, write) and seen == ["audit event"]
