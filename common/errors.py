"""The exception hierarchy and the one JSON error envelope of the contract.

Services raise these; a single set of Flask error handlers renders every error
(ours, the router's 404/405/413, flask-smorest's validation errors and any
unhandled exception) as::

    {"error_code": str, "error_message": str, "property": str?, "details": [...]}
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client sees with this status, code and message."""

    status = 500
    code = "GENERAL_ERROR"
    default_message = "internal error"

    def __init__(self, message=None, *, property=None, details=None, code=None, headers=None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.property = property
        self.details = details or []
        if code:
            self.code = code
        self.headers = headers or {}

    def with_status(self, status: int) -> "ApiError":
        self.status = status
        return self

    def to_dict(self):
        body = {"error_code": self.code, "error_message": self.message}
        if self.property:
            body["property"] = self.property
        body["details"] = self.details
        return body


class BadRequest(ApiError):
    status, code, default_message = 400, "BAD_REQUEST", "bad request"


class InvalidRequestData(ApiError):
    status, code, default_message = 400, "INVALID_REQUEST_DATA", "invalid request data"


class Unauthorized(ApiError):
    status, code, default_message = 401, "UNAUTHORIZED", "missing or invalid bearer token"

    def __init__(self, message=None, **kw):
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(message, **kw)


class PermissionDenied(ApiError):
    status, code, default_message = 403, "PERMISSION_DENIED", "permission denied"


class NotFound(ApiError):
    status, code, default_message = 404, "OBJECT_NOT_FOUND", "object not found"


class Conflict(ApiError):
    status, code, default_message = 409, "VALUE_DUPLICATE", "conflict"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "OUT_OF_RESOURCES", "request body too large"


class TooManyRequests(ApiError):
    status, code, default_message = 429, "MAX_LOAD", "limit reached"


class DatabaseUnavailable(ApiError):
    status, code, default_message = 503, "DATABASE_ERROR", "database unavailable"


class IntraServiceError(ApiError):
    status, code, default_message = 503, "INTRA_SERVICE_COMMUNICATION_ERROR", "a dependent service is unavailable"


# --- marshmallow validation messages -> contract error codes ---------------

_CODE_BY_MESSAGE_START = (
    ("Missing data for required field", "REQUIRED_VALUE_MISSING"),
    ("Field may not be null", "VALUE_INCORRECT_TYPE"),
    ("Not a valid", "VALUE_INCORRECT_TYPE"),
    ("Invalid type", "VALUE_INCORRECT_TYPE"),
    ("Invalid input type", "VALUE_INCORRECT_TYPE"),
    ("Unknown field", "INVALID_REQUEST_DATA"),
    ("Must be greater", "VALUE_OUT_OF_BOUNDS"),
    ("Must be less", "VALUE_OUT_OF_BOUNDS"),
    ("Length must", "VALUE_OUT_OF_BOUNDS"),
    ("Shorter than", "VALUE_OUT_OF_BOUNDS"),
    ("Longer than", "VALUE_OUT_OF_BOUNDS"),
    ("Must be one of", "VALUE_INCORRECT_FORMAT"),
    ("String does not match", "VALUE_INCORRECT_FORMAT"),
)


def code_for_message(message: str) -> str:
    for start, code in _CODE_BY_MESSAGE_START:
        if message.startswith(start):
            return code
    # Our own validators raise messages prefixed with a code, e.g. "VALUE_OUT_OF_BOUNDS: ..."
    head = message.split(":", 1)[0]
    if head.isupper() and "_" in head:
        return head
    return "INVALID_REQUEST_DATA"


def _strip_code_prefix(message: str) -> str:
    head, sep, rest = message.partition(":")
    if sep and head.isupper() and "_" in head:
        return rest.strip()
    return message


def _flatten(messages, prefix=""):
    """Yield (property path, message) from marshmallow's nested message dict."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                yield from _flatten(value, prefix)
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
                yield from _flatten(value, path)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            yield from _flatten(item, prefix)
    else:
        yield prefix, str(messages)


_WEBARGS_LOCATIONS = {"json", "query", "path", "form", "headers", "files", "view_args", "json_or_form", "querystring"}


def validation_error(messages) -> ApiError:
    """Turn marshmallow/webargs messages ({location: {field: [msg]}}) into one ApiError."""
    if isinstance(messages, dict) and set(messages) <= _WEBARGS_LOCATIONS:
        merged = {}
        for per_location in messages.values():
            if isinstance(per_location, dict):
                merged.update(per_location)
            else:
                merged.setdefault("_schema", []).extend(per_location)
        messages = merged
    details = []
    for prop, message in _flatten(messages):
        entry = {"error_code": code_for_message(message), "error_message": _strip_code_prefix(message)}
        if prop:
            entry["property"] = prop
        details.append(entry)
    if not details:
        return InvalidRequestData()
    first = details[0]
    code = first["error_code"] if len(details) == 1 else "INVALID_REQUEST_DATA"
    message = first["error_message"] if len(details) == 1 else "invalid request data"
    return ApiError(message, property=first.get("property"), details=details, code=code).with_status(400)


def _router_error(exc: HTTPException) -> ApiError:
    if exc.code == 404:
        return NotFound("no such resource")
    if exc.code == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ()))
        return ApiError("method not allowed", code="BAD_REQUEST", headers={"Allow": allowed}).with_status(405)
    if exc.code == 413:
        return PayloadTooLarge()
    if exc.code == 401:
        return Unauthorized()
    if exc.code == 403:
        return PermissionDenied()
    if exc.code and exc.code < 500:
        return ApiError(exc.description or "bad request", code="BAD_REQUEST").with_status(exc.code)
    return ApiError("internal error").with_status(exc.code or 500)


def render(error: ApiError):
    response = jsonify(error.to_dict())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Make every error of the app come out in the contract's envelope.

    Register after flask-smorest's Api so these handlers win.
    """

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return render(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # webargs/flask-smorest put validation messages on exc.data["messages"].
        messages = (getattr(exc, "data", None) or {}).get("messages")
        if messages and exc.code in (400, 422):
            return render(validation_error(messages))
        return render(_router_error(exc))

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        # Log the type and the traceback frames, never the exception message: it may hold a secret.
        log.error("unhandled exception", extra={"exception_type": type(exc).__name__}, exc_info=_redacted(exc))
        return render(ApiError("internal error"))


def _redacted(exc: BaseException):
    """exc_info whose exception text is replaced so a secret in it never reaches a log."""
    safe = type("RedactedError", (Exception,), {})(f"{type(exc).__name__} (message redacted)")
    return (type(safe), safe, exc.__traceback__)
