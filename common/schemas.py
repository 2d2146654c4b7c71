"""Schema pieces both services use: paging arguments, case-insensitive enums, errors, and
the base of every request body (what real clients echo back or zero-fill)."""
from __future__ import annotations

import re
import uuid

from flask import has_request_context, request
from marshmallow import Schema, ValidationError, fields, missing, pre_load, validate

from common import errors
from common.durations import Duration

MAX_PAGE = 100
INT32_MAX = 2**31 - 1
# Every list a request may hold is bounded (API.md, "Everywhere"): work on it stays linear in a
# small number, and no single request grows a registry without end.
MAX_ROLES = 100  # roles in one list (read_roles, write_roles)
MAX_KEYWORDS = 64  # keywords of one search, in at most MAX_KEYWORDS_LENGTH characters
MAX_KEYWORDS_LENGTH = 1024


class Integer(fields.Integer):
    """An integer within int32, the range of every integer we take (offsets, limits, versions,
    counts): anything larger is a 400 here, never an overflow in PostgreSQL."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The OpenAPI documents state the int32 range too, where no narrower Range does.
        ranges = [v for v in self.validators if isinstance(v, validate.Range)]
        if not any(r.max is not None for r in ranges):
            self.metadata.setdefault("maximum", INT32_MAX)
        if not any(r.min is not None for r in ranges):
            self.metadata.setdefault("minimum", -INT32_MAX - 1)

    def _validated(self, value):
        number = super()._validated(value)
        if not -INT32_MAX - 1 <= number <= INT32_MAX:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: must be at most {INT32_MAX} in magnitude")
        return number


def StrictInteger(**kwargs) -> Integer:
    """JSON numbers only: "5" is a type error, not silently coerced."""
    return Integer(strict=True, **kwargs)


# Fields a read returns and the server fills: a client that PUTs back what it read sends them.
SERVER_FILLED = ("author", "path", "created", "updated", "updated_by", "created_by")
# Body fields that repeat a URL parameter: accepted where they equal it.
PATH_ECHOES = {"name": "name", "owner_id": "user_id", "host_id": "host_id"}
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class RequestBody(Schema):
    """The base of every JSON request body, so what real clients send is taken the same way
    everywhere (the contract's "Everywhere"):

    - server-filled fields (`IGNORED`) are dropped;
    - a field that repeats the URL (`PATH_ECHOES`) is dropped where it equals it, else 400;
    - Go clients send every field with its zero value: `null`, `""`, `"0001-01-01T00:00:00Z"`,
      `[]` where a list field has a default, or `0` where the field cannot hold 0, in an optional
      field means "not set", so its default applies exactly as if it were left out;
    - every other unknown field is 400 (marshmallow's own rule).
    """

    IGNORED: tuple[str, ...] = SERVER_FILLED
    # Fields of which one at least is required (the document says so with anyOf): the body is too.
    REQUIRED_ONE_OF: tuple[str, ...] = ()

    @pre_load
    def _as_clients_send_it(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        url_args = (request.view_args or {}) if has_request_context() else {}
        kept = {}
        for key, value in data.items():
            field = self.load_fields.get(key)
            if field is None and key in self.IGNORED:
                continue
            if field is None and url_args.get(PATH_ECHOES.get(key)) is not None:
                _check_echo(key, value, url_args[PATH_ECHOES[key]])
                continue
            if field is not None and not field.required and _is_go_zero(field, value):
                continue
            if isinstance(field, fields.Boolean) and not isinstance(value, bool):
                # marshmallow takes "yes", "on", 1 and "0" for booleans; JSON has true and false.
                raise ValidationError({key: ["VALUE_INCORRECT_TYPE: Not a valid boolean."]})
            kept[key] = value
        return kept


def _check_echo(key: str, value, url_value: str) -> None:
    if value in (None, "") or value == url_value or _same_uuid(value, url_value):
        return
    raise ValidationError(f"INVALID_REQUEST_DATA: {key} must equal the {PATH_ECHOES[key]} of the URL", key)


def _same_uuid(a, b) -> bool:
    try:
        return uuid.UUID(str(a)) == uuid.UUID(str(b))
    except ValueError:
        return False


def _is_go_zero(field: fields.Field, value) -> bool:
    if value is None or value == "" or value == GO_ZERO_TIME:
        return True
    if value == [] and isinstance(field, fields.List) and field.load_default is not missing:
        return True  # a list's zero value (common.openapi documents it for these alone): not a string's
    if value == 0 and type(value) is int and isinstance(field, fields.Integer):
        return cannot_hold_zero(field)
    if isinstance(field, Duration) and isinstance(value, str) and cannot_hold_zero(field):
        # A zero duration ("0s", "PT0S") where 0 is out of range is a zero value too.
        return field.is_zero(value)
    return False


def cannot_hold_zero(field: fields.Field) -> bool:
    """Whether the field's range excludes 0, so a Go client's 0 in it can only mean "not set"."""
    return any(isinstance(v, validate.Range) and v.min is not None and v.min > 0 for v in field.validators)


class BoundedList(fields.List):
    """A list of at most `max_items` items (documented as maxItems). The length is checked before
    any item is loaded: a body of 1 MiB holds about 100,000 tiny items, each a schema load."""

    def __init__(self, cls_or_instance, *, max_items: int, **kwargs):
        super().__init__(cls_or_instance, **kwargs)
        self.max_items = max_items
        self.metadata = {**self.metadata, "maxItems": max_items}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and len(value) > self.max_items:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: at most {self.max_items} items, not {len(value)}")
        return super()._deserialize(value, attr, data, **kwargs)


def role_list(**kwargs) -> BoundedList:
    """A request's list of roles: at most MAX_ROLES."""
    return BoundedList(fields.Nested(RoleRef), max_items=MAX_ROLES, **kwargs)


# Keywords are separated by commas and white space (str.isspace(), which is what \s means in
# Python); the pattern states the count for the OpenAPI documents, split_keywords() is the rule.
_KEYWORD_SEPARATORS = re.compile(r"[\s,]+")
KEYWORDS_PATTERN = rf"^[\s,]*(?:[^\s,\x00]+(?:[\s,]+|$)){{0,{MAX_KEYWORDS}}}$"


def split_keywords(text: str) -> list[str]:
    """A search's `keywords` text as its keywords (comma or white space separated)."""
    return [keyword for keyword in _KEYWORD_SEPARATORS.split(text) if keyword]


def _bounded_keywords(text: str) -> None:
    if len(text) > MAX_KEYWORDS_LENGTH:  # first: the text is split only once it is short
        raise ValidationError(f"VALUE_OUT_OF_BOUNDS: at most {MAX_KEYWORDS_LENGTH} characters of keywords")
    count = len(split_keywords(text))
    if count > MAX_KEYWORDS:
        raise ValidationError(f"VALUE_OUT_OF_BOUNDS: at most {MAX_KEYWORDS} keywords, not {count}")


def keywords_field() -> fields.String:
    """A search body's `keywords`: at most MAX_KEYWORDS keywords in MAX_KEYWORDS_LENGTH characters,
    in every search of both services (each keyword is a condition of the statement)."""
    return fields.String(load_default="", validate=_bounded_keywords,
                         metadata={"pattern": KEYWORDS_PATTERN, "maxLength": MAX_KEYWORDS_LENGTH})


class CaseInsensitiveChoice(fields.String):
    """A string from a fixed set, matched case-insensitively and loaded in its canonical form."""

    def __init__(self, choices, **kwargs):
        self.canonical = {choice.lower(): choice for choice in choices}
        documented = list(choices)
        if isinstance(kwargs.get("load_default"), str) and kwargs["load_default"] not in choices:
            documented.append(kwargs["load_default"])  # e.g. search's filter "": a documented default is valid
        kwargs.setdefault("metadata", {}).setdefault("enum", documented)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.canonical[text.lower()]
        except KeyError:
            raise ValidationError(f"Must be one of: {', '.join(self.canonical.values())}.") from None


def blank_is_unset(data):
    """Clients send "", 0 or null for 'not set' (the contract says so for search)."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if v not in ("", None) and not (k in ("limit",) and v in (0, "0"))}


class PageArgs(Schema):
    offset = Integer(load_default=0, validate=validate.Range(min=0))
    limit = Integer(load_default=MAX_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    sortdir = CaseInsensitiveChoice(("ASC", "DESC"), load_default="ASC")

    @pre_load
    def _drop_unset(self, data, **kwargs):
        return blank_is_unset(data)


def sorted_page_args(sortkeys, default):
    """PageArgs plus a `sortkey` limited to `sortkeys`."""
    return type("SortedPageArgs", (PageArgs,), {
        "sortkey": CaseInsensitiveChoice(tuple(sortkeys), load_default=default),
    })


def body_sortkey(page_args: type[Schema]) -> CaseInsensitiveChoice:
    """A search body's `sortkey`: the choices of `page_args` (checked there too), or "" for unset."""
    choices = tuple(page_args._declared_fields["sortkey"].canonical.values())
    return CaseInsensitiveChoice(choices, metadata={"enum": [*choices, ""]})


class PagingInBody(RequestBody):
    """Paging that may also arrive in a search body, where it overrides the query string."""

    # The query's rules, documented here too (in a body 0, "" and null mean unset).
    offset = StrictInteger(validate=validate.Range(min=0))
    limit = StrictInteger(validate=validate.Range(min=0, max=MAX_PAGE))
    sortkey = fields.String()
    sortdir = CaseInsensitiveChoice(("ASC", "DESC"), metadata={"enum": ["ASC", "DESC", ""]})

    @pre_load
    def _drop_unset(self, body, **kwargs):
        # In JSON only null, "" and the number 0 (for limit) mean unset; false or "0" are wrong types.
        if not isinstance(body, dict):
            return body
        # Only a field's value can be unset: an unknown key stays, to be refused like any other.
        known = {field.data_key or name for name, field in self.load_fields.items()}
        return {k: v for k, v in body.items()
                if k not in known or not (v is None or v == "" or (k == "limit" and type(v) is int and v == 0))}


PAGING_KEYS = ("offset", "limit", "sortkey", "sortdir")


def merged_paging(query: dict, body: dict, page_args: type[Schema]) -> dict:
    """Paging from the query string overridden by the body, validated by `page_args`."""
    paging = {**query, **{k: body[k] for k in PAGING_KEYS if k in body}}
    try:
        return page_args().load(paging, unknown="exclude")
    except ValidationError as exc:
        raise errors.validation_error(exc.messages) from None


class ErrorEnvelope(Schema):
    error_code = fields.String(required=True)
    error_message = fields.String()
    property = fields.String()
    details = fields.List(fields.Dict())


class RoleRef(RequestBody):
    """A role as clients send it: `name` is used only for a role the server never saw."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = fields.String(validate=validate.Length(max=256))
    deleted = fields.Boolean()  # sent back by clients that echo what they read; ignored


class Role(Schema):
    id = fields.String()
    name = fields.String()
    deleted = fields.Boolean()
