"""Managed directory accounts end to end against a real slapd: onboarding with a rotation,
Password Modify under the write-ahead rules, checkouts (TARGET_DOMAIN_SECRET), exclusivity,
rotate_on_release, revocation, and failures that keep the previous password current."""
from __future__ import annotations

import uuid

import pytest

from common.devtools import slapd
from tests.secrets_manager.target_domains.helpers import TD, create_domain, endpoint_body, scan


def run_worker(sm):
    from secrets_manager_service.target_domains import flows

    with sm.app.app_context():
        return flows.run_pass()


@pytest.fixture()
def domain(sm, own_directory):
    """A scanned domain of the test's own slapd, with an exclusive, rotate-on-release policy."""
    policy_id = sm.policy(max_concurrent_checkouts=1, rotate_on_release=True, verify_after_rotation=True)
    domain_id = create_domain(sm, own_directory, auto_onboarding_policy={"id": policy_id})
    assert scan(sm, domain_id)["scan_status"] == "DONE"
    return domain_id


def onboard(sm, domain_id, username, role, **extra) -> str:
    response = sm.post(f"{TD}/{domain_id}/managedaccounts", json={
        "username": username, "rotate": True, "explicit_checkout": True, "access_roles": [role], **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def managed(sm, domain_id, managed_id) -> dict:
    return sm.get(f"{TD}/{domain_id}/managedaccounts/{managed_id}").get_json()


def test_onboard_rotate_check_out_and_rotate_on_release(sm, tokens, vault_reader, own_directory, domain):
    role = {"id": str(uuid.uuid4()), "name": "directory-admins"}
    original = own_directory.password_of("user1")
    managed_id = onboard(sm, domain, "user1", role)
    assert managed(sm, domain, managed_id)["state"] == "PENDING"
    result = run_worker(sm)
    assert result.rotated == 1, result
    account = managed(sm, domain, managed_id)
    assert account["state"] == "ACTIVE" and account["last_error"] is None
    assert [(e["trigger"], e["status"]) for e in account["rotation_history"]] == [("ONBOARDING", "SUCCESS"),]
    first = vault_reader.newest(account["secret_name"])
    assert own_directory.binds("user1", first) and not own_directory.binds("user1", original)

    # The account is listed for a holder of the role, and for nobody else.
    user = tokens.headers("user", roles=[role])
    other = tokens.headers("user", roles=[{"id": str(uuid.uuid4()), "name": "x"}])
    path = f"targetdomains/{domain}/{managed_id}"
    listed = sm.get("/secrets", headers=user).get_json()
    item = next(i for i in listed["items"] if i["path"] == path)
    assert item["type"] == "TARGET_DOMAIN_SECRET" and item["username"] == "user1" and "host" not in item
    assert item["target_domain"]["id"] == domain and item["email"] == "user1@example.test"
    assert path not in [i["path"] for i in sm.get("/secrets", headers=other).get_json()["items"]]
    found = sm.post("/secrets/search", headers=user, json={"target_domain_id": domain}).get_json()
    assert [i["path"] for i in found["items"]] == [path]
    assert sm.post("/secrets/search", headers=user, json={"host_id": str(uuid.uuid4())}).get_json()["count"] == 0
    domain_name = sm.get(f"{TD}/{domain}").get_json()["name"]
    assert path in [i["path"] for i in sm.post("/secrets/search", headers=user,
                                               json={"keywords": domain_name}).get_json()["items"]]

    # Check out: the password binds; the same user gets the same checkout; another is refused (exclusive).
    checkout = sm.checkout(path, user)
    assert checkout["type"] == "TARGET_DOMAIN_SECRET" and checkout["managed_account_id"] == managed_id
    assert checkout["target_domain"]["id"] == domain and "host" not in checkout
    assert checkout["secrets"][0]["secret"] == first and own_directory.binds("user1", checkout["secrets"][0]["secret"])
    assert sm.checkout(path, user)["id"] == checkout["id"]
    admin_response = sm.post("/secrets/checkouts", json={"path": path})
    assert admin_response.status_code == 409
    assert managed(sm, domain, managed_id)["locked"] is True
    assert managed(sm, domain, managed_id)["checkouts"][0]["id"] == checkout["id"]
    assert sm.post("/secrets/checkouts", headers=other, json={"path": path}).status_code == 404
    mine = sm.get("/secrets/checkouts", headers=user).get_json()
    assert [c["id"] for c in mine["items"]] == [checkout["id"]]
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user).status_code == 200
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=other).status_code == 404

    # Release: rotate_on_release rotates in the directory; the old password stops binding.
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user).status_code == 200
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user).status_code == 404
    assert run_worker(sm).rotated == 1
    account = managed(sm, domain, managed_id)
    assert account["rotation_history"][0]["trigger"] == "CHECKOUT_RELEASE"
    second = vault_reader.newest(account["secret_name"])
    assert second != first and own_directory.binds("user1", second) and not own_directory.binds("user1", first)
    again = sm.checkout(path, user)
    assert again["secrets"][0]["secret"] == second
    assert [s["version"] for s in again["secrets"]] == sorted((s["version"] for s in again["secrets"]), reverse=True)

    # Losing the role ends the live checkout (404, revoked, rotate_on_release applies).
    sm.put(f"{TD}/{domain}/managedaccounts/{managed_id}", json={"access_roles": []})
    assert sm.get(f"/secrets/checkouts/{again['id']}", headers=user).status_code == 404
    assert run_worker(sm).rotated == 1
    assert not own_directory.binds("user1", second)


