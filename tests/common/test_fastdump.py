"""The compiled response dump gives exactly what marshmallow's dump gives, for every schema
of both services, on full, partial, null and oddly typed bodies."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from marshmallow import Schema, fields

from common import fastdump
from common.timefmt import Rfc3339


def _all_schemas() -> list[type[Schema]]:
    import secrets_manager_service.app  # noqa: F401 - imports every schema module of both services
    import vault_service.app  # noqa: F401

    found, todo = [], list(Schema.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in ("common", "vault_service", "secrets_manager_service"):
            found.append(cls)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


SCHEMAS = _all_schemas()
WHEN = dt.datetime(2026, 11, 23, 10, 0, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _sample(field: fields.Field, variant: int):
    """A value for `field`: plain (variant 0), None (1), or of a type the fast path hands
    back to marshmallow (2)."""
    if variant == 1:
        return None
    odd = variant == 2
    if isinstance(field, fields.Nested):
        body = _body(field.schema, variant)
        return [body, body] if field.many else body
    if isinstance(field, fields.List):
        return [_sample(field.inner, 0), None] if odd else [_sample(field.inner, 0)]
    if isinstance(field, Rfc3339):
        return WHEN
    if isinstance(field, fields.Boolean):
        return 1 if odd else True
    if isinstance(field, fields.Integer):
        return 7.9 if odd else 7
    if isinstance(field, fields.String):
        return b"bytes" if odd else "text \u00e9"
    if isinstance(field, fields.Dict):
        return {"k": [1, {"n": None}]}
    if isinstance(field, fields.Raw):
        return {"raw": ["x", 2, True]}
    return None  # custom fields: None is what every one of them accepts


def _body(schema: Schema, variant: int) -> dict:
    return {field.attribute or name: _sample(field, variant) for name, field in schema.dump_fields.items()}


@pytest.mark.parametrize("schema_class", SCHEMAS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_compiled_dump_equals_marshmallow(schema_class):
    schema = schema_class()
    dump = fastdump.compiled(schema)
    if dump is None:
        pytest.skip("dumped by marshmallow itself (hooks or options the fast path leaves alone)")
    names = list(schema.dump_fields)
    bodies = [_body(schema, variant) for variant in (0, 1, 2)]
    # Partial bodies too: a key left out must be left out of the output, as marshmallow does.
    bodies += [{k: v for k, v in bodies[0].items() if k not in dropped}
               for dropped in itertools.islice(itertools.combinations(names, 1), 8)]
    bodies.append({**bodies[0], "not_a_field": "ignored"})
    for body in bodies:
        assert _outcome(dump, body) == _outcome(lambda b: Schema.dump(schema, b), body), body


def _outcome(dump, body):
    """The dump, or the type of its error: marshmallow fails on some bodies (a list field
    named `keys` missing from a dict reads dict.keys), and so must the fast path."""
    try:
        return dump(body)
    except Exception as exc:
        return type(exc)


def test_the_fast_path_is_the_one_taken():
    """The hot schemas compile: a silent fallback would leave the speed-up unmeasured."""
    from vault_service.secrets.schemas import Secret
    from vault_service.versioned.schemas import ReadResponse, VersionMeta

    for schema_class in (Secret, ReadResponse, VersionMeta):
        assert fastdump.compiled(schema_class()) is not None


def test_schemas_with_dump_hooks_are_left_to_marshmallow():
    from marshmallow import post_dump

    class Hooked(Schema):
        x = fields.String()

        @post_dump
        def upper(self, data, **kwargs):
            return {k: v.upper() for k, v in data.items()}

    assert fastdump.compiled(Hooked()) is None
    accelerated = fastdump.accelerate(Hooked())
    assert accelerated.dump({"x": "a"}) == {"x": "A"}


def test_a_list_body_goes_through_marshmallow():
    from vault_service.versioned.schemas import VersionMeta

    schema = fastdump.accelerate(VersionMeta())
    rows = [{"version": 1, "created": WHEN, "deletion_time": None, "destroyed": False}]
    assert schema.dump(rows, many=True) == Schema.dump(VersionMeta(), rows, many=True)


def test_an_inherited_dump_hook_is_seen_too():
    from marshmallow import pre_dump

    class Base(Schema):
        x = fields.String()

        @pre_dump
        def strip(self, data, **kwargs):
            return {k: v.strip() for k, v in data.items()}

    class Child(Base):
        y = fields.String()

    assert fastdump.compiled(Child()) is None
    assert fastdump.accelerate(Child()).dump({"x": " a ", "y": " b "}) == {"x": "a", "y": "b"}


def test_only_marshmallows_public_api_is_used():
    """No `._name` access: what marshmallow keeps private may change in any release."""
    import inspect
    import re

    source = inspect.getsource(fastdump)
    assert not re.findall(r"\._[a-z]\w*", source)
