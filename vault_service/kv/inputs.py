"""What comes in under /v1/: JSON bodies, Vault's weakly typed values, query parameters.

Vault decodes bodies whatever their Content-Type and converts values weakly: integers may
come as numeric strings (`vault kv delete -versions=1,2` sends ["1","2"]), durations as Go
strings, ISO 8601 or seconds. Unknown fields are ignored with a warning.
"""
from __future__ import annotations

import re

from flask import request
from marshmallow import ValidationError

from common import current, errors, strict_json
from common.durations import PATTERN as DURATION_PATTERN, parse_seconds
from common.web import request_body
from vault_service import names
from vault_service.secrets.schemas import SecretData
from vault_service.versioned.schemas import MAX_CUSTOM_METADATA_KEYS, MAX_VERSIONS_LISTED
from vault_service.kv.wire import KvError

MAX_INT = 2**31 - 1  # what the store's version and count columns hold
MERGE_PATCH = "application/merge-patch+json"
_PARSE_ERROR = "error parsing JSON"
_JSON_WHITESPACE = b" \t\r\n"  # RFC 8259's whitespace: a body of nothing else is no body
_SECRET_DATA = SecretData()
# A number as text, exactly as the OpenAPI document states it (kv.openapi uses these): ASCII digits
# only (no sign, space, "_" or other scripts' digits, which int() would take), at most 9 so that
# every one is within MAX_INT. A query's integer is any run of ASCII digits, its range checked.
COUNT_TEXT = r"^[0-9]{1,9}$"
POSITIVE_TEXT = r"^[1-9][0-9]{0,8}$"
SIGNED_TEXT = r"^-?[0-9]{1,9}$"
VERSIONS_TEXT = r"^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*$"
QUERY_TEXT = r"^[0-9]+$"
_DURATION = re.compile(DURATION_PATTERN)


