"""Request and response shapes of the v1 secret API."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from vault_service import names
from common.schemas import (BoundedList, CaseInsensitiveChoice, PagingInBody, RequestBody, Role, body_sortkey, keywords_field,
                            role_list, sorted_page_args)
from common.timefmt import Rfc3339
from vault_service.secrets.sealing import serialize

MAX_DATA_BYTES = 64 * 1024
MAX_DATA_DEPTH = 32


_NESTING = (dict, list)


def _depth(value) -> int:
    """Nesting depth of a JSON value, without recursion (deep input must not crash us)."""
    if type(value) is dict and not any(isinstance(child, _NESTING) for child in value.values()):
        return 1  # the usual secret: one object of plain values
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DATA_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def data_problem(value) -> str | None:
    """Why `value` cannot be a secret's data (a JSON object of at most 64 KiB serialised and 32
    levels deep), as a validation message; None when it can."""
    if not isinstance(value, dict):
        return "VALUE_INCORRECT_TYPE: data must be a JSON object"
    if _depth(value) > MAX_DATA_DEPTH:
        return f"VALUE_OUT_OF_BOUNDS: data must not be nested deeper than {MAX_DATA_DEPTH} levels"
    if len(serialize(value)) > MAX_DATA_BYTES:
        return f"VALUE_OUT_OF_BOUNDS: data must not exceed {MAX_DATA_BYTES} bytes serialised"
    return None


class SecretData(fields.Dict):
    """A JSON object of at most 64 KiB serialised and 32 levels deep (data_problem)."""

    def _deserialize(self, value, attr, data, **kwargs):
        problem = data_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


class SecretCreate(RequestBody):
    """`owner_id` may come too (the PrivX Python SDK sends it): it must equal the URL's user_id."""

    name = fields.String(required=True, metadata={  # names.checked() is the rule; documented as the path's
        "minLength": 1, "maxLength": names.MAX_NAME_LENGTH, "pattern": names.PATTERN})
    data = SecretData(required=True)
    read_roles = role_list(load_default=list)
    write_roles = role_list(load_default=list)


class SecretUpdate(RequestBody):
    """PrivX clients echo `name` and `owner_id` (checked against the URL by RequestBody) and
    send "data": null when only roles change (not set: no new version)."""

    data = SecretData()
    read_roles = role_list()
    write_roles = role_list()


class Secret(Schema):
    name = fields.String()
    data = fields.Raw()
    read_roles = fields.List(fields.Nested(Role))
    write_roles = fields.List(fields.Nested(Role))
    author = fields.String()
    path = fields.String()
    updated_by = fields.String()
    created = Rfc3339()
    updated = Rfc3339()
    owner_id = fields.String()


class SecretList(Schema):
    count = fields.Integer()
    items = fields.List(fields.Nested(Secret))


class NameOnly(Schema):
    name = fields.String()


SORT_KEYS = ("name", "created", "updated")
SecretPageArgs = sorted_page_args(SORT_KEYS, "name")

MAX_OWNERS = 100  # owners one search may name
FILTERS = ("personal", "shared", "readable", "writable", "accessible")


class SearchBody(PagingInBody):
    """Search conditions; paging may come here too, where it overrides the query string."""

    sortkey = body_sortkey(SecretPageArgs)
    keywords = keywords_field()
    owner_id = BoundedList(fields.String(validate=validate.Length(min=1, max=256)), max_items=MAX_OWNERS,
                           load_default=None)
    filter = CaseInsensitiveChoice(FILTERS, load_default="")
