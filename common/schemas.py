"""Schema pieces both services use: paging arguments, case-insensitive enums, errors."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from common import errors

MAX_PAGE = 100


class CaseInsensitiveChoice(fields.String):
    """A string from a fixed set, matched case-insensitively and loaded in its canonical form."""

    def __init__(self, choices, **kwargs):
        self.canonical = {choice.lower(): choice for choice in choices}
        kwargs.setdefault("metadata", {})["enum"] = list(choices)
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
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=MAX_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    sortdir = CaseInsensitiveChoice(("ASC", "DESC"), load_default="ASC")

    @pre_load
    def _drop_unset(self, data, **kwargs):
        return blank_is_unset(data)


def sorted_page_args(sortkeys, default):
    """PageArgs plus a `sortkey` limited to `sortkeys`."""
    return type("SortedPageArgs", (PageArgs,), {
        "sortkey": CaseInsensitiveChoice(tuple(sortkeys), load_default=default),
    })


class PagingInBody(Schema):
    """Paging that may also arrive in a search body, where it overrides the query string."""

    offset = fields.Integer(strict=True)
    limit = fields.Integer(strict=True)
    sortkey = fields.String()
    sortdir = fields.String()

    @pre_load
    def _drop_unset(self, body, **kwargs):
        return blank_is_unset(body)


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


class RoleRef(Schema):
    """A role as clients send it: `name` is used only for a role the server never saw."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = fields.String(validate=validate.Length(max=256))
    deleted = fields.Boolean()  # sent back by clients that echo what they read; ignored


class Role(Schema):
    id = fields.String()
    name = fields.String()
    deleted = fields.Boolean()
