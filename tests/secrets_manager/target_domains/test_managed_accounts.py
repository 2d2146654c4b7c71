"""Managed directory accounts over HTTP against a scanned slapd: onboarding, changes, batches, passwords."""
from __future__ import annotations

import uuid

import pytest

from common.devtools import slapd
from tests.secrets_manager.target_domains.helpers import TD, create_domain, endpoint_body, scan


@pytest.fixture()
def scanned(sm, directory):
    """(domain id, {username: scanned account}) of a freshly scanned domain with a default policy."""
    policy_id = sm.policy()
    domain_id = create_domain(sm, directory, auto_onboarding_policy={"id": policy_id})
    assert scan(sm, domain_id)["scan_status"] == "DONE"
    items = sm.get(f"{TD}/{domain_id}/accounts", query={"limit": 100}).get_json()["items"]
    return domain_id, {a["username"]: a for a in items}


def managed_path(domain_id):
    return f"{TD}/{domain_id}/managedaccounts"


def test_onboard_with_a_password(sm, scanned, vault_reader):
    domain_id, accounts = scanned
    response = sm.post(managed_path(domain_id), json={"username": "USER1", "password": "Known-pw-1",
                                                      "explicit_checkout": True})
    assert response.status_code == 201, response.get_json()
    managed_id = response.get_json()["id"]
    assert response.headers["Location"].endswith(f"{managed_path(domain_id)}/{managed_id}")
    got = sm.get(f"{managed_path(domain_id)}/{managed_id}").get_json()
    assert got["username"] == "user1" and got["state"] == "ACTIVE" and got["explicit_checkout"] is True
    assert got["secret_name"] == f"targetdomains/{domain_id}/{managed_id}"
    assert got["source_id"] == accounts["user1"]["source_id"]
    assert got["additional_data"] == {"dn": slapd.BIND_DN.replace("cn=binder,ou=service", "uid=user1,ou=people")}
    assert got["password_policy"]["deleted"] is False and got["password_policy"]["name"]
    assert got["locked"] is False and got["locked_timestamp"] is None and got["checkouts"] == []
    assert [e["trigger"] for e in got["rotation_history"]] == ["PASSWORD_SET"]
    assert "Known-pw-1" not in sm.get(f"{managed_path(domain_id)}/{managed_id}").get_data(as_text=True)
    assert vault_reader.newest(got["secret_name"]) == "Known-pw-1"
    scanned_state = sm.get(f"{TD}/{domain_id}/accounts/{accounts['user1']['id']}").get_json()["state"]
    assert scanned_state == "MANAGED"
    again = sm.post(managed_path(domain_id), json={"source_id": accounts["user1"]["source_id"]})
    assert again.status_code == 409 and again.get_json()["property"] == "username"


def test_onboarding_rules(sm, scanned, directory):
    domain_id, accounts = scanned
    cases = [
        ({}, 400, "REQUIRED_VALUE_MISSING"),
        ({"username": "nobody-like-this"}, 400, "INVALID_REQUEST_DATA"),
        ({"username": "user2", "password_policy": {"id": str(uuid.uuid4())}}, 400, "INVALID_REQUEST_DATA"),
        ({"username": "user2", "target_domain": {"id": str(uuid.uuid4())}}, 400, "INVALID_REQUEST_DATA"),
        ({"username": "user2", "unknown_field": 1}, 400, "INVALID_REQUEST_DATA"),
    ]
    for body, status, code in cases:
        response = sm.post(managed_path(domain_id), json=body)
        assert (response.status_code, response.get_json()["error_code"]) == (status, code), (body, response.get_json())
    # Without a policy of its own or the domain's, onboarding is refused.
    bare = create_domain(sm, directory)
    scan(sm, bare)
    response = sm.post(managed_path(bare), json={"username": "user2"})
    assert response.status_code == 400 and response.get_json()["property"] == "password_policy"
    # Go SDK zero values: an empty policy handle means the domain's.
    response = sm.post(managed_path(domain_id), json={"username": "user2", "password_policy": {"id": ""},
                                                      "created": "0001-01-01T00:00:00Z", "id": "", "state": ""})
    assert response.status_code == 201, response.get_json()


def test_a_bind_account_cannot_be_onboarded(sm, directory):
    # The bind account itself is in the scanned subtree here.
    policy_id = sm.policy()
    domain_id = create_domain(sm, endpoints=[endpoint_body(directory, ldap_base_dn=slapd.SUFFIX,
                                                           ldap_user_filter="(|(cn=binder)(uid=user1))",
                                                           attribute_mapping={"username": "cn"})],
                              auto_onboarding_policy={"id": policy_id})
    scan(sm, domain_id)
    response = sm.post(managed_path(domain_id), json={"username": "binder"})
    assert response.status_code == 400 and "cut the domain off" in response.get_json()["error_message"]


