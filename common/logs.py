"""JSON logs, one object a line, carrying the request id and the caller's subject.

Log records never carry request bodies, headers or exception messages: those are
where secrets would leak.
"""
from __future__ import annotations

import io
import json
import logging
import sys
import time

from common import auth, current

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _entry(created: float, msecs: float, level_name: str, logger_name: str, message: str) -> dict:
    """A line's fields before the record's own (extra) ones."""
    entry = {
        "time": _time_text(created, msecs),
        "level": level_name,
        "logger": logger_name,
        "message": message,
    }
    if current.in_request():
        g = current.g()
        entry["request_id"] = g.get("request_id")
        principal = g.get("principal")
        if principal is not None:
            entry["principal"] = principal.sub
    return entry


_second = [None, ""]  # [the last whole second formatted, its text]: lines come many a second


def _time_text(created: float, msecs: float) -> str:
    """strftime("%Y-%m-%dT%H:%M:%S")'s text (a record's year has four digits), milliseconds, Z."""
    return "%s.%03dZ" % (_second_text(created), msecs)


def _second_text(created: float) -> str:
    whole = int(created)
    second = _second
    if second[0] != whole:
        text = "%04d-%02d-%02dT%02d:%02d:%02d" % time.gmtime(whole)[:6]
        second[0], second[1] = whole, text  # a racing thread writes the same pair
        return text
    return second[1]


quoted = json.encoder.encode_basestring_ascii  # json.dumps' own (C) quoting of a str
# json.dumps(value, default=str)'s encoder, made once: json.dumps makes one on every call (a
# third of a small line's cost). No cycle check: a log line's values never hold themselves.
_encode = json.encoder.c_make_encoder(None, str, quoted, None, ": ", ", ", False, False, True) \
    if json.encoder.c_make_encoder is not None else None


def to_json(value) -> str:
    """json.dumps(value, default=str), the same text."""
    if _encode is None:
        return json.dumps(value, default=str)
    return "".join(_encode(value, 0))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record.created, record.msecs, record.levelname, record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return to_json(entry)


_MILLISECONDS = "%03d"  # of a float: its whole milliseconds, as _time_text writes them
_FIXED_FIELDS: dict[tuple, str] = {}  # (level, logger's name, message) -> their fields' text
_FIXED_FIELDS_MOST = 512  # call sites pass constant messages; one formatting its own is not kept past this


def _fixed_fields(level: int, name: str, message: str) -> str:
    """'"level": ..., "logger": ..., "message": ...', the part of a line a call site repeats."""
    key = (level, name, message)
    text = _FIXED_FIELDS.get(key)
    if text is None:
        text = '"level": %s, "logger": %s, "message": %s' % (quoted(logging.getLevelName(level)), quoted(name),
                                                            quoted(message))
        if len(_FIXED_FIELDS) < _FIXED_FIELDS_MOST:
            _FIXED_FIELDS[key] = text
    return text


# The current request's ids as a line writes them: (request id, its JSON text, the caller's
# subject, its JSON text, the line's fields ', "request_id": ..., "principal": ...' as _entry puts
# them). A line has them among its fields and an audit line once more in its event: quoting a
# 32-character id is 2,000 instructions. A tuple: an instance of a class took 1,000 more to make.
RequestIds = tuple


def request_ids() -> RequestIds | None:
    """The current request's ids; None outside a request."""
    g = current.g_of_request()
    if g is None:
        return None
    values = vars(g)
    request_id, principal = values.get("request_id"), values.get("principal")
    request_id_json = quoted(request_id) if type(request_id) is str else to_json(request_id)
    if principal is None:
        return request_id, request_id_json, None, "null", f', "request_id": {request_id_json}'
    sub = principal.sub
    sub_json = principal.sub_json if type(principal) is auth.Principal else quoted(sub) if type(sub) is str else to_json(sub)
    return request_id, request_id_json, sub, sub_json, f', "request_id": {request_id_json}, "principal": {sub_json}'


def log_line(logger: logging.Logger, level: int, message: str, extra: dict, *, tail: str | None = None,
             ids: RequestIds | None = None, enabled: bool = False) -> None:
    """logger.log(level, message, extra=extra), the same line, without a LogRecord when only this
    module's JSON handlers would see it (no filters, no other handler): an audit event's line at
    INFO, production's level, was 150,000 instructions on top of a read's 1.4M through the
    logging machinery, most of it the record, the handler's general path and json.dumps (issue
    25). A caller that has them already passes `tail`, `extra`'s fields as they end the line
    (', "key": its to_json text' each), `ids`, request_ids(), and `enabled`, that it asked
    logger.isEnabledFor(level)."""
    if not enabled and not logger.isEnabledFor(level):
        return
    handlers = _plain_json_handlers(logger)
    if handlers is None:
        logger.log(level, message, extra=extra)
        return
    created = time.time()
    whole = int(created)
    second = _second
    if tail is None:
        tail = "".join([", " + quoted(key) + ": " + to_json(value) for key, value in extra.items()])
    if ids is None:
        ids = request_ids()
    # _entry's fields, then extra's, written directly: to_json(_entry(...) | extra) is the same text
    # (an f-string: % formatting these five parts took 2,400 instructions more)
    text = (f'{{"time": "{second[1] if second[0] == whole else _second_text(created)}.'
            f'{_MILLISECONDS % ((created - whole) * 1000)}Z", '
            f'{_FIXED_FIELDS.get((level, logger.name, message)) or _fixed_fields(level, logger.name, message)}'
            f'{"" if ids is None else ids[4]}{tail}}}\n')
    for handler in handlers:
        if level >= handler.level:
            _write(handler, text if handler.terminator == "\n" else text[:-1] + handler.terminator)


def _plain_json_handlers(logger: logging.Logger) -> list | None:
    """The handlers a record of `logger` would reach, when each is a StreamHandler with our
    JsonFormatter and nothing on the way filters or changes records; None otherwise (a test's
    capturing handler, a filter, a handler of another kind: the logging module's own path)."""
    handlers: list = []
    node = logger
    while node is not None:
        if node.filters or node.disabled:
            return None
        for handler in node.handlers:
            if type(handler) is not logging.StreamHandler or type(handler.formatter) is not JsonFormatter or handler.filters:
                return None
            handlers.append(handler)
        node = node.parent if node.propagate else None
    return handlers or None  # none: logging's last resort decides


def _write(handler: logging.StreamHandler, line: str) -> None:
    """StreamHandler.emit's write of a formatted line and its terminator, and its flush (under
    the handler's lock, taken once)."""
    with handler.lock:
        try:
            stream = handler.stream
            stream.write(line)
            if type(stream) is io.TextIOWrapper or (stream and hasattr(stream, "flush")):  # stdout's type: hasattr is 1,000
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": "(a JSON log line)"}))


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
