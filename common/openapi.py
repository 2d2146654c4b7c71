"""What the OpenAPI documents say about request bodies beyond what marshmallow's fields say.

RequestBody takes a Go client's zero values in an optional field as "not set" (`null`, `""`,
`"0001-01-01T00:00:00Z"`, `[]` where the field has a default, `0` where it cannot hold 0): the
document says so too, or a client generated from it (and Schemathesis) would take them for
invalid. Each optional property of a request body becomes `anyOf: [the property, its zero
values]`.

No text may hold a NUL character (common.strict_json refuses it everywhere, PostgreSQL cannot
store it): a plain string field is documented with TEXT_PATTERN, and free-form JSON (a secret's
`data`, `custom_metadata`, audit details) as JSON_VALUE, a recursive schema whose strings exclude
NUL too. (Object keys cannot be constrained in OpenAPI 3.0: it has no `propertyNames`; the
rule is in the schema's description.)
"""
from __future__ import annotations

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_instance
from marshmallow import fields, missing

from common.schemas import GO_ZERO_TIME, RequestBody, cannot_hold_zero

TEXT_PATTERN = r"^[^\x00]*$"
JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE = {"anyOf": [
    {"type": "string", "pattern": TEXT_PATTERN},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "array", "items": JSON_VALUE_REF},
    {"type": "object", "additionalProperties": JSON_VALUE_REF, "nullable": True,  # null too
     "description": "No key holds a NUL character either (OpenAPI 3.0 cannot state it)."},
]}

_ZERO_TEXT = {"type": "string", "enum": ["", GO_ZERO_TIME, None], "nullable": True}


def _zero_values(field: fields.Field) -> list[dict]:
    zeros = [_ZERO_TEXT]
    if isinstance(field, fields.List) and field.load_default is not missing:
        zeros.append({"type": "array", "maxItems": 0})
    if isinstance(field, fields.Integer) and cannot_hold_zero(field):
        zeros.append({"type": "integer", "enum": [0]})
    return zeros


def _set_value(field: fields.Field) -> dict:
    """What a REQUIRED_ONE_OF field holds when it is set: not null, and text not empty."""
    if isinstance(field, (fields.Nested, fields.Dict)):  # its own schema says more, in `properties`
        return {"type": "object", "additionalProperties": JSON_VALUE_REF}
    return {"type": "string", "minLength": 1, "pattern": TEXT_PATTERN}


def _text_without_nul(self, field: fields.Field, ret: dict, **kwargs) -> dict:
    """The attribute function that states "no NUL" on every field a narrower rule does not cover."""
    is_text = isinstance(field, fields.String) or ret.get("type") == "string"  # e.g. durations
    if is_text and not {"pattern", "format", "enum"} & ret.keys():
        return {"pattern": TEXT_PATTERN}
    if isinstance(field, fields.Dict) and field.value_field is None:
        return {"additionalProperties": JSON_VALUE_REF}
    if type(field) is fields.Raw:
        return {"anyOf": [JSON_VALUE_REF]}  # not allOf: openapi-spec-validator follows allOf without cycle checks
    return {}


class GoZeroPlugin(MarshmallowPlugin):
    def init_spec(self, spec):
        super().init_spec(spec)
        self.converter.add_attribute_function(_text_without_nul)
        spec.components.schema("JsonValue", JSON_VALUE)

    def schema_helper(self, name, _, schema=None, **kwargs):
        json_schema = super().schema_helper(name, _, schema=schema, **kwargs)
        instance = resolve_schema_instance(schema) if schema is not None else None
        if isinstance(instance, RequestBody) and json_schema:
            properties = json_schema.get("properties", {})
            for field_name, field in instance.load_fields.items():
                key = field.data_key or field_name
                if key in properties and not field.required:
                    properties[key] = {"anyOf": [properties[key], *_zero_values(field)]}
            if instance.REQUIRED_ONE_OF:  # one of them at least, and set (a zero value is not)
                json_schema["anyOf"] = [{"required": [key], "properties": {key: _set_value(instance.load_fields[key])}}
                                        for key in instance.REQUIRED_ONE_OF]
        return json_schema
