"""The whole way of an account: register with a password, check out, release, rotate."""
from __future__ import annotations

import pytest

from tests import support
from tests.secrets_manager.helpers import AUTHORIZER

pytestmark = pytest.mark.slow


def test_register_checkout_release_rotate(sm, vault, tokens):
    role = support.new_role("operators")
    user = tokens.headers("user", roles=[role])
    policy = sm.policy(rotate_on_release=True, max_concurrent_checkouts=1)
    host_id = sm.host(policy, accounts={"dbadmin": "first-password"}, roles=[role])
    path = f"hosts/{host_id}/dbadmin"
    assert vault.newest(path) == "first-password"

    listed = sm.get("/secrets", headers=user).get_json()
    assert [item["path"] for item in listed["items"]] == [path]
    assert listed["count"] == 1
    item = listed["items"][0]
    assert item["type"] == "HOST_SECRET" and item["username"] == "dbadmin"
    assert item["host"]["id"] == host_id and item["host"]["addresses"] == ["10.0.0.1"]

    checkout = sm.checkout(path, user)
    assert checkout["path"] == path
    assert checkout["explicit_checkout"] is True
    assert [s["secret"] for s in checkout["secrets"]] == [vault.newest(path)] == ["first-password"]
    assert checkout["secrets"][0]["version"] == 1
    assert checkout["expires"] > checkout["created"]

    # The same checkout under the authorizer prefix, where PrivX clients look for it.
    same = sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user, prefix=AUTHORIZER)
    assert same.status_code == 200 and same.get_json()["id"] == checkout["id"]

    released = sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user)
    assert released.status_code == 200 and released.data == b""
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user).status_code == 404

    result = sm.run_worker()
    assert result.rotated >= 1
    new_password = vault.newest(path)
    assert new_password not in (None, "first-password")
    assert 20 <= len(new_password) <= 24
    account = sm.account(host_id, "dbadmin")
    assert account["last_rotated"] is not None and account["last_error"] is None

    again = sm.checkout(path, user)
    assert [s["secret"] for s in again["secrets"]] == [new_password, "first-password"]
    assert [s["version"] for s in again["secrets"]] == [2, 1]
