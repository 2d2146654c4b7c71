"""Host secrets: register, replace, read (never a password), delete; set-password; rotate; checks."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from tests import support
from tests.secrets_manager.helpers import host_body


def test_register_stores_passwords_only_in_the_vault(sm, vault_reader, sm_config):
    role = support.new_role()
    policy_id = sm.policy(max_versions=4)
    host_id = str(uuid.uuid4())
    body = host_body(policy_id, accounts={"root": "root-secret-1", "backup": None}, roles=[role], port=2222,
                     protocol="none")
    saved = sm.post(f"/host-secret/{host_id}", json=body)
    assert saved.status_code == 200
    stored = saved.get_json()
    assert stored == sm.get(f"/host-secret/{host_id}").get_json()
    meta = stored["metadata"]
    assert meta["host_id"] == host_id and meta["port"] == 2222 and meta["protocol"] == "NONE"
    assert meta["password_policy_id"] == meta["policy_id"] == policy_id
    assert meta["access_roles"] == [{**role, "deleted": False}]
    assert [a["account"] for a in stored["accounts"]] == ["backup", "root"]
    assert "root-secret-1" not in saved.get_data(as_text=True)
    assert all("initial_password" not in a for a in stored["accounts"])

    assert vault_reader.newest(f"hosts/{host_id}/root") == "root-secret-1"
    assert vault_reader.max_versions(f"hosts/{host_id}/root") == 4
    assert vault_reader.newest(f"hosts/{host_id}/backup") is None
    # The Secrets Manager's database never holds a password.
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        dump = str(conn.execute("SELECT h.*, a.* FROM sm_hosts h JOIN sm_accounts a ON a.host_id = h.id").fetchall())
    assert "root-secret-1" not in dump


def test_replace_keeps_accounts_and_drops_removed_ones(sm, vault_reader):
    policy_id = sm.policy()
    host_id = sm.host(policy_id, accounts={"a": "pw-a", "b": "pw-b"})
    before = sm.get(f"/host-secret/{host_id}").get_json()
    created_a = next(x for x in before["accounts"] if x["account"] == "a")["created"]

    replaced = sm.post(f"/host-secret/{host_id}", json=host_body(policy_id, accounts={"a": None, "c": "pw-c"},
                                                                  address="db.example.com"))
    assert replaced.status_code == 200
    after = replaced.get_json()
    assert after["metadata"]["address"] == "db.example.com"
    assert after["metadata"]["created"] == before["metadata"]["created"]
    assert [x["account"] for x in after["accounts"]] == ["a", "c"]
    assert next(x for x in after["accounts"] if x["account"] == "a")["created"] == created_a
    assert vault_reader.newest(f"hosts/{host_id}/a") == "pw-a"
    assert vault_reader.newest(f"hosts/{host_id}/b") is None
    assert vault_reader.newest(f"hosts/{host_id}/c") == "pw-c"


def test_delete_removes_passwords(sm, vault_reader):
    host_id = sm.host(accounts={"root": "gone-soon"})
    assert sm.delete(f"/host-secret/{host_id}").status_code == 200
    assert sm.get(f"/host-secret/{host_id}").status_code == 404
    assert vault_reader.newest(f"hosts/{host_id}/root") is None
    assert sm.delete(f"/host-secret/{host_id}").status_code == 404


def test_set_password_adds_a_version(sm, vault_reader):
    host_id = sm.host(accounts={"root": "v1"})
    response = sm.post(f"/set-password/{host_id}/root", json={"password": "x"})
    assert response.status_code == 200 and response.data == b""
    assert vault_reader.newest(f"hosts/{host_id}/root") == "x"
    assert [v["version"] for v in vault_reader.versions(f"hosts/{host_id}/root")] == [1, 2]
    assert sm.post(f"/set-password/{host_id}/nobody", json={"password": "x"}).status_code == 404
    assert sm.post(f"/set-password/{host_id}/root", json={"password": 12}).status_code == 400
    assert sm.post(f"/set-password/{host_id}/root", json={}).get_json()["error_code"] == "REQUIRED_VALUE_MISSING"


def test_max_versions_caps_the_history(sm, vault_reader):
    host_id = sm.host(sm.policy(max_versions=2), accounts={"root": "p1"})
    for password in ("p2", "p3"):
        sm.post(f"/set-password/{host_id}/root", json={"password": password})
    assert [v["version"] for v in vault_reader.versions(f"hosts/{host_id}/root")] == [2, 3]


def test_rotate_queues_a_rotation(sm, vault_reader):
    host_id = sm.host(accounts={"root": "before"})
    response = sm.post(f"/rotate/{host_id}/root")
    assert response.status_code == 200 and response.data == b""
    sm.run_worker()
    assert vault_reader.newest(f"hosts/{host_id}/root") not in (None, "before")
    assert sm.post(f"/rotate/{host_id}/nobody").status_code == 404
    assert sm.post(f"/rotate/{uuid.uuid4()}/root").status_code == 404


@pytest.mark.parametrize("change, prop", [
    ({"protocol": "TELNET"}, "metadata.protocol"),
    ({"port": "22"}, "metadata.port"),
    ({"port": 70000}, "metadata.port"),
    ({"address": ""}, "metadata.address"),
    ({"password_policy_id": "nope"}, "metadata.password_policy_id"),
    ({"password_policy_id": str(uuid.uuid4())}, "metadata.password_policy_id"),
    ({"script_template_id": str(uuid.uuid4())}, "metadata.script_template_id"),
    ({"protocol": "SSH"}, "metadata.script_template_id"),
    ({"use_main_account": True}, "metadata.main_account"),
    ({"use_main_account": True, "main_account": "admin"}, "metadata.main_account"),
    ({"use_main_account": "true"}, "metadata.use_main_account"),
    ({"access_roles": [{"name": "no id"}]}, "metadata.access_roles.0.id"),
    ({"host_id": str(uuid.uuid4())}, "metadata.host_id"),
    ({"host_id": "not-a-uuid"}, "metadata.host_id"),
])
def test_bad_metadata_is_400(sm, change, prop):
    body = host_body(sm.policy())
    body["metadata"].update(change)
    response = sm.post(f"/host-secret/{uuid.uuid4()}", json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["property"] == prop


@pytest.mark.parametrize("accounts, prop", [
    ([{"account": "a/b"}], "accounts.0.account"),
    ([{"account": ""}], "accounts.0.account"),
    ([{"account": "root", "initial_password": 5}], "accounts.0.initial_password"),
    ([{"account": "root"}, {"account": "root"}], "accounts"),
    ("root", "accounts"),
])
def test_bad_accounts_are_400(sm, vault_reader, accounts, prop):
    host_id = str(uuid.uuid4())
    body = host_body(sm.policy())
    body["accounts"] = accounts
    response = sm.post(f"/host-secret/{host_id}", json=body)
    assert response.status_code == 400 and response.get_json()["property"] == prop
    assert sm.get(f"/host-secret/{host_id}").status_code == 404


def test_bad_host_ids(sm):
    assert sm.get("/host-secret/not-a-uuid").get_json()["property"] == "host_id"
    assert sm.get(f"/host-secret/{uuid.uuid4()}").status_code == 404
    assert sm.post("/host-secret/x", json=host_body(sm.policy())).status_code == 400


def test_policy_id_alias_and_main_account(sm, vault_reader):
    policy_id = sm.policy()
    body = host_body(policy_id, accounts={"admin": "admin-pw", "app": "app-pw"}, use_main_account=True,
                     main_account="admin")
    body["metadata"]["policy_id"] = body["metadata"].pop("password_policy_id")
    host_id = str(uuid.uuid4())
    body["metadata"]["host_id"] = host_id.upper()
    saved = sm.post(f"/host-secret/{host_id}", json=body).get_json()
    assert saved["metadata"]["password_policy_id"] == policy_id
    assert saved["metadata"]["use_main_account"] is True and saved["metadata"]["main_account"] == "admin"


def test_scopes(sm, tokens):
    host_id = sm.host()
    body = host_body(sm.policy())
    for scope in ("service", "hostsManage", "admin"):
        headers = tokens.headers(scope)
        assert sm.get(f"/host-secret/{host_id}", headers=headers).status_code == 200
    user = tokens.headers("user vaultManage")
    assert sm.get(f"/host-secret/{host_id}", headers=user).status_code == 403
    assert sm.post(f"/host-secret/{host_id}", headers=user, json=body).status_code == 403
    assert sm.delete(f"/host-secret/{host_id}", headers=user).status_code == 403
    assert sm.post(f"/rotate/{host_id}/root", headers=user).status_code == 403
    assert sm.post(f"/set-password/{host_id}/root", headers=user, json={"password": "x"}).status_code == 403
    assert sm.get(f"/host-secret/{host_id}", headers={}).status_code == 401
    bad = {"Authorization": "Bearer " + tokens("admin", audience="someone-else")}
    assert sm.get(f"/host-secret/{host_id}", headers=bad).status_code == 401
