"""The whole way of an account: register with a password, check out, release, rotate."""
from __future__ import annotations

import secrets

import pytest

from tests import support
from tests.secrets_manager.helpers import AUTHORIZER
from tests.sm_rotation import pg_target

pytestmark = pytest.mark.slow


def test_register_checkout_release_rotate(sm, vault_reader, tokens):
    role = support.new_role("operators")
    user = tokens.headers("user", roles=[role])
    policy = sm.policy(rotate_on_release=True, max_concurrent_checkouts=1)
    host_id = sm.host(policy, accounts={"dbadmin": "first-password"}, roles=[role])
    path = f"hosts/{host_id}/dbadmin"
    assert vault_reader.newest(path) == "first-password"

    listed = sm.get("/secrets", headers=user).get_json()
    assert [item["path"] for item in listed["items"]] == [path]
    assert listed["count"] == 1
    item = listed["items"][0]
    assert item["type"] == "HOST_SECRET" and item["username"] == "dbadmin"
    assert item["host"]["id"] == host_id and item["host"]["addresses"] == ["10.0.0.1"]

    checkout = sm.checkout(path, user)
    assert checkout["path"] == path
    assert checkout["explicit_checkout"] is True
    assert [s["secret"] for s in checkout["secrets"]] == [vault_reader.newest(path)] == ["first-password"]
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
    new_password = vault_reader.newest(path)
    assert new_password not in (None, "first-password")
    assert 20 <= len(new_password) <= 24
    account = sm.account(host_id, "dbadmin")
    assert account["last_rotated"] is not None and account["last_error"] is None

    again = sm.checkout(path, user)
    assert [s["secret"] for s in again["secrets"]] == [new_password, "first-password"]
    assert [s["version"] for s in again["secrets"]] == [2, 1]


def test_postgresql_account_lifecycle(sm, vault_reader, tokens, target):
    """Register a real PostgreSQL role, check it out, release it: the worker rotates the role
    itself, the Vault's newest version logs in and the old password no longer does."""
    initial = "initial-" + secrets.token_urlsafe(12)
    account = target["new_role"](initial)
    role = support.new_role("dba")
    user = tokens.headers("user", roles=[role])
    policy = sm.policy(rotate_on_release=True, max_concurrent_checkouts=1, verify_after_rotation=True)
    host_id = sm.host(policy, protocol="POSTGRESQL", address=target["host"], port=target["port"],
                      accounts={account: initial}, roles=[role])
    path = f"hosts/{host_id}/{account}"

    assert [item["path"] for item in sm.get("/secrets", headers=user).get_json()["items"]] == [path]
    checkout = sm.checkout(path, user)
    assert checkout["secrets"][0]["secret"] == vault_reader.newest(path) == initial
    assert pg_target.can_login(target["host"], target["port"], account, checkout["secrets"][0]["secret"])
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user).status_code == 200

    assert sm.run_worker().rotated >= 1
    new_password = vault_reader.newest(path)
    assert new_password != initial
    assert pg_target.can_login(target["host"], target["port"], account, new_password)
    assert not pg_target.can_login(target["host"], target["port"], account, initial)
    assert sm.account(host_id, account)["last_error"] is None
