"""Account secrets and checkouts: who sees what, limits, repeat checkouts, both URL prefixes."""
from __future__ import annotations

import uuid

import pytest

from tests import support
from tests.secrets_manager.helpers import AUTHORIZER


@pytest.fixture()
def team(sm, tokens):
    """A role, a user holding it, a host shared with it, and a host it may not use."""
    role = support.new_role("team")
    user = tokens.headers("user", roles=[role], email="u@example.com", name="U Ser")
    policy = sm.policy(max_concurrent_checkouts=2)
    shared = sm.host(policy, accounts={"svc": "svc-pw", "ops": "ops-pw"}, roles=[role], address="shared.example.com")
    private = sm.host(policy, accounts={"root": "root-pw"}, roles=[support.new_role("others")])
    return {"role": role, "user": user, "shared": shared, "private": private}


@pytest.mark.parametrize("prefix", [None, AUTHORIZER])
def test_users_see_only_hosts_sharing_a_role(sm, team, prefix):
    kw = {"prefix": prefix} if prefix else {}
    listed = sm.get("/secrets", headers=team["user"], **kw).get_json()
    assert listed["count"] == 2
    assert [i["path"] for i in listed["items"]] == [f"hosts/{team['shared']}/ops", f"hosts/{team['shared']}/svc"]
    assert all(i["created"].endswith("Z") and i["updated"].endswith("Z") for i in listed["items"])
    nobody = sm.get("/secrets", headers=sm.tokens.headers("user"), **kw).get_json()
    assert nobody == {"count": 0, "items": []}
    admin = sm.get("/secrets", query={"limit": 100}, **kw).get_json()
    assert admin["count"] >= 3


def test_search_filters(sm, team):
    search = lambda body, **q: sm.post("/secrets/search", headers=team["user"], json=body, query=q or None)  # noqa: E731
    assert search({"username": "svc"}).get_json()["count"] == 1
    assert search({"keywords": "OPS"}).get_json()["items"][0]["username"] == "ops"
    assert search({"keywords": "shared.example, svc"}).get_json()["count"] == 1
    assert search({"host_id": team["private"]}).get_json()["count"] == 0
    assert search({"host_id": team["shared"], "keywords": "", "username": None}).get_json()["count"] == 2
    page = search({"limit": 1, "sortkey": "USERNAME", "sortdir": "desc"}).get_json()
    assert page["count"] == 2 and page["items"][0]["username"] == "svc"
    assert search({}, limit=1, offset=1).get_json()["items"][0]["username"] == "svc"
    assert search({"limit": 101}).status_code == 400
    assert search({"sortkey": "password"}).get_json()["property"] == "sortkey"
    assert search({"host_id": "not-a-uuid"}).get_json()["property"] == "host_id"
    assert search({"keywords": 7}).status_code == 400


def test_list_paging_arguments(sm, team):
    assert sm.get("/secrets", headers=team["user"], query={"limit": 101}).status_code == 400
    assert sm.get("/secrets", headers=team["user"], query={"sortkey": "secret"}).status_code == 400
    assert sm.get("/secrets", headers=team["user"], query={"sortkey": "Created", "sortdir": "Desc"}).status_code == 200
    assert sm.get("/secrets", headers=team["user"], query={"offset": -1}).status_code == 400


def test_checkout_fields(sm, team, tokens):
    path = f"hosts/{team['shared']}/svc"
    checkout = sm.checkout(path, team["user"])
    assert set(checkout) == {"id", "path", "type", "expires", "created", "explicit_checkout", "secrets", "username",
                             "email", "full_name", "host", "managed_account_id", "user_id"}
    assert checkout["type"] == "HOST_SECRET" and checkout["username"] == "svc"
    assert checkout["host"] == {"id": team["shared"], "addresses": ["shared.example.com"],
                                "common_name": "shared.example.com", "external_id": "", "instance_id": ""}
    assert uuid.UUID(checkout["managed_account_id"])
    assert [set(s) for s in checkout["secrets"]] == [{"version", "secret", "created"}]

    listed = sm.get("/secrets/checkouts", headers=team["user"]).get_json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == checkout["id"]
    assert listed["items"][0]["secrets"][0]["secret"] == "svc-pw"
    assert sm.get("/secrets/checkouts", headers=team["user"], query={"limit": 101}).status_code == 400


