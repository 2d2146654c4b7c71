"""Shortcuts for the Vault API tests."""
from __future__ import annotations

from tests.support import new_role, unique

V1 = "/vault/api/v1"


def create_shared(client, tokens, *, data=None, read_roles=(), write_roles=(), name=None, scopes="admin"):
    """Create a shared secret as an admin; returns its name."""
    name = name or unique("shared")
    response = client.post(f"{V1}/secrets", headers=tokens.headers(scopes), json={
        "name": name, "data": data if data is not None else {"password": "pw-" + name},
        "read_roles": list(read_roles), "write_roles": list(write_roles)})
    assert response.status_code == 201, response.json
    return name


def assert_error(response, status, code, prop=None):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert body["error_code"] == code, body
    assert isinstance(body["error_message"], str) and body["error_message"]
    assert isinstance(body["details"], list)
    if prop is not None:
        assert body.get("property") == prop, body
    return body


__all__ = ["V1", "create_shared", "assert_error", "new_role", "unique"]
