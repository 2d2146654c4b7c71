"""Schema pieces the Secrets Manager's resources share."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load

from common import errors
from common.schemas import blank_is_unset


def StrictBoolean(**kwargs) -> fields.Boolean:
    """true/false only: "yes", 1 or "false" are type errors, not silently coerced."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


def StrictInteger(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, **kwargs)


# Read-only fields clients echo back when they PUT what they read.
ECHOED = ("id", "created", "updated", "created_by", "updated_by")


class EchoTolerant(Schema):
    """A request body that accepts (and drops) the server-set fields of what a client read."""

    ECHOED_FIELDS: tuple[str, ...] = ECHOED

    @pre_load
    def _drop_echoed(self, data, **kwargs):
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in self.ECHOED_FIELDS}
        return data


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


class Listing(Schema):
    count = fields.Integer()


def listing_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """The contract's `{"count", "items"}` list of `item_schema`."""
    return type(name, (Listing,), {"items": fields.List(fields.Nested(item_schema))})


class IdOnly(Schema):
    id = fields.UUID()

