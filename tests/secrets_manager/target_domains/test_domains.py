"""Target domains over HTTP: create, read, change, search, resolve, delete; the bind password stays in the Vault."""
from __future__ import annotations

import uuid

import pytest

from tests.secrets_manager.target_domains.helpers import TD, create_domain, domain_body, endpoint_body


def test_create_read_and_defaults(sm, vault_reader):
    body = domain_body(domain_name="example.test", comment="lab")
    response = sm.post(TD, json=body)
    assert response.status_code == 201
    domain_id = response.get_json()["id"]
    assert response.headers["Location"].endswith(f"{TD}/{domain_id}")
    got = sm.get(f"{TD}/{domain_id}")
    assert got.status_code == 200
    domain = got.get_json()
    assert domain["name"] == body["name"] and domain["enabled"] is True and domain["periodic_scan"] is False
    assert domain["periodic_scan_interval"] == 1440 and domain["auto_onboarding_policy"] is None
    assert domain["scan_status"] == "PENDING"  # an enabled domain is scanned at once
    assert domain["last_scanned"] is None
    endpoint = domain["endpoints"][0]
    assert "ldap_bind_password" not in endpoint
    assert endpoint["ldap_user_filter"] == "(objectClass=inetOrgPerson)"
    assert endpoint["attribute_mapping"] == {"username": "uid", "email": "mail", "full_name": "cn",
                                             "source_id": "entryUUID"}
    assert "bind-secret" not in got.get_data(as_text=True)
    stored = vault_reader.raw(f"targetdomains/{domain_id}/bind")
    assert list(stored["passwords"].values()) == ["bind-secret"]


def test_name_is_unique_case_insensitively(sm):
    body = domain_body()
    assert sm.post(TD, json=body).status_code == 201
    again = sm.post(TD, json={**body, "name": body["name"].upper()})
    assert again.status_code == 409 and again.get_json()["property"] == "name"


