"""Schema pieces the Secrets Manager's resources share."""
from __future__ import annotations

from marshmallow import Schema, fields

from common.schemas import SERVER_FILLED, RequestBody, StrictInteger  # noqa: F401  (StrictInteger: re-exported)


def StrictBoolean(**kwargs) -> fields.Boolean:
    """true/false only: "yes", 1 or "false" are type errors, not silently coerced."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class EchoTolerant(RequestBody):
    """A request body that accepts (and drops) the server-set fields of what a client read."""

    IGNORED = ("id", *SERVER_FILLED)


class Listing(Schema):
    count = fields.Integer()


def listing_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """The contract's `{"count", "items"}` list of `item_schema`."""
    return type(name, (Listing,), {"items": fields.List(fields.Nested(item_schema))})


class IdOnly(Schema):
    id = fields.UUID()


# One response schema per kind of object a create makes: tools that follow ids from one call to
# the next (Schemathesis' stateful phase) tell the kinds apart by it, so a target domain's id is
# never tried as a managed account's.
class PolicyCreated(IdOnly):
    pass


class TemplateCreated(IdOnly):
    pass


class DomainCreated(IdOnly):
    pass


class ManagedAccountCreated(IdOnly):
    pass
