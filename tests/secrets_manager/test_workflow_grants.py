"""The workflow engine's grants as the Secrets Manager honours them (docs/API.md "Grants"): a user
without the role gets nothing, an approved request lets them check the account out while the grant
is live, and its end (revoke, deletion, expiry) ends their access and their checkout."""
from __future__ import annotations

import psycopg
import pytest

from common.auth import GrantedRoles, Principal
from tests.secrets_manager.workflow_helpers import WF, People, _decide, _request, _workflow, go_access_request


@pytest.fixture()
def people(tokens):
    return People(tokens)


@pytest.fixture()
def granted_host(sm, people):
    """A workflow with one ANY step over the target role, and a host whose access_roles name it."""
    _workflow(sm, people, steps=[("ANY", [people.a])], max_active_requests=10)
    host_id = sm.host(sm.policy(), accounts={"root": "granted-password"}, roles=[people.target])
    return f"hosts/{host_id}/root"


def _approved(sm, people, **fields) -> str:
    request_id = _request(sm, people, **fields)
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    return request_id


def _actions(sm_config, **where) -> list[str]:
    clauses = " AND ".join(f"{column} = %({column})s" for column in where)
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        return [row[0] for row in conn.execute(f"SELECT action FROM audit_events WHERE {clauses} ORDER BY id", where)]


def test_a_grant_opens_the_account_and_a_revoke_ends_the_checkout(sm, people, granted_host, sm_config):
    path = granted_host
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": path}).status_code == 404
    request_id = _request(sm, people)
    # WAITING is no grant.
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": path}).status_code == 404
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    listed = sm.get("/secrets", headers=people.requester).get_json()
    assert path in [item["path"] for item in listed["items"]]
    checkout = sm.checkout(path, people.requester)
    assert checkout["secrets"][0]["secret"] == "granted-password"
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=people.requester).status_code == 200

    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.approver_a).status_code == 200
    response = sm.get(f"/secrets/checkouts/{checkout['id']}", headers=people.requester)
    assert response.status_code == 404 and "granted-password" not in response.get_data(as_text=True)
    assert "checkout.revoke" in _actions(sm_config, target=path)
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": path}).status_code == 404


def test_a_denied_request_grants_nothing(sm, people, granted_host):
    request_id = _request(sm, people)
    assert _decide(sm, request_id, people.approver_a, 0, "DENIED").status_code == 200
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": granted_host}).status_code == 404


def test_expiry_ends_a_grant_without_any_call(sm, people, granted_host, sm_config):
    from datetime import datetime, timedelta, timezone

    end = (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_id = _approved(sm, people, grant_type="TIME_RESTRICTED", grant_end=end)
    checkout = sm.checkout(granted_host, people.requester)
    # The clock moves past grant_end (the row is aged instead of the test waiting ten minutes).
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        conn.execute("""UPDATE wf_requests SET grant_start = now() - interval '20 minutes',
                               grant_end = now() - interval '1 second' WHERE id = %s""", (request_id,))
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=people.requester).status_code == 404
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": granted_host}).status_code == 404


def test_a_floating_grant_starts_at_first_use(sm, people, granted_host, sm_config):
    request_id = _approved(sm, people, grant_type="FLOATING", floating_length=2)
    request = sm.get(f"/requests/{request_id}", prefix=WF).get_json()
    assert request["grant_start"] is None and request["grant_end"] is None
    sm.checkout(granted_host, people.requester)
    request = sm.get(f"/requests/{request_id}", prefix=WF).get_json()
    assert request["grant_start"] and request["grant_end"]
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        hours = conn.execute("SELECT extract(epoch FROM grant_end - grant_start) / 3600 FROM wf_requests WHERE id = %s",
                             (request_id,)).fetchone()[0]
    assert hours == 2
    assert "grant.first_use" in _actions(sm_config, target=request_id)


def test_deleting_the_request_or_its_workflow_ends_the_grant(sm, people, tokens):
    workflow_id = _workflow(sm, people, steps=[("ANY", [people.a])], max_active_requests=10)
    path = f"hosts/{sm.host(sm.policy(), accounts={'root': 'pw'}, roles=[people.target])}/root"
    request_id = _approved(sm, people)
    sm.checkout(path, people.requester)
    assert sm.delete(f"/requests/{request_id}", prefix=WF).status_code == 200
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": path}).status_code == 404
    _approved(sm, people)
    sm.checkout(path, people.requester)
    assert sm.delete(f"/workflows/{workflow_id}", prefix=WF).status_code == 200
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": path}).status_code == 404