def test_manual_rotation_and_set_password(sm, vault_reader, own_directory, domain):
    role = {"id": str(uuid.uuid4()), "name": "r"}
    managed_id = onboard(sm, domain, "user2", role)
    run_worker(sm)
    assert sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate").status_code == 200
    assert sm.post(f"{TD}/{domain}/managedaccounts/batch/rotate", json={"ids": [managed_id]}).status_code == 200
    assert run_worker(sm).rotated == 1  # one queued rotation, however often it was asked for
    account = managed(sm, domain, managed_id)
    assert [e["trigger"] for e in account["rotation_history"]] == ["MANUAL", "ONBOARDING"]
    assert own_directory.binds("user2", vault_reader.newest(account["secret_name"]))
    # The directory's truth, told by hand: stored as is, no directory change.
    own_directory.set_password("user2", "Changed-by-hand-1!")
    assert sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/password",
                   json={"password": "Changed-by-hand-1!"}).status_code == 200
    assert vault_reader.newest(account["secret_name"]) == "Changed-by-hand-1!"
    assert managed(sm, domain, managed_id)["rotation_history"][0]["trigger"] == "PASSWORD_SET"


def test_a_refused_rotation_keeps_the_previous_password(sm, vault_reader, own_directory, domain):
    role = {"id": str(uuid.uuid4()), "name": "r"}
    managed_id = onboard(sm, domain, "user3", role)
    run_worker(sm)
    account = managed(sm, domain, managed_id)
    current = vault_reader.newest(account["secret_name"])
    # The bind password stops working: every try is refused; after the retries the account is FAILED.
    sm.put(f"{TD}/{domain}", json={"endpoints": [endpoint_body(own_directory, ldap_bind_password="not-any-more")]})
    sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate")
    run_worker(sm)  # number_of_retries 2, retry_interval 0: all three tries in this pass
    account = managed(sm, domain, managed_id)
    assert account["state"] == "FAILED", account
    assert account["last_error"] is not None and "invalid credentials (49)" in account["last_error_details"]
    assert "not-any-more" not in account["last_error_details"]
    assert [e["status"] for e in account["rotation_history"][:3]] == ["FAILED"] * 3
    assert own_directory.binds("user3", current)
    assert vault_reader.newest(account["secret_name"]) == current  # the pending version never became current
    # A FAILED account can still be checked out, with the password the directory accepts.
    assert sm.checkout(f"targetdomains/{domain}/{managed_id}", sm.admin)["secrets"][0]["secret"] == current
    # The next success makes it ACTIVE.
    sm.put(f"{TD}/{domain}", json={"endpoints": [endpoint_body(own_directory)]})
    sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate")
    run_worker(sm)
    account = managed(sm, domain, managed_id)
    assert account["state"] == "ACTIVE", (account["last_error_details"], account["rotation_history"][:2])


