"""Schema pieces the Secrets Manager's resources share."""
from __future__ import annotations

from marshmallow import Schema, fields, pre_load



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


class Listing(Schema):
    count = fields.Integer()


def listing_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """The contract's `{"count", "items"}` list of `item_schema`."""
    return type(name, (Listing,), {"items": fields.List(fields.Nested(item_schema))})


class IdOnly(Schema):
    id = fields.UUID()