def _vault_grant(vault_url, tokens, request_id: str) -> dict | None:
    import requests

    response = requests.get(f"{vault_url}/vault/api/v1/grants/{request_id}", headers=tokens.headers("service"), timeout=30)
    return response.json() if response.status_code == 200 else None


def _until(check, seconds: float = 10.0):
    import time

    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "the Vault was not told in time"
        time.sleep(0.1)
    return value


def test_the_vault_is_told_every_start_and_end(sm, people, tokens, vault_url, sm_config):
    """Approval, a FLOATING grant's first use, deletion of the request or of its workflow: each
    reaches the Vault from the outbox (kicked after the commit; no worker runs here)."""
    workflow_id = _workflow(sm, people, steps=[("ANY", [people.a])], max_active_requests=10)
    path = f"hosts/{sm.host(sm.policy(), accounts={'root': 'pw'}, roles=[people.target])}/root"
    first = _approved(sm, people)
    held = _until(lambda: _vault_grant(vault_url, tokens, first))
    assert held["live"] and held["user_id"] == people.requester["sub"] and held["role"]["id"] == people.target["id"]
    assert sm.delete(f"/requests/{first}", prefix=WF).status_code == 200
    ended = _until(lambda: (g := _vault_grant(vault_url, tokens, first)) and g["ended"] and g)
    assert ended["end_reason"] == "request deleted" and not ended["live"]

    floating = _approved(sm, people, grant_type="FLOATING", floating_length=3)
    assert _until(lambda: _vault_grant(vault_url, tokens, floating))["grant_start"] is None
    sm.checkout(path, people.requester)  # its first use, here
    started = _until(lambda: (g := _vault_grant(vault_url, tokens, floating)) and g["grant_start"] and g)
    assert started["live"] and started["grant_end"]
    assert sm.delete(f"/workflows/{workflow_id}", prefix=WF).status_code == 200
    ended = _until(lambda: (g := _vault_grant(vault_url, tokens, floating)) and g["ended"] and g)
    assert ended["end_reason"] == "workflow deleted"
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        rows = conn.execute("""SELECT state->>'ended', delivered IS NOT NULL FROM wf_grant_outbox
                                WHERE request_id = ANY(%s) ORDER BY id""", ([first, floating],)).fetchall()
    assert rows == [("false", True), ("true", True), ("false", True), ("false", True), ("true", True)]


def test_a_denied_request_tells_the_vault_nothing(sm, people, tokens, vault_url, sm_config):
    _workflow(sm, people, steps=[("ANY", [people.a])], max_active_requests=10)
    request_id = _request(sm, people)
    assert _decide(sm, request_id, people.approver_a, 0, "DENIED").status_code == 200
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM wf_grant_outbox WHERE request_id = %s", (request_id,)).fetchone()[0] == 0
    assert _vault_grant(vault_url, tokens, request_id) is None


def test_a_grant_of_an_approver_role_does_not_approve_requests_for_that_role(sm, people):
    # Role a approves requests for role a: whoever holds a only through a grant cannot decide them.
    _workflow(sm, people, steps=[("ANY", [people.a])], target_roles=[people.target, people.a], max_active_requests=10)
    grantee = people.user(people.requester_role, name="Grace Grantee")
    response = sm.post("/requests", prefix=WF, headers=grantee, json=go_access_request(people.a))
    assert response.status_code == 201, response.get_json()
    assert _decide(sm, response.get_json()["id"], people.approver_a, 0).status_code == 200  # grace now holds a
    other = people.user(people.requester_role, name="Otto Other")
    for_a = sm.post("/requests", prefix=WF, headers=other, json=go_access_request(people.a)).get_json()["id"]
    for_target = sm.post("/requests", prefix=WF, headers=other, json=go_access_request(people.target)).get_json()["id"]
    assert _decide(sm, for_a, grantee, 0).status_code == 403
    assert _decide(sm, for_target, grantee, 0).status_code == 200  # another role: the grant counts


class _Refusing(GrantedRoles):
    def role_ids(self):
        raise AssertionError("the grants were looked up although the token's roles decided")

    def used(self, role_ids):
        raise AssertionError("no grant was needed")


def test_the_token_role_decides_without_a_grant_lookup():
    principal = Principal(sub="u", scopes=frozenset({"user"}), role_ids=frozenset({"r1"}), grants=_Refusing())
    assert principal.holds_any_role(["r1", "r2"])