@pytest.mark.parametrize("change, status, prop", [
    ({"type": "ENTRA"}, 400, "endpoints.0.type"),
    ({"type": "NIS"}, 400, "endpoints.0.type"),
    ({"type": "AD", "ldap_protocol": "LDAP"}, 400, "endpoints.0.ldap_protocol"),
    ({"ldap_user_filter": "uid=x"}, 400, "endpoints.0.ldap_user_filter"),
    ({"ldap_base_dn": "not a dn"}, 400, "endpoints.0.ldap_base_dn"),
    ({"ldap_root_certificates": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"}, 400,
     "endpoints.0.ldap_root_certificates"),
    ({"ldap_root_certificates": "\u00ed"}, 400, "endpoints.0.ldap_root_certificates"),  # not ASCII: was a 500
    ({"attribute_mapping": {"email": "userPassword"}}, 400, "endpoints.0.attribute_mapping"),
    ({"ldap_bind_password": ""}, 400, "endpoints.0.ldap_bind_password"),
    ({"entra_tenant_id": "t"}, 400, "endpoints.0.entra_tenant_id"),
    ({"ldap_port": 70000}, 400, "endpoints.0.ldap_port"),
])
def test_bad_endpoints_are_400_naming_the_field(sm, change, status, prop):
    response = sm.post(TD, json=domain_body(endpoints=[endpoint_body(**change)]))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["property"] == prop, response.get_json()


def test_entra_message(sm):
    response = sm.post(TD, json=domain_body(endpoints=[endpoint_body(type="ENTRA")]))
    assert response.get_json()["error_message"] == "endpoint type ENTRA is not supported: use LDAP or AD"


def test_go_zero_values_and_echoed_fields_are_accepted(sm):
    body = domain_body(periodic_scan_interval=0, created="0001-01-01T00:00:00Z", scan_status="", id="",
                       auto_onboarding_policy=None, last_scanned=None,
                       endpoints=[endpoint_body(ldap_port=0, entra_tenant_id="", entra_batch_size=0,
                                                entra_group_filter=None, ldap_user_filter="")])
    response = sm.post(TD, json=body)
    assert response.status_code == 201, response.get_json()
    domain = sm.get(f"{TD}/{response.get_json()['id']}").get_json()
    assert domain["periodic_scan_interval"] == 1440 and domain["endpoints"][0]["ldap_port"] == 389


def test_auto_onboarding_needs_a_policy(sm):
    response = sm.post(TD, json=domain_body(auto_onboarding=True))
    assert response.status_code == 400 and response.get_json()["property"] == "auto_onboarding_policy"
    policy_id = sm.policy()
    domain_id = create_domain(sm, auto_onboarding=True, auto_onboarding_policy={"id": policy_id})
    handle = sm.get(f"{TD}/{domain_id}").get_json()["auto_onboarding_policy"]
    assert handle["id"] == policy_id and handle["deleted"] is False and handle["name"]
    # The policy is in use: it cannot be deleted.
    assert sm.delete(f"/password-policy/{policy_id}").status_code == 409


def test_put_keeps_what_it_leaves_out_and_the_bind_password(sm, vault_reader):
    domain_id = create_domain(sm, comment="before")
    read = sm.get(f"{TD}/{domain_id}").get_json()
    # Go SDK style: GET, modify, PUT everything back (without the write-only password).
    read["comment"] = "after"
    assert sm.put(f"{TD}/{domain_id}", json=read).status_code == 200
    # Python style: a few fields.
    assert sm.put(f"{TD}/{domain_id}", json={"periodic_scan": True}).status_code == 200
    domain = sm.get(f"{TD}/{domain_id}").get_json()
    assert domain["comment"] == "after" and domain["periodic_scan"] is True and domain["name"] == read["name"]
    assert list(vault_reader.raw(f"targetdomains/{domain_id}/bind")["passwords"].values()) == ["bind-secret"]
    # A new endpoint without a password has none to keep.
    moved = sm.put(f"{TD}/{domain_id}", json={"endpoints": [endpoint_body(ldap_address="10.1.1.1",
                                                                           ldap_bind_password="")]})
    assert moved.status_code == 400 and moved.get_json()["property"] == "endpoints.0.ldap_bind_password"
    assert moved.get_json()["error_code"] == "REQUIRED_VALUE_MISSING"


def test_put_name_conflict_and_unknown_ids(sm):
    first, second = create_domain(sm), create_domain(sm)
    name = sm.get(f"{TD}/{first}").get_json()["name"]
    assert sm.put(f"{TD}/{second}", json={"name": name}).status_code == 409
    for bad_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert sm.get(f"{TD}/{bad_id}").status_code == 404
        assert sm.get(f"{TD}/{bad_id}").get_json()["error_code"] == "OBJECT_NOT_FOUND"
        assert sm.put(f"{TD}/{bad_id}", json={"comment": "x"}).status_code == 404
        assert sm.delete(f"{TD}/{bad_id}").status_code == 404


def test_list_search_resolve(sm):
    tag = uuid.uuid4().hex[:8]
    a = create_domain(sm, name=f"alpha-{tag}", domain_name="corp.test")
    b = create_domain(sm, name=f"beta-{tag}", enabled=False)
    listed = sm.get(TD, query={"limit": 100, "sortkey": "NAME", "sortdir": "desc"}).get_json()
    assert listed["count"] >= 2
    found = sm.post(f"{TD}/search", json={"keywords": f"{tag}"}).get_json()
    assert [d["id"] for d in found["items"]] == [a, b]
    found = sm.post(f"{TD}/search", json={"keywords": f"{tag} corp", "enabled": True}).get_json()
    assert [d["id"] for d in found["items"]] == [a]
    found = sm.post(f"{TD}/search", json={"keywords": tag, "enabled": False}).get_json()
    assert [d["id"] for d in found["items"]] == [b]
    resolved = sm.post(f"{TD}/resolve", json=[f"ALPHA-{tag}", "nothing-like-it"])
    assert resolved.status_code == 200
    assert resolved.get_json() == {"count": 1, "items": [{"id": a, "target_domain_name": f"alpha-{tag}"}]}
    assert sm.post(f"{TD}/resolve", json={"names": []}).status_code == 400
    assert sm.post(f"{TD}/resolve", json=["x"] * 101).status_code == 400
    assert sm.post(f"{TD}/resolve", json=["x" * 129]).status_code == 400  # longer than any name
    assert sm.post(f"{TD}/resolve", json=[""]).status_code == 400


def test_refresh_of_a_disabled_domain_is_409_and_delete_removes_the_bind_secret(sm, vault_reader):
    domain_id = create_domain(sm, enabled=False)
    assert sm.get(f"{TD}/{domain_id}").get_json()["scan_status"] == "NOT_SCANNED"
    assert sm.post(f"{TD}/{domain_id}/refresh").status_code == 409
    assert sm.post(f"{TD}/{domain_id}").status_code == 409
    assert sm.delete(f"{TD}/{domain_id}").status_code == 200
    assert sm.get(f"{TD}/{domain_id}").status_code == 404
    assert vault_reader.raw(f"targetdomains/{domain_id}/bind") is None


def test_scopes(sm, tokens):
    domain_id = create_domain(sm)
    user = tokens.headers("user")
    service = tokens.headers("service")
    assert sm.get(TD, headers=user).status_code == 403
    assert sm.post(TD, headers=user, json={"bad": "body"}).status_code == 403  # scope before shape
    assert sm.get(f"{TD}/{domain_id}", headers=service).status_code == 200
    assert sm.post(TD, headers=service, json=domain_body()).status_code == 403
    assert sm.post(TD, headers={}, json=domain_body()).status_code == 401
    assert sm.post(TD, headers=sm.manager, json=domain_body()).status_code == 201