def test_an_unreachable_directory(sm, vault_reader, own_directory, domain):
    managed_id = onboard(sm, domain, "user4", {"id": str(uuid.uuid4()), "name": "r"})
    run_worker(sm)
    current = vault_reader.newest(managed(sm, domain, managed_id)["secret_name"])
    own_directory.stop()
    sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate")
    run_worker(sm)
    account = managed(sm, domain, managed_id)
    assert "could not be reached" in account["last_error_details"] and "Connection refused" in account["last_error_details"]
    assert account["state"] == "FAILED"  # retry_interval 0: the retries ran out in that pass
    own_directory.start()
    assert own_directory.binds("user4", current)
    sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate")
    run_worker(sm)
    account = managed(sm, domain, managed_id)
    assert account["state"] == "ACTIVE" and own_directory.binds("user4", vault_reader.newest(account["secret_name"]))


def test_checkout_refusals(sm, tokens, domain):
    managed_id = onboard(sm, domain, "user5", {"id": str(uuid.uuid4()), "name": "r"}, rotate=False)
    path = f"targetdomains/{domain}/{managed_id}"
    # PENDING (no password yet): not listed, not checked out.
    assert sm.post("/secrets/checkouts", json={"path": path}).status_code == 404
    sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/password", json={"password": "Known-1!"})
    assert sm.post("/secrets/checkouts", json={"path": path}).status_code == 200
    for bad in ("targetdomains/x/y", f"targetdomains/{domain}", f"targetdomains/{domain}/{uuid.uuid4()}"):
        assert sm.post("/secrets/checkouts", json={"path": bad}).status_code in (400, 404)
    # Without explicit_checkout the account is not in /secrets.
    sm.put(f"{TD}/{domain}/managedaccounts/{managed_id}", json={"explicit_checkout": False})
    assert path not in [i["path"] for i in sm.get("/secrets").get_json()["items"]]
    assert sm.post("/secrets/checkouts", json={"path": path}).status_code == 404
    assert slapd.PEOPLE  # the directory of the fixture is the test's own


def test_no_password_in_the_audit_trail_or_the_logs(sm, vault_reader, own_directory, domain, caplog):
    managed_id = onboard(sm, domain, "user5", {"id": str(uuid.uuid4()), "name": "r"})
    with caplog.at_level("DEBUG"):
        run_worker(sm)
        sm.put(f"{TD}/{domain}", json={"endpoints": [endpoint_body(own_directory, ldap_bind_password="Wrong-bind-9")]})
        scan(sm, domain)  # fails: the bind password is refused
        sm.post(f"{TD}/{domain}/managedaccounts/{managed_id}/rotate")
        run_worker(sm)
    secret = managed(sm, domain, managed_id)["secret_name"]
    passwords = {own_directory.bind_password, "Wrong-bind-9", vault_reader.newest(secret)}
    with sm.app.app_context(), sm.app.extensions["db"].cursor() as cur:
        cur.execute("SELECT details::text AS d FROM audit_events WHERE target LIKE %s", (f"targetdomains/{domain}%",))
        trail = " ".join(row["d"] for row in cur.fetchall())
    assert trail  # the scans, changes and rotations are audited...
    logged = caplog.text
    for password in passwords:
        assert password not in trail and password not in logged  # ...never with a password