def test_repeat_checkout_returns_the_live_one(sm, team):
    path = f"hosts/{team['shared']}/svc"
    first = sm.checkout(path, team["user"])
    second = sm.checkout(path, team["user"])
    assert second["id"] == first["id"] and second["expires"] == first["expires"]
    assert sm.get("/secrets/checkouts", headers=team["user"]).get_json()["count"] == 1


def test_concurrent_limit_counts_live_checkouts(sm, team, tokens):
    path = f"hosts/{team['shared']}/ops"
    users = [tokens.headers("user", roles=[team["role"]]) for _ in range(3)]
    first = sm.checkout(path, users[0])
    sm.checkout(path, users[1])
    full = sm.post("/secrets/checkouts", headers=users[2], json={"path": path})
    assert full.status_code == 409 and full.get_json()["property"] == "path"
    assert sm.post(f"/secrets/checkouts/{first['id']}/release", headers=users[0]).status_code == 200
    assert sm.post("/secrets/checkouts", headers=users[2], json={"path": path}).status_code == 200


def test_only_the_holder_or_an_admin_sees_a_checkout(sm, team, tokens):
    checkout = sm.checkout(f"hosts/{team['shared']}/svc", team["user"])
    colleague = tokens.headers("user", roles=[team["role"]])
    for prefix in (None, AUTHORIZER):
        kw = {"prefix": prefix} if prefix else {}
        hidden = sm.get(f"/secrets/checkouts/{checkout['id']}", headers=colleague, **kw)
        assert hidden.status_code == 404 and hidden.get_json()["error_code"] == "OBJECT_NOT_FOUND"
        assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=colleague, **kw).status_code == 404
    assert sm.get("/secrets/checkouts", headers=colleague).get_json()["count"] == 0
    assert sm.get(f"/secrets/checkouts/{checkout['id']}").status_code == 200  # admin
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release").status_code == 200
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=team["user"]).status_code == 404
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=team["user"]).status_code == 404


def test_accounts_of_other_hosts_cannot_be_checked_out(sm, team):
    for path in (f"hosts/{team['private']}/root", f"hosts/{team['shared']}/nobody", f"hosts/{uuid.uuid4()}/svc"):
        response = sm.post("/secrets/checkouts", headers=team["user"], json={"path": path})
        assert response.status_code == 404, path
    assert sm.post("/secrets/checkouts", json={"path": f"hosts/{team['private']}/root"}).status_code == 200


@pytest.mark.parametrize("body, prop", [
    ({}, "path"), ({"path": 5}, "path"), ({"path": "vault/secret"}, "path"), ({"path": "hosts/x/root"}, "path"),
])
def test_bad_checkout_requests(sm, team, body, prop):
    response = sm.post("/secrets/checkouts", headers=team["user"], json=body)
    assert response.status_code == 400 and response.get_json()["property"] == prop
    assert sm.get("/secrets/checkouts/not-a-uuid", headers=team["user"]).status_code == 404


def test_scopes(sm, team, tokens):
    checkout = sm.checkout(f"hosts/{team['shared']}/svc", team["user"])
    for scope in ("service", "hostsManage", "vaultManage"):
        headers = tokens.headers(scope, roles=[team["role"]])
        assert sm.get("/secrets", headers=headers).status_code == 403
        assert sm.post("/secrets/search", headers=headers, json={}).status_code == 403
        assert sm.get("/secrets/checkouts", headers=headers).status_code == 403
        assert sm.post("/secrets/checkouts", headers=headers, json={"path": checkout["path"]}).status_code == 403
        assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=headers).status_code == 403
        assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=headers).status_code == 403
    for prefix in (None, AUTHORIZER):
        kw = {"prefix": prefix} if prefix else {}
        assert sm.get("/secrets", headers={}, **kw).status_code == 401
        assert sm.post("/secrets/checkouts", headers={}, json={"path": checkout["path"]}, **kw).status_code == 401
    expired = {"Authorization": "Bearer " + tokens("user", ttl=-120)}
    assert sm.get("/secrets", headers=expired).status_code == 401
