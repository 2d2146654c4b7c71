"""The fuzz hooks map a positive case onto one the contract accepts (tests/fuzz/hooks.py): checked
here on hand-made cases, without a server, for the rules `make fuzz` showed the document cannot state."""
from __future__ import annotations

from types import SimpleNamespace

from tests.fuzz import hooks


def _positive_case(path: str, body, method: str = "POST"):
    mode = SimpleNamespace(is_positive=True)
    return SimpleNamespace(operation=SimpleNamespace(path=path), method=method, body=body, path_parameters={"path": "a"},
                           meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)))


def test_versioned_custom_metadata_keys_get_their_length():
    """`make fuzz` sent POST /vault/api/v1/secret/metadata/{path} with a custom_metadata key ""
    as a positive case and got the rightful 400 (keys are 1 to 128 characters)."""
    case = _positive_case("/vault/api/v1/secret/metadata/{path}", {"custom_metadata": {"": "a", "k" * 200: "b", "x": "c"}})
    hooks.before_call(None, case, {})
    assert case.body["custom_metadata"] == {"k": "a", "k" * 128: "b", "x": "c"}