class Body(dict):
    """A request's JSON object; `warnings` says which of its fields the endpoint ignored."""

    def __init__(self, fields: dict, known: tuple[str, ...]):
        super().__init__((key, value) for key, value in fields.items() if key in known)
        unknown = sorted(key for key in fields if key not in known)
        self.warnings = [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"] if unknown else []


def body(*known: str) -> Body:
    """The request body as a JSON object (empty: {}), as strict as everywhere (common.strict_json:
    no duplicate keys, non-finite numbers, NUL or lone surrogates); else 400 "error parsing JSON"."""
    raw = request_body(request)
    if not raw.strip(_JSON_WHITESPACE):  # (bytes.strip() would take a form feed or a vertical tab too)
        return Body({}, known)
    try:
        value = strict_json.loads(raw)
    except errors.ApiError as error:
        detail = [f"{error.property}: {error.message}"] if error.property else []
        raise KvError(400, _PARSE_ERROR, *detail) from None
    if not isinstance(value, dict):
        raise KvError(400, _PARSE_ERROR)
    return Body(value, known)


def require_merge_patch() -> None:
    """Vault names the media type it got, without its parameters (charset=...)."""
    provided = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if provided != MERGE_PATCH:
        raise KvError(415, f"PATCH requires Content-Type of {MERGE_PATCH}, provided {provided}")


# --- values -------------------------------------------------------------------

def integer(value, field: str, *, minimum: int = 0, text: str | None = None) -> int:
    """A JSON integer, or its decimal text as the document states it (`text`; by default the
    body's pattern for `minimum`). Not a float, even 2.0: Vault decodes numbers as json.Number
    and refuses one with a fraction or exponent for an integer field, and so does the document."""
    if isinstance(value, str):
        pattern = text or (POSITIVE_TEXT if minimum >= 1 else COUNT_TEXT if minimum == 0 else SIGNED_TEXT)
        if not re.fullmatch(pattern, value):
            raise KvError(400, f"error converting input {value!r} for field {field!r}")
        value = int(value, 10)
    if isinstance(value, bool) or not isinstance(value, int):
        raise KvError(400, f"error converting input for field {field!r}: not an integer")
    if not minimum <= value <= MAX_INT:
        raise KvError(400, f"{field} must be between {minimum} and {MAX_INT}")
    return value


def optional_integer(fields: dict, field: str, **kwargs) -> int | None:
    return None if fields.get(field) is None else integer(fields[field], field, **kwargs)


def boolean(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        parsed = parse_bool(value)
        if parsed is not None:
            return parsed
    raise KvError(400, f"error converting input {value!r} for field {field!r}")


# Go's strconv.ParseBool's words (also what the OpenAPI document lists, kv.openapi).
TRUE_WORDS = ("1", "t", "T", "TRUE", "true", "True")
FALSE_WORDS = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool; None if unparsable."""
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


def seconds(value, field: str, *, negative: bool = False) -> int:
    """Integer seconds (a JSON integer or its text), a Go duration string or ISO 8601, as the
    document states them (`negative`: with a leading "-" too); "" is 0."""
    if not isinstance(value, str):
        return integer(value, field, minimum=-MAX_INT if negative else 0)
    text, sign = value, 1
    if text.startswith("-") and negative:
        text, sign = text[1:], -1
    if value == "" or re.fullmatch(COUNT_TEXT, text):
        return sign * int(text or "0", 10)
    if not _DURATION.fullmatch(text):
        raise KvError(400, f"error converting input {value!r} for field {field!r}: not a duration such as 720h, "
                           "1h30m, P30D or a number of seconds")
    try:
        return sign * parse_seconds(text)
    except ValueError as exc:
        raise KvError(400, f"error converting input {value!r} for field {field!r}: {exc}") from None


def versions(fields: dict) -> list[int]:
    """`versions` as a list of numbers or numeric strings, or one comma-separated string."""
    value = fields.get("versions")
    if isinstance(value, str) and value:
        if not re.fullmatch(VERSIONS_TEXT, value):
            raise KvError(400, f"error converting input {value[:64]!r} for field 'versions'")
        value = value.split(",")
    elif value == "":
        value = []
    if value is None or value == []:
        raise KvError(400, "no version number provided")
    if not isinstance(value, list):
        value = [value]
    if len(value) > MAX_VERSIONS_LISTED:  # checked before any item is read
        raise KvError(400, f"at most {MAX_VERSIONS_LISTED} version numbers may be given, not {len(value)}")
    return [integer(item, "versions", minimum=1) for item in value]


def secret_data(value, *, required_message: str = "no data provided") -> dict:
    """`data` under the suite's limits (a JSON object, 64 KiB serialised, depth 32)."""
    if value is None:
        raise KvError(400, required_message)
    try:
        return _SECRET_DATA.deserialize(value)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
        raise KvError(400, *(message.split(": ", 1)[-1] for message in messages)) from None


def custom_metadata(value, *, allow_null_values: bool = False) -> dict | None:
    """Vault's rules: at most 64 keys, keys 1 to 128 and values 1 to 512 printable characters."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise KvError(400, "custom_metadata validation failed: must be a map of strings")
    problems = []
    if len(value) > MAX_CUSTOM_METADATA_KEYS:
        problems.append(f"payload must contain at most {MAX_CUSTOM_METADATA_KEYS} keys, provided {len(value)}")
    for key, item in value.items():
        if not 1 <= len(key) <= 128 or not key.isprintable():
            problems.append(f"length of key {key[:32]!r} is {len(key)} or it has unprintable characters")
        if item is None and allow_null_values:
            continue
        if not isinstance(item, str) or not 1 <= len(item) <= 512 or not item.isprintable():
            problems.append(f"value of key {key[:32]!r} must be 1 to 512 printable characters")
    if problems:
        raise KvError(400, "custom_metadata validation failed: " + "; ".join(problems))
    return value


def path(raw: str) -> str:
    """A KV path is a shared-secret name; 400 "invalid path: ..." otherwise."""
    reason = names.problem(raw)
    if reason:
        raise KvError(400, f"invalid path: {reason}")
    return raw


def query_version() -> int | None:
    """?version=N; 0 or none means the current version."""
    request = current.request()
    raw = request.args.get("version") if request.environ.get("QUERY_STRING") else None
    return None if raw in (None, "") else integer(raw, "version", text=QUERY_TEXT)
