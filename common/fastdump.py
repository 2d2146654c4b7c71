"""Response bodies dumped without marshmallow's per-field machinery, to the same bytes.

flask-smorest dumps every response through its schema. For the small bodies of this API,
marshmallow's generic path (hook lookup, per-field dispatch, error collection) cost more
than everything else a read does in Python but its database statement (a v1 read: about
225k of 1.6M instructions). `compiled(schema)` turns a schema into a plain function that
gives the same result: the plain field types used here are converted directly, and every
other field (custom ones, dump defaults, options the fast path does not know) goes through
that field's own `serialize`, so the schema stays the one definition of the shape.

`tests/common/test_fastdump.py` checks the compiled dump against marshmallow's for every
response schema of both services.
"""
from __future__ import annotations

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from common.timefmt import Rfc3339, rfc3339

_DUMP_HOOKS = (PRE_DUMP, POST_DUMP)


def accelerate(schema: Schema) -> Schema:
    """`schema`, dumping through its compiled form where it has one (used for responses)."""
    dump = compiled(schema)
    if dump is not None:
        schema.dump = dump  # this instance only: flask-smorest holds it for this route alone
    return schema


def compiled(schema: Schema):
    """A `dump(obj, *, many=None)` equal to `schema.dump`, or None when the schema needs
    marshmallow's full path (dump hooks, only/exclude, or a schema dumped as many)."""
    if schema.many or schema.only is not None or schema.exclude:
        return None
    hooks = type(schema).resolve_hooks()  # public (SchemaMeta): the decorated processors by tag
    if any(hooks.get(tag) for tag in _DUMP_HOOKS):
        return None
    steps = []
    for attr_name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        source = field.attribute or attr_name
        # A key a dict lacks is read by marshmallow as the dict's attribute of that name
        # (`items`, `keys`...): such a name takes the fast path only when the dict has the key.
        kind, convert = _converter(field)
        steps.append((key, attr_name, source, kind, convert, field, hasattr(dict, source)))
    marshmallow_dump = Schema.dump.__get__(schema)

    def dump(obj, *, many=None):
        if many or type(obj) is not dict:
            return marshmallow_dump(obj, many=many)
        out = {}
        for key, attr_name, source, kind, convert, field, dict_attribute in steps:
            if convert is None or (dict_attribute and source not in obj):  # the field's own path
                value = field.serialize(attr_name, obj, accessor=schema.get_attribute)
                if value is not missing:
                    out[key] = value
                continue
            value = obj.get(source, missing)
            if value is missing:
                continue
            # A value already of the field's exact type is what marshmallow gives (no call).
            out[key] = value if value is None or type(value) is kind else convert(value)
        return out

    return dump


class _NoType:
    """No value's type: every value of such a field goes through its converter."""


def _converter(field: fields.Field):
    """(kind, convert): a non-None value of exactly type `kind` is dumped as it is, any other
    as convert(value); convert None: this field needs its own serialize()."""
    if field.dump_default is not missing or "." in (field.attribute or ""):
        return _NoType, None
    kind = type(field)
    if kind is fields.Raw:
        return _NoType, _same
    if kind is fields.String:
        return str, _exact(str, field)
    if kind is fields.Integer and not field.as_string:
        return int, _exact(int, field)
    if kind is fields.Boolean:
        return bool, _exact(bool, field)
    if kind is Rfc3339:
        return _NoType, rfc3339
    if kind is fields.UUID:
        return _NoType, str  # what a UUID field gives any value (str of it)
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return _NoType, dict
    if kind is fields.Dict and type(field.key_field) is fields.String and type(field.value_field) is fields.String:
        return _NoType, _text_map(field)
    if kind is fields.List:
        inner_kind, inner = _converter(field.inner)
        if inner is None:
            return _NoType, None
        return _NoType, lambda values: [value if value is None or type(value) is inner_kind else inner(value)
                                        for value in values]
    if kind is fields.Nested and field.only is None and not field.exclude:
        nested = compiled(field.schema)
        if nested is None:
            return _NoType, None
        if field.many:
            return _NoType, lambda values: [nested(value) for value in values]
        return _NoType, nested
    return _NoType, None


def _text_map(field: fields.Dict):
    """A {str: str} map as it is (what marshmallow's String keys and values give it); any other
    through the field's own conversion."""
    def convert(value):
        if type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
            return dict(value)
        return field.serialize("value", None, accessor=lambda obj, attr, default: value)
    return convert


def _same(value):
    return value


def _exact(kind: type, field: fields.Field):
    """Values already of `kind` pass as they are (what marshmallow gives them); any other
    goes through the field's own conversion."""
    def convert(value):
        if type(value) is kind:
            return value
        return field.serialize("value", None, accessor=lambda obj, attr, default: value)
    return convert
