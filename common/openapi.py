"""What the OpenAPI documents say about request bodies beyond what marshmallow's fields say.

RequestBody takes a Go client's zero values in an optional field as "not set" (`null`, `""`,
`"0001-01-01T00:00:00Z"`, `[]` where the field has a default, `0` where it cannot hold 0): the
document says so too, or a client generated from it (and Schemathesis) would take them for
invalid. Each optional property of a request body becomes `anyOf: [the property, its zero
values]`.
"""
from __future__ import annotations

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_instance
from marshmallow import fields, missing, validate

from common.schemas import GO_ZERO_TIME, RequestBody

_ZERO_TEXT = {"type": "string", "enum": ["", GO_ZERO_TIME, None], "nullable": True}


def _zero_values(field: fields.Field) -> list[dict]:
    zeros = [_ZERO_TEXT]
    if isinstance(field, fields.List) and field.load_default is not missing:
        zeros.append({"type": "array", "maxItems": 0})
    if isinstance(field, fields.Integer) and any(
            isinstance(v, validate.Range) and v.min is not None and v.min > 0 for v in field.validators):
        zeros.append({"type": "integer", "enum": [0]})
    return zeros


class GoZeroPlugin(MarshmallowPlugin):
    def schema_helper(self, name, _, schema=None, **kwargs):
        json_schema = super().schema_helper(name, _, schema=schema, **kwargs)
        instance = resolve_schema_instance(schema) if schema is not None else None
        if isinstance(instance, RequestBody) and json_schema:
            properties = json_schema.get("properties", {})
            for field_name, field in instance.load_fields.items():
                key = field.data_key or field_name
                if key in properties and not field.required:
                    properties[key] = {"anyOf": [properties[key], *_zero_values(field)]}
        return json_schema
