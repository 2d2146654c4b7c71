"""Request bodies as strict JSON: what Python's json module lets through but the contract does not.

`json.loads` accepts duplicate keys (the last wins), `NaN`/`Infinity` and numbers such as
`1e400` (read as infinity, which no JSON encoder can write back), and strings with NUL or lone
surrogates (which PostgreSQL, UTF-8 and Go clients all reject). Each of these is a 400 here,
naming the property, before any schema or the database sees the value.
"""
from __future__ import annotations

import json
import math
import re

from common import errors

# NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def loads(raw: bytes):
    """The one JSON value of `raw`; errors.ApiError (400) for anything the contract refuses."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_object, parse_constant=_not_json)
    except _DuplicateKey as exc:
        raise bad_value(exc.key, f"duplicate key {exc.key!r}" if is_storable(exc.key) else "duplicate key",
                        "VALUE_DUPLICATE") from None
    except RecursionError:
        raise errors.InvalidRequestData("the JSON body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity, an integer with too many digits
        raise errors.BadRequest("the request body is not one valid JSON value") from None
    check_value(value)
    return value


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def bad_value(prop: str, message: str, code: str = "VALUE_INCORRECT_FORMAT") -> errors.ApiError:
    detail = {"error_code": code, "error_message": message, "property": prop}
    return errors.ApiError(message, code=code, property=prop, details=[detail]).with_status(400)


def check_value(value, prefix: str = "") -> None:
    """400 for the first non-finite number or unstorable string (key or value) in `value`."""
    stack = [(prefix, value)]
    while stack:  # iterative: a deeply nested body must not exhaust the stack
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                child_path = f"{path}.{key}" if path else key
                if not is_storable(key):
                    raise bad_value(path or "body", "a key contains a NUL character or a lone surrogate")
                stack.append((child_path, child))
        elif isinstance(node, list):
            stack.extend((f"{path}.{index}" if path else str(index), child) for index, child in enumerate(node))
        elif isinstance(node, str):
            if not is_storable(node):
                raise bad_value(path or "body", "text must not contain NUL characters or lone surrogates")
        elif isinstance(node, float) and not math.isfinite(node):
            raise bad_value(path or "body", "a number is too large (it would be read as infinity)",
                            "VALUE_OUT_OF_BOUNDS")
