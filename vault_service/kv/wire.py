"""What goes out under /v1/: Vault's envelope, its error bodies, its times and durations."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from common import current, errors
from common.durations import go_format
from vault_service import names
from vault_service.acl.access import PolicyDenied
from vault_service.versioned import service

# hvac reads `errors` only when the Content-Type is exactly this (no charset).
JSON = "application/json"


class KvError(Exception):
    """An answer in Vault's error shape: `{"errors": [...]}`, or, with `body`, that body."""

    def __init__(self, status: int, *messages: str, body: dict | None = None, headers: dict | None = None):
        super().__init__(status, messages)
        self.status, self.messages, self.body, self.headers = status, list(messages), body, headers or {}


def not_found() -> KvError:
    return KvError(404)  # a missing secret or version: an empty list


def permission_denied() -> KvError:
    return KvError(403, "permission denied")


# What Vault answers when a token's policies refuse a request (its multierror's text).
POLICY_DENIED = "1 error occurred:\n\t* permission denied\n\n"


def _dumps(body) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def respond(body, status: int = 200):
    return current.app().response_class(_dumps(body), status=status, mimetype=JSON)


def envelope(data, *, warnings: list[str] | None = None, mount_type: str = "kv") -> dict:
    return {
        "request_id": _random_uuid(),
        "lease_id": "", "renewable": False, "lease_duration": 0,
        "data": data, "wrap_info": None, "warnings": warnings or None, "auth": None,
        "mount_type": mount_type,
    }


def _random_uuid() -> str:
    """str(uuid.UUID(bytes=os.urandom(16), version=4)), without the UUID object (issue 25)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def ok(data, *, warnings: list[str] | None = None, mount_type: str = "kv", status: int = 200):
    return respond(envelope(data, warnings=warnings, mount_type=mount_type), status)


def no_content(warnings: list[str] | None = None):
    """204 with no body; with warnings, Vault answers 200 with them instead."""
    if warnings:
        return ok(None, warnings=warnings)
    response = current.app().response_class(b"", status=204)
    del response.headers["Content-Type"]
    return response


def error_response(error: KvError):
    response = respond(error.body if error.body is not None else {"errors": error.messages}, error.status)
    response.headers.extend(error.headers)
    return response


def time(value: datetime | None) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped); "" when unset."""
    if value is None:
        return ""
    value = value.astimezone(timezone.utc)
    fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
    if value.year < 1000:  # strftime's %Y does not pad these: keep its exact text
        return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    # strftime's text at a fraction of its cost (issue 25)
    return "%04d-%02d-%02dT%02d:%02d:%02d%sZ" % (value.year, value.month, value.day, value.hour, value.minute,
                                                value.second, fraction)


def duration(seconds: int) -> str:
    """Go's time.Duration.String() of whole seconds, negative ones too."""
    return "-" + go_format(-seconds) if seconds < 0 else go_format(seconds)


# --- the versioned service's errors, as Vault would answer them ----------------

CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"
RESERVED = "reserved for the Secrets Manager"  # the page's words for names.RESERVED_MESSAGE


def translated(error: errors.ApiError) -> KvError:
    if isinstance(error, service.CasMismatch):
        return KvError(400, CAS_MISMATCH)  # hvac raises InvalidRequest; Vault's 412 is X-Vault-Index only
    if isinstance(error, service.CasRequired):
        return KvError(400, CAS_REQUIRED)
    if error.status == 401:  # hvac's is_authenticated() raises on 401 instead of returning False
        return permission_denied()
    if isinstance(error, PolicyDenied):
        return KvError(403, POLICY_DENIED)
    if error.status == 403:
        return KvError(403, RESERVED) if error.message == names.RESERVED_MESSAGE else permission_denied()
    if error.status == 404:
        return not_found()
    if error.status == 413:
        return KvError(413, "request body too large")
    if error.status == 414:
        return KvError(414, "URI too long")
    if error.status == 429:
        return KvError(429, error.message, headers={k: v for k, v in error.headers.items() if k == "Retry-After"})
    if error.status == 503:
        return KvError(503, "storage unavailable")
    if error.status >= 500:
        return KvError(500, "internal error")
    if error.status == 400 and error.property == "path":
        return KvError(400, f"invalid path: {error.message.removeprefix('path ')}")
    messages = [detail["error_message"] if not detail.get("property") else f"{detail['property']}: {detail['error_message']}"
                for detail in error.details] or [error.message]
    return KvError(error.status, *messages)
