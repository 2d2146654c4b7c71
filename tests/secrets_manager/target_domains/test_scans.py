"""Scans against a real slapd: paged reads, new/changed/REMOVED accounts, failures that change nothing."""
from __future__ import annotations

import uuid

import pytest

from common.devtools import slapd
from tests.secrets_manager.target_domains.helpers import TD, create_domain, endpoint_body, scan


def accounts_of(sm, domain_id, **query) -> list[dict]:
    response = sm.get(f"{TD}/{domain_id}/accounts", query={"limit": 100, **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_scan_reads_every_user_in_pages(sm, directory):
    domain_id = create_domain(sm, directory)
    domain = scan(sm, domain_id)
    assert domain["scan_status"] == "DONE", domain["scan_message"]
    assert domain["scan_message"] == "30 accounts: 30 new, 0 removed"
    assert domain["last_scanned"] is not None
    items = accounts_of(sm, domain_id)
    assert len(items) == 30
    user1 = next(a for a in items if a["username"] == "user1")
    assert user1["email"] == "user1@example.test" and user1["full_name"] == "User user1"
    assert user1["state"] == "UNMANAGED" and user1["ignored"] is False
    assert user1["additional_data"] == {"dn": directory.user_dn("user1")}
    uuid.UUID(user1["source_id"])  # entryUUID
    assert user1["target_domain"]["id"] == domain_id
    # A scan that finds the same again changes nothing, `updated` included.
    again = scan(sm, domain_id)
    assert again["scan_message"] == "30 accounts: 0 new, 0 removed"
    assert {a["id"]: a["updated"] for a in accounts_of(sm, domain_id)} == {a["id"]: a["updated"] for a in items}


def test_mapping_extras_and_the_filter(sm, directory):
    domain_id = create_domain(sm, endpoints=[endpoint_body(
        directory, ldap_user_filter="(|(uid=user1)(uid=user2))", attribute_mapping={"surname": "sn", "email": "cn"})])
    scan(sm, domain_id)
    items = accounts_of(sm, domain_id)
    assert [a["username"] for a in items] == ["user1", "user2"]
    assert items[0]["email"] == "User user1"
    assert items[0]["additional_data"] == {"dn": directory.user_dn("user1"), "surname": "user1"}
    endpoint = sm.get(f"{TD}/{domain_id}").get_json()["endpoints"][0]
    assert endpoint["attribute_mapping"] == {"username": "uid", "email": "cn", "full_name": "cn",
                                             "source_id": "entryUUID", "surname": "sn"}


def test_removed_renamed_and_back(sm, own_directory):
    domain_id = create_domain(sm, own_directory)
    scan(sm, domain_id)
    before = {a["username"]: a for a in accounts_of(sm, domain_id)}
    own_directory.delete_user("user5")
    conn = own_directory.admin()
    conn.rename_s(own_directory.user_dn("user4"), "uid=user4b", delold=1)  # the same entryUUID, a new uid
    conn.unbind_s()
    domain = scan(sm, domain_id)
    assert domain["scan_message"] == "4 accounts: 0 new, 1 removed"
    after = {a["username"]: a for a in accounts_of(sm, domain_id)}
    assert after["user5"]["state"] == "REMOVED"
    assert after["user4b"]["id"] == before["user4"]["id"] and "user4" not in after
    assert after["user4b"]["additional_data"]["dn"] == own_directory.user_dn("user4b")
    own_directory.add_user("user5")  # a new entry (new entryUUID) under the old name
    domain = scan(sm, domain_id)
    assert domain["scan_message"] == "5 accounts: 1 new, 0 removed"


def test_wrong_bind_password_fails_and_changes_nothing(sm, directory):
    domain_id = create_domain(sm, directory)
    scan(sm, domain_id)
    known = accounts_of(sm, domain_id)
    sm.put(f"{TD}/{domain_id}", json={"endpoints": [endpoint_body(directory, ldap_bind_password="wrong-one")]})
    domain = scan(sm, domain_id)
    assert domain["scan_status"] == "FAILED"
    assert domain["scan_message"] == f"bind failed: invalid credentials (49) on ldap://127.0.0.1:{directory.port}"
    assert "wrong-one" not in str(sm.get(f"{TD}/{domain_id}").get_data(as_text=True))
    assert accounts_of(sm, domain_id) == known


def test_unreachable_directory_and_the_next_endpoint(sm, directory):
    dead = endpoint_body(directory, ldap_port=slapd.free_port(), scan_priority=0)
    live = endpoint_body(directory, scan_priority=1)
    domain_id = create_domain(sm, endpoints=[dead])
    domain = scan(sm, domain_id)
    assert domain["scan_status"] == "FAILED"
    assert domain["scan_message"] == f"cannot connect to ldap://127.0.0.1:{dead['ldap_port']}: Connection refused"
    both = create_domain(sm, endpoints=[live, dead])  # priorities put the dead one first
    assert scan(sm, both)["scan_status"] == "DONE"


def test_ldaps_with_the_test_ca_and_a_certificate_to_reject(sm, directory, tmp_path):
    good = endpoint_body(directory, ldap_protocol="LDAPS", ldap_port=directory.tls_port,
                         ldap_root_certificates=directory.ca.ca_pem)
    assert scan(sm, create_domain(sm, endpoints=[good]))["scan_status"] == "DONE"
    starttls = {**good, "ldap_protocol": "STARTTLS", "ldap_port": directory.port}
    assert scan(sm, create_domain(sm, endpoints=[starttls]))["scan_status"] == "DONE"
    other_ca = slapd.CertificateAuthority(tmp_path / "other", common_name="not the directory's CA").ca_pem
    domain = scan(sm, create_domain(sm, endpoints=[{**good, "ldap_root_certificates": other_ca}]))
    assert domain["scan_status"] == "FAILED"
    assert domain["scan_message"].startswith("TLS: certificate verify failed")
    wrong_name = scan(sm, create_domain(sm, endpoints=[{**good, "ldap_address": "127.0.0.2"}]))
    assert wrong_name["scan_status"] == "FAILED" and "certificate verify failed" in wrong_name["scan_message"]


def test_directory_down_mid_scan_changes_nothing(sm, tmp_path, monkeypatch):
    if slapd.available():
        pytest.skip(slapd.available())
    from secrets_manager_service.target_domains.scans import store as scan_store

    with slapd.Slapd(tmp_path / "big", users=1200, passwords_for=0, tls=False) as server:
        domain_id = create_domain(sm, server)
        scan(sm, domain_id)
        known = accounts_of(sm, domain_id)
        server.delete_user("user7")
        real_stage = scan_store.stage
        pages = []

        def stage_then_kill(cur, scan_id, entries):
            real_stage(cur, scan_id, entries)
            pages.append(len(entries))
            if len(pages) == 1:
                server.kill()  # the directory goes away after the first page

        # The real staging runs; the hook only takes the directory away at a known point.
        monkeypatch.setattr(scan_store, "stage", stage_then_kill)
        domain = scan(sm, domain_id)
        assert pages == [500]
        assert domain["scan_status"] == "FAILED", domain
        assert "search failed" in domain["scan_message"] and f"127.0.0.1:{server.port}" in domain["scan_message"]
        assert accounts_of(sm, domain_id) == known  # user7 is not REMOVED: the scan did not complete


def test_scanned_account_edits_search_and_batches(sm, directory):
    domain_id = create_domain(sm, directory)
    scan(sm, domain_id)
    items = {a["username"]: a for a in accounts_of(sm, domain_id)}
    one = items["user3"]
    echoed = {**one, "ignored": True, "comment": "service account"}
    assert sm.put(f"{TD}/{domain_id}/accounts/{one['id']}", json=echoed).status_code == 200
    got = sm.get(f"{TD}/{domain_id}/accounts/{one['id']}").get_json()
    assert got["ignored"] is True and got["comment"] == "service account" and got["updated"] >= one["updated"]
    wrong = {"ignored": False, "target_domain": {"id": str(uuid.uuid4())}}
    response = sm.put(f"{TD}/{domain_id}/accounts/{one['id']}", json=wrong)
    assert response.status_code == 400 and response.get_json()["property"] == "target_domain.id"
    ids = [items["user1"]["id"], items["user2"]["id"]]
    for method in ("PUT", "POST"):
        response = sm.call(method, f"{TD}/{domain_id}/accounts/batch/edit", json={"ids": ids, "changes": {"comment": method}})
        assert response.status_code == 200, response.get_json()
    found = sm.post(f"{TD}/{domain_id}/accounts/search", json={"keywords": "POST"}).get_json()
    assert found["count"] == 0  # keywords match username, email and full name only
    found = sm.post(f"{TD}/{domain_id}/accounts/search", json={"ignored": True}).get_json()
    assert [a["username"] for a in found["items"]] == ["user3"]
    found = sm.post(f"{TD}/{domain_id}/accounts/search", json={"keywords": "user1", "state": "unmanaged",
                                                               "created_after": "2000-01-01T00:00:00Z",
                                                               "updated_before": "0001-01-01T00:00:00Z"}).get_json()
    assert sorted(a["username"] for a in found["items"]) == ["user1"] + [f"user1{i}" for i in range(10)]
    missing = str(uuid.uuid4())
    response = sm.post(f"{TD}/{domain_id}/accounts/batch/edit", json={"ids": [ids[0], missing], "changes": {"comment": "x"}})
    assert response.status_code == 400 and response.get_json()["property"] == "ids"
    assert missing in response.get_json()["error_message"]
    assert sm.get(f"{TD}/{domain_id}/accounts/{ids[0]}").get_json()["comment"] == "POST"  # nothing changed
    response = sm.post(f"{TD}/{domain_id}/accounts/batch/edit", json={"ids": [ids[0], ids[0]], "changes": {}})
    assert response.status_code == 400 and response.get_json()["error_code"] == "VALUE_DUPLICATE"
    assert sm.get(f"{TD}/{domain_id}/accounts/{uuid.uuid4()}").status_code == 404
    other = create_domain(sm, directory)
    assert sm.get(f"{TD}/{other}/accounts/{ids[0]}").status_code == 404  # another domain's account
    listed = sm.get(f"{TD}/{domain_id}/accounts", query={"sortkey": "username", "sortdir": "DESC", "limit": 2}).get_json()
    assert listed["count"] == 30 and [a["username"] for a in listed["items"]] == ["user9", "user8"]


def test_periodic_scans_and_one_queued_at_most(sm, directory):
    from secrets_manager_service.target_domains import flows
    from secrets_manager_service.target_domains.scans import store

    domain_id = create_domain(sm, directory, periodic_scan=True, periodic_scan_interval=60)
    scan(sm, domain_id)
    with sm.app.app_context():
        db = sm.app.extensions["db"]
        store.queue_periodic_scans(db)  # just scanned: not due yet
        assert sm.get(f"{TD}/{domain_id}").get_json()["scan_status"] == "DONE"
        # An hour later (the last scan's end moved back), the worker queues the next one itself.
        with db.transaction() as cur:
            cur.execute("UPDATE sm_target_domains SET scan_ended = now() - interval '61 minutes' WHERE id = %s",
                        (domain_id,))
        store.queue_periodic_scans(db)
        assert sm.get(f"{TD}/{domain_id}").get_json()["scan_status"] == "PENDING"
        # Refreshes while one is queued queue no second one.
        for _ in range(3):
            assert sm.post(f"{TD}/{domain_id}/refresh").status_code == 200
        with db.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM sm_td_scans WHERE domain_id = %s", (domain_id,))
            assert cur.fetchone()["n"] == 1
        while flows.scan_one() is not None:
            pass
    assert sm.get(f"{TD}/{domain_id}").get_json()["scan_status"] == "DONE"


def test_the_account_list_of_no_domain_is_404_and_of_a_domain_never_scanned_empty(sm, directory):
    # The list asks whether the domain exists only when its page is empty (issue 25): both answers stay.
    missing = uuid.uuid4()
    assert sm.get(f"{TD}/{missing}/accounts").status_code == 404
    assert sm.post(f"{TD}/{missing}/accounts/search", json={"keywords": "user"}).status_code == 404
    never_scanned = create_domain(sm, directory)
    assert sm.get(f"{TD}/{never_scanned}/accounts").get_json() == {"count": 0, "items": []}
    assert sm.get(f"{TD}/{never_scanned}/accounts", query={"offset": 5}).get_json() == {"count": 0, "items": []}
