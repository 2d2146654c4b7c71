"""The AD path against a real Samba Active Directory domain controller (skipped, with the reason,
where Samba cannot run): scan over LDAPS, GUID/SID forms, bind accounts, unicodePwd resets."""
from __future__ import annotations

import pytest

from secrets_manager_service.drivers import ldap as driver
from tests.secrets_manager.target_domains import samba_ad
from tests.secrets_manager.target_domains.helpers import TD, create_domain, scan


@pytest.fixture(scope="session")
def ad():
    reason = samba_ad.available()
    if reason:
        pytest.skip(reason)
    try:
        dc = samba_ad.SambaDC().__enter__()
    except samba_ad.Busy as busy:
        pytest.skip(str(busy))
    try:
        dc.password_of = {}
        for name in ("svc-ad1", "svc-ad2"):
            dc.password_of[name] = "Initial-Pass-1!"
            dc.add_user(name, dc.password_of[name])
        print(f"Samba AD: provisioned in {dc.provision_seconds:.1f} s, serving LDAPS {dc.start_seconds:.1f} s later")
        yield dc
    finally:
        dc.__exit__(None, None, None)


def ad_endpoint(dc, protocol="LDAPS") -> dict:
    ep = dc.endpoint(protocol)
    return {"type": "AD", "ldap_protocol": protocol, "ldap_address": ep.address, "ldap_port": ep.port,
            "ldap_base_dn": samba_ad.USERS_DN, "ldap_bind_dn": ep.bind_dn, "ldap_bind_password": ep.bind_password,
            "ldap_skip_strict_cert_check": True}


def test_unicodepwd_reset_over_ldaps_and_starttls(ad):
    dn = f"CN=svc-ad2,{samba_ad.USERS_DN}"
    for protocol, password in (("LDAPS", "Rotated-Pass-2!x"), ("STARTTLS", "Rotated-Pass-3!y")):
        with driver.connect(ad.endpoint(protocol)) as conn:
            conn.set_password(dn, password)
        bound = {ad.endpoint(protocol).fingerprint}
        assert driver.check_password(ad.endpoint(protocol), dn, password, bound)
        assert not driver.check_password(ad.endpoint(protocol), dn, ad.password_of["svc-ad2"], bound)
        ad.password_of["svc-ad2"] = password
    with pytest.raises(driver.DirectoryError) as refused:
        with driver.connect(ad.endpoint()) as conn:
            conn.set_password(dn, "Sh0rt!")
    assert str(refused.value).startswith("constraint violation (19)")
    assert "Sh0rt!" not in str(refused.value)


def test_scan_an_ad_domain(sm, ad):
    policy_id = sm.policy()
    domain_id = create_domain(sm, endpoints=[ad_endpoint(ad)], auto_onboarding_policy={"id": policy_id})
    domain = scan(sm, domain_id)
    assert domain["scan_status"] == "DONE", domain["scan_message"]
    endpoint = domain["endpoints"][0]
    assert endpoint["ldap_user_filter"] == "(&(objectCategory=person)(objectClass=user))"
    assert endpoint["attribute_mapping"]["security_id"] == "objectSid"
    items = {a["username"]: a for a in sm.get(f"{TD}/{domain_id}/accounts", query={"limit": 100}).get_json()["items"]}
    assert {"Administrator", "svc-ad1", "svc-ad2"} <= set(items)
    svc = items["svc-ad1"]
    assert svc["email"] == "svc-ad1@corp.test"
    assert svc["security_id"].startswith("S-1-5-21-")
    assert len(svc["source_id"]) == 36 and svc["source_id"].count("-") == 4
    assert svc["additional_data"]["dn"] == f"CN=svc-ad1,{samba_ad.USERS_DN}"
    # The bind account (named user@domain here) is never onboarded.
    response = sm.post(f"{TD}/{domain_id}/managedaccounts", json={"username": "Administrator"})
    assert response.status_code == 400 and "cut the domain off" in response.get_json()["error_message"]
    response = sm.post(f"{TD}/{domain_id}/managedaccounts", json={"username": "svc-ad1"})
    assert response.status_code == 201, response.get_json()
    got = sm.get(f"{TD}/{domain_id}/managedaccounts/{response.get_json()['id']}").get_json()
    assert got["sam_account_name"] == "svc-ad1" and got["security_id"] == svc["security_id"]


def test_rotate_and_check_out_an_ad_account(sm, ad, vault_reader):
    from secrets_manager_service.target_domains import flows

    policy_id = sm.policy(verify_after_rotation=True)
    domain_id = create_domain(sm, endpoints=[ad_endpoint(ad, "STARTTLS"), ad_endpoint(ad)],
                              auto_onboarding_policy={"id": policy_id})
    assert scan(sm, domain_id)["scan_status"] == "DONE"
    response = sm.post(f"{TD}/{domain_id}/managedaccounts", json={"username": "svc-ad2", "rotate": True,
                                                                  "explicit_checkout": True})
    managed_id = response.get_json()["id"]
    with sm.app.app_context():
        assert flows.run_pass().rotated == 1
    account = sm.get(f"{TD}/{domain_id}/managedaccounts/{managed_id}").get_json()
    assert account["state"] == "ACTIVE", account["last_error_details"]
    new = vault_reader.newest(account["secret_name"])
    dn = f"CN=svc-ad2,{samba_ad.USERS_DN}"
    bound = {ad.endpoint().fingerprint}
    assert driver.check_password(ad.endpoint(), dn, new, bound)
    assert not driver.check_password(ad.endpoint(), dn, ad.password_of["svc-ad2"], bound)
    ad.password_of["svc-ad2"] = new
    checkout = sm.checkout(f"targetdomains/{domain_id}/{managed_id}", sm.admin)
    assert checkout["secrets"][0]["secret"] == new and checkout["type"] == "TARGET_DOMAIN_SECRET"