def test_put_batches_and_delete(sm, scanned, vault_reader):
    domain_id, accounts = scanned
    ids = [accounts[f"user{i}"]["id"] for i in (3, 4, 5)]
    response = sm.post(f"{managed_path(domain_id)}/batch/create",
                       json={"ids": ids, "data": {"enabled": True, "rotation_enabled": False, "rotate": False,
                                                  "explicit_checkout": True, "disable_rdp_cert_auth": False,
                                                  "password_policy": {}, "comment": "batch"}})
    assert response.status_code == 201, response.get_json()
    assert "Location" not in response.headers
    managed_ids = response.get_json()["ids"]
    assert len(managed_ids) == 3
    listed = sm.get(managed_path(domain_id), query={"sortkey": "username"}).get_json()
    assert [m["username"] for m in listed["items"]] == ["user3", "user4", "user5"]
    assert all(m["state"] == "PENDING" and m["comment"] == "batch" for m in listed["items"])
    # A batch that names a managed account twice, or another domain's, changes nothing.
    response = sm.post(f"{managed_path(domain_id)}/batch/create", json={"ids": [ids[0]], "data": {}})
    assert response.status_code == 409
    response = sm.post(f"{managed_path(domain_id)}/batch/edit",
                       json={"ids": [managed_ids[0], str(uuid.uuid4())], "changes": {"comment": "x"}})
    assert response.status_code == 400 and response.get_json()["property"] == "ids"
    # PUT: Go style (everything it read) and Python style (a few fields).
    read = sm.get(f"{managed_path(domain_id)}/{managed_ids[0]}").get_json()
    read["comment"] = "edited"
    assert sm.put(f"{managed_path(domain_id)}/{managed_ids[0]}", json=read).status_code == 200
    role = {"id": str(uuid.uuid4()), "name": "dir-admins"}
    assert sm.put(f"{managed_path(domain_id)}/{managed_ids[0]}", json={"access_roles": [role]}).status_code == 200
    got = sm.get(f"{managed_path(domain_id)}/{managed_ids[0]}").get_json()
    assert got["comment"] == "edited" and got["access_roles"] == [{**role, "deleted": False}]
    response = sm.post(f"{managed_path(domain_id)}/batch/edit",
                       json={"ids": managed_ids[:2], "changes": {"enabled": False, "rotation_enabled": None,
                                                                 "explicit_checkout": None, "comment": None}})
    assert response.status_code == 200
    found = sm.post(f"{managed_path(domain_id)}/search", json={"enabled": False}).get_json()
    assert sorted(m["id"] for m in found["items"]) == sorted(managed_ids[:2])
    assert all(m["comment"] in ("edited", "batch") for m in found["items"])
    found = sm.post(f"{managed_path(domain_id)}/search", json={"keywords": "user5", "state": "pending"}).get_json()
    assert [m["id"] for m in found["items"]] == [managed_ids[2]]
    # Set password: stored as is, ACTIVE, a PASSWORD_SET entry.
    response = sm.post(f"{managed_path(domain_id)}/{managed_ids[2]}/password", json={"password": "Directory-truth-1"})
    assert response.status_code == 200
    got = sm.get(f"{managed_path(domain_id)}/{managed_ids[2]}").get_json()
    assert got["state"] == "ACTIVE" and got["rotation_history"][0]["trigger"] == "PASSWORD_SET"
    assert vault_reader.newest(got["secret_name"]) == "Directory-truth-1"
    assert sm.post(f"{managed_path(domain_id)}/{managed_ids[2]}/password", json={"password": ""}).status_code == 400
    # Rotation requests of disabled accounts are refused; of enabled ones queued.
    assert sm.post(f"{managed_path(domain_id)}/{managed_ids[0]}/rotate").status_code == 409
    assert sm.post(f"{managed_path(domain_id)}/{managed_ids[2]}/rotate").status_code == 200
    assert sm.post(f"{managed_path(domain_id)}/batch/rotate", json={"ids": [managed_ids[2]]}).status_code == 200
    # Delete: the Vault secret goes, the scanned account is UNMANAGED again.
    assert sm.delete(f"{managed_path(domain_id)}/{managed_ids[2]}").status_code == 200
    assert vault_reader.newest(got["secret_name"]) is None
    assert sm.get(f"{TD}/{domain_id}/accounts/{ids[2]}").get_json()["state"] == "UNMANAGED"
    assert sm.post(f"{managed_path(domain_id)}/batch/delete", json={"ids": managed_ids[:2]}).status_code == 200
    assert sm.get(managed_path(domain_id)).get_json()["count"] == 0
    for bad_id in (str(uuid.uuid4()), "nope"):
        assert sm.get(f"{managed_path(domain_id)}/{bad_id}").status_code == 404
        assert sm.post(f"{managed_path(domain_id)}/{bad_id}/rotate").status_code == 404


def test_a_managed_account_follows_its_scanned_account(sm, own_directory):
    policy_id = sm.policy()
    domain_id = create_domain(sm, own_directory, auto_onboarding_policy={"id": policy_id})
    scan(sm, domain_id)
    managed_id = sm.post(managed_path(domain_id), json={"username": "user3"}).get_json()["id"]
    conn = own_directory.admin()
    conn.rename_s(own_directory.user_dn("user3"), "uid=user3x", delold=1)
    conn.unbind_s()
    scan(sm, domain_id)
    got = sm.get(f"{managed_path(domain_id)}/{managed_id}").get_json()
    assert got["username"] == "user3x" and got["additional_data"]["dn"] == own_directory.user_dn("user3x")
    own_directory.delete_user("user3x")
    scan(sm, domain_id)
    assert sm.get(f"{managed_path(domain_id)}/{managed_id}").get_json()["state"] == "REMOVED"
    assert sm.post(f"{managed_path(domain_id)}/{managed_id}/rotate").status_code == 409


def test_auto_onboarding(sm, own_directory):
    policy_id = sm.policy()
    domain_id = create_domain(sm, own_directory, auto_onboarding=True, auto_onboarding_policy={"id": policy_id})
    scan(sm, domain_id)
    managed = sm.get(managed_path(domain_id)).get_json()
    assert managed["count"] == 5
    assert all(m["explicit_checkout"] is False and m["enabled"] and m["rotation_enabled"] for m in managed["items"])
