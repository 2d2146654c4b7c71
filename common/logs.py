"""JSON logs, one object a line, carrying the request id and the caller's subject.

Log records never carry request bodies, headers or exception messages: those are
where secrets would leak.
"""
from __future__ import annotations

import json
import logging
import sys
import time

from flask import g, has_request_context

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = time.gmtime(record.created)
        entry = {
            # strftime("%Y-%m-%dT%H:%M:%S")'s text (a record's year has four digits) at half its cost
            "time": "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (*moment[:6], int(record.msecs)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
            principal = g.get("principal")
            if principal is not None:
                entry["principal"] = principal.sub
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _NoLibpqDetails(logging.Filter):
    """psycopg and its pool log libpq's messages (host, port, user, database, the server's
    words) as the exceptions and connections in their records' arguments: keep the record
    and its own words, and put only the type of such an argument in the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a if isinstance(a, (str, int, float)) else type(a).__name__ for a in record.args)
        if record.exc_info:  # a traceback would carry the message too
            record.msg, record.exc_info, record.exc_text = f"{record.msg} ({record.exc_info[0].__name__})", None, None
        return True


_LIBPQ_LOGGERS = ("psycopg", "psycopg.pool")  # a logger's filters do not apply to its children


def configure(level: str = "INFO", stream=None) -> None:
    """Route the root logger to stdout (or `stream`: CLIs keep stdout for their output) as JSON (idempotent)."""
    for name in _LIBPQ_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoLibpqDetails) for f in logger.filters):
            logger.addFilter(_NoLibpqDetails())
    # A line shows none of LogRecord's standard attributes (JsonFormatter): where a record was
    # made, by which thread and process, is not worked out for each (an INFO audit line a read).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
