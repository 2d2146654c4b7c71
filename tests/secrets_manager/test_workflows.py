"""The workflow engine (docs/API.md "Workflow engine"): workflows, requests, stepwise decisions,
revoke, search and settings, sent as the PrivX SDKs send them (privx-sdk-go api/workflow/model.go
with Go's zero values; privx-sdk-for-python privx_api/workflow_engine.py's calls)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests import support
from tests.secrets_manager.workflow_helpers import (WF, People, _audit_actions, _decide, _get, _request, _workflow,
                                                  go_access_request, go_decision, go_workflow)



@pytest.fixture()
def people(tokens):
    return People(tokens)


# --- workflows ------------------------------------------------------------------------------

def test_status_needs_no_token(sm):
    response = sm.get("/status", prefix=WF, headers={})
    assert response.status_code == 200 and response.get_json()["status"] == "RUNNING"


def test_a_go_workflow_round_trips_and_a_get_modify_put_works(sm, people):
    workflow_id = _workflow(sm, people, comment="two steps")
    workflow = sm.get(f"/workflows/{workflow_id}", prefix=WF).get_json()
    assert workflow["max_active_requests"] == 1  # Go's 0: the default
    assert [s["match"] for s in workflow["steps"]] == ["ALL", "ANY"]
    assert workflow["steps"][0]["approvers"][0]["role"] == {"id": people.a["id"], "name": people.a["name"]}
    assert workflow["grant_types"] == ["PERMANENT", "TIME_RESTRICTED", "FLOATING"]
    workflow["name"] = support.unique("renamed")
    assert sm.put(f"/workflows/{workflow_id}", prefix=WF, json=workflow).status_code == 200
    assert sm.get(f"/workflows/{workflow_id}", prefix=WF).get_json()["name"] == workflow["name"]


def test_workflow_rules(sm, people):
    base = dict(target_roles=[people.target], requester_roles=[people.requester_role])
    cases = {
        "action": go_workflow(steps=[("ANY", [people.a])], action="REMOVE", **base),
        "steps": go_workflow(steps=[("ANY", [people.a])] * 4, **base),
        "target_roles": go_workflow(steps=[("ANY", [people.a])], target_roles=[],
                                    requester_roles=[people.requester_role]),
        "steps.0.match": go_workflow(steps=[("SOME", [people.a])], **base),
    }
    for prop, body in cases.items():
        response = sm.post("/workflows", prefix=WF, json=body)
        assert response.status_code == 400, (prop, response.get_json())
        assert response.get_json()["property"].startswith(prop.split(".")[0]), response.get_json()
    name = support.unique("dup")
    assert sm.post("/workflows", prefix=WF, json=go_workflow(steps=[("ANY", [people.a])], name=name, **base)).status_code == 201
    assert sm.post("/workflows", prefix=WF, json=go_workflow(steps=[("ANY", [people.a])], name=name, **base)).status_code == 409
    assert sm.post("/workflows", prefix=WF, headers=people.requester,
                   json=go_workflow(steps=[("ANY", [people.a])], **base)).status_code == 403


def test_users_see_the_workflows_they_may_request_under(sm, people, tokens):
    workflow_id = _workflow(sm, people)
    listed = sm.get("/workflows", prefix=WF, headers=people.requester, query={"limit": 100}).get_json()
    assert workflow_id in [w["id"] for w in listed["items"]]
    stranger = people.user(support.new_role())
    assert workflow_id not in [w["id"] for w in sm.get("/workflows", prefix=WF, headers=stranger).get_json()["items"]]
    assert sm.get(f"/workflows/{workflow_id}", prefix=WF, headers=stranger).status_code == 404


# --- requests and decisions -----------------------------------------------------------------

def test_the_whole_two_step_flow(sm, people, sm_config):
    _workflow(sm, people)
    end = (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_id = _request(sm, people, grant_type="TIME_RESTRICTED", grant_end=end,
                          request_justification="incident 42", comment="please")
    request = _get(sm, request_id, people.requester)
    assert request["status"] == "WAITING" and request["approver_can_revoke"] is True
    assert request["requester"]["display_name"] == "Rita Requester"
    assert request["requested_role"]["id"] == people.target["id"]
    assert [[a["decision"] for a in s["approvers"]] for s in request["steps"]] == [["WAITING"], ["WAITING"]]
    assert request["grant_end"] == end

    # The requester never decides; step 1 is not current yet; an approver of step 1 waits its turn.
    assert _decide(sm, request_id, people.requester, 0).status_code == 403
    assert _decide(sm, request_id, people.approver_a, 1).status_code == 400
    assert _decide(sm, request_id, people.approver_b, 0).status_code == 403
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    assert _decide(sm, request_id, people.approver_a2, 0).status_code == 400  # step 0 is done: 1 is current
    assert _get(sm, request_id)["status"] == "WAITING"
    assert _decide(sm, request_id, people.approver_b, 1).status_code == 200
    request = _get(sm, request_id, people.approver_b)
    assert request["status"] == "APPROVED"
    decided = request["steps"][0]["approvers"][0]
    assert decided["user"]["id"] == people.approver_a["sub"] and decided["decision_time"]
    # A decision after the end changes nothing.
    assert _decide(sm, request_id, people.approver_b, 1).status_code == 409

    # Revoke: the approver, not the requester.
    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.requester).status_code == 403
    response = sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.approver_b, json={})
    assert response.status_code == 200, response.get_json()
    request = _get(sm, request_id)
    assert request["target_role_revoked"] is True and request["target_role_revocation_time"]
    assert request["target_role_revoked_by"]["id"] == people.approver_b["sub"]
    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF).status_code == 409
    assert _audit_actions(sm_config, request_id) == [
        "request.create", "request.decision", "request.decision", "grant.start", "request.revoke", "grant.end"]


def test_all_needs_every_role_and_one_denial_rejects(sm, people):
    _workflow(sm, people, steps=[("ALL", [people.a, people.b])])
    request_id = _request(sm, people)
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 409  # second decision
    assert _decide(sm, request_id, people.approver_a2, 0).status_code == 409  # role a's entry is decided
    assert _get(sm, request_id)["status"] == "WAITING"
    assert _decide(sm, request_id, people.approver_b, 0, "DENIED").status_code == 200
    assert _get(sm, request_id)["status"] == "DENIED"
    assert _decide(sm, request_id, people.approver_b, 0).status_code == 409


def test_nobody_approves_a_request_for_themselves(sm, people, tokens):
    _workflow(sm, people, steps=[("ANY", [people.a])])
    # The requester holds the approver role too: still not theirs to decide.
    both = people.user(people.requester_role, people.a, name="Both")
    request_id = _request(sm, people, headers=both)
    assert _decide(sm, request_id, both, 0).status_code == 403
    # An admin asks on someone's behalf: that someone cannot approve it either.
    target_sub = people.approver_a["sub"]
    admin = people.user(people.requester_role, scopes="admin")
    response = sm.post("/requests", prefix=WF, headers=admin,
                       json=go_access_request(people.target, target_user={"id": target_sub}))
    assert response.status_code == 201, response.get_json()
    assert _decide(sm, response.get_json()["id"], people.approver_a, 0).status_code == 403
    # A user asks for someone else: 403.
    response = sm.post("/requests", prefix=WF, headers=people.requester,
                       json=go_access_request(people.target, target_user={"id": target_sub}))
    assert response.status_code == 403


def test_request_rules(sm, people):
    _workflow(sm, people, grant_types=["TIME_RESTRICTED", "FLOATING"], max_time_restricted_duration=1,
              max_floating_duration=8, requires_justification=True)
    now = datetime.now(timezone.utc)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    bad = {
        "request_justification": dict(grant_type="FLOATING", floating_length=2),
        "grant_type": dict(grant_type="PERMANENT", request_justification="x"),
        "floating_length": dict(grant_type="FLOATING", floating_length=9, request_justification="x"),
        "grant_end": dict(grant_type="TIME_RESTRICTED", grant_end=iso(now + timedelta(days=2)), request_justification="x"),
    }
    for prop, fields in bad.items():
        response = sm.post("/requests", prefix=WF, headers=people.requester, json=go_access_request(people.target, **fields))
        assert response.status_code == 400 and response.get_json()["property"] == prop, (prop, response.get_json())
    stranger = people.user(support.new_role())
    response = sm.post("/requests", prefix=WF, headers=stranger,
                       json=go_access_request(people.target, grant_type="FLOATING", floating_length=2, request_justification="x"))
    assert response.status_code == 403
    # max_active_requests (1): the second is 409 while the first waits.
    _request(sm, people, grant_type="FLOATING", floating_length=2, request_justification="x")
    response = sm.post("/requests", prefix=WF, headers=people.requester,
                       json=go_access_request(people.target, grant_type="FLOATING", floating_length=2, request_justification="x"))
    assert response.status_code == 409


def test_filters_search_and_visibility(sm, people):
    _workflow(sm, people)
    request_id = _request(sm, people, request_justification="needle-" + support.unique())
    stranger = people.user(support.new_role())
    assert sm.get(f"/requests/{request_id}", prefix=WF, headers=stranger).status_code == 404

    def ids(headers, flt):
        response = sm.get("/requests", prefix=WF, headers=headers, query={"filter": flt})
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert request_id in ids(people.requester, "requests") and request_id in ids(people.requester, "ACTIVE_REQUESTS")
    assert request_id not in ids(people.requester, "approvals")
    assert request_id in ids(people.approver_a, "active_approvals") and request_id in ids(people.approver_b, "approvals")
    assert request_id not in ids(stranger, "approvals")
    assert sm.get("/requests", prefix=WF, headers=people.requester, query={"filter": "all"}).status_code == 403
    assert sm.get("/requests", prefix=WF, headers=people.requester).status_code == 400  # filter is required
    assert request_id in ids(None, "all")

    justification = _get(sm, request_id)["request_justification"]
    for headers, found in ((None, True), (people.approver_a, True), (stranger, False)):
        response = sm.post("/requests/search", prefix=WF, headers=headers,
                           json={"keywords": f"{justification}, rita", "filter": ""}, query={"sortdir": "desc"})
        assert response.status_code == 200, response.get_json()
        assert (request_id in [i["id"] for i in response.get_json()["items"]]) is found
    response = sm.post("/requests/search", prefix=WF, json={"keywords": " ".join(["k"] * 65)})
    assert response.status_code == 400 and response.get_json()["property"] == "keywords"
    # `[]` is a Go zero value of a list, not of a text: `make fuzz` sent keywords [] and got 200
    # where the document (a string, or "" / null for not set) says 400. A list's [] is still unset.
    response = sm.post("/requests/search", prefix=WF, json={"keywords": []})
    assert response.status_code == 400 and response.get_json()["property"] == "keywords", response.get_json()
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = sm.post("/requests/search", prefix=WF, json={"keywords": justification, "start_time": later})
    assert response.get_json()["count"] == 0


def test_delete_by_the_requester_while_waiting_only(sm, people, sm_config):
    _workflow(sm, people, steps=[("ANY", [people.a])])
    request_id = _request(sm, people)
    assert sm.delete(f"/requests/{request_id}", prefix=WF, headers=people.approver_a).status_code == 403
    assert sm.delete(f"/requests/{request_id}", prefix=WF, headers=people.requester).status_code == 200
    assert sm.get(f"/requests/{request_id}", prefix=WF).status_code == 404
    request_id = _request(sm, people)
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    assert sm.delete(f"/requests/{request_id}", prefix=WF, headers=people.requester).status_code == 403
    assert sm.delete(f"/requests/{request_id}", prefix=WF).status_code == 200  # admin
    assert _audit_actions(sm_config, request_id)[-2:] == ["grant.end", "request.delete"]


def test_a_workflow_with_waiting_requests_is_not_deleted(sm, people, sm_config):
    workflow_id = _workflow(sm, people, steps=[("ANY", [people.a])])
    request_id = _request(sm, people)
    assert sm.delete(f"/workflows/{workflow_id}", prefix=WF).status_code == 409
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    assert sm.delete(f"/workflows/{workflow_id}", prefix=WF).status_code == 200
    assert _audit_actions(sm_config, request_id)[-1] == "grant.end"
    assert _get(sm, request_id)["workflow"] is None


def test_settings_keep_the_smtp_password_write_only(sm, people, sm_config, vault_reader):
    go_settings = {"smtp_server": "127.0.0.1", "smtp_server_port": 2525, "request_role_max_approvers": 0,
                   "smtp_server_enabled": False, "privx_backend_address": "https://privx.example",
                   "smtp_server_username": "mailer", "smtp_server_password": "s3cret-pw",
                   "smtp_server_protocol": "STARTTLS", "smtp_sender_address": "privx@example.com",
                   "smtp_retry_attempts": 0, "smtp_server_insecure_verify": False}
    assert sm.put("/settings", prefix=WF, json=go_settings).status_code == 200
    settings = sm.get("/settings", prefix=WF).get_json()
    assert settings["smtp_server_password"] == "" and settings["request_role_max_approvers"] == 10
    assert settings["smtp_server_port"] == 2525
    stored = vault_reader.versions("workflow-engine/smtp")[-1]["version"]
    assert sm.put("/settings", prefix=WF, json=settings).status_code == 200  # "" keeps the stored one
    assert vault_reader.raw("workflow-engine/smtp") == {"password": "s3cret-pw"}  # only in the Vault
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT smtp_password, smtp_password_version FROM wf_settings").fetchone() == ("", stored)
        audit_text = str(conn.execute("SELECT array_agg(details::text) FROM audit_events").fetchone()[0])
    assert "s3cret-pw" not in audit_text
    assert sm.get("/settings", prefix=WF, headers=people.requester).status_code == 403


# --- races: several gunicorn workers, requests released together -----------------------------

@pytest.fixture(scope="module")
def wf_server(sm_config):
    env = {key: str(value) for key, value in sm_config.items()}
    with support.gunicorn("secrets_manager_service.wsgi:app", env, workers=3, health_path=WF + "/status") as base:
        yield base


def _post(base, path, headers, body=None):
    import requests

    return lambda: requests.post(f"{base}{WF}{path}", headers=headers, json=body, timeout=30).status_code


def _delete(base, path, headers):
    import requests

    return lambda: requests.delete(f"{base}{WF}{path}", headers=headers, timeout=30).status_code


@pytest.mark.slow
def test_two_approvers_at_once_make_one_decision(sm, people, wf_server):
    _workflow(sm, people, steps=[("ANY", [people.a])])
    for _ in range(3):
        request_id = _request(sm, people)
        codes = support.all_at_once([_post(wf_server, f"/requests/{request_id}/decision", h, go_decision(0, d))
                              for h, d in ((people.approver_a, "APPROVED"), (people.approver_a2, "DENIED"))])
        assert sorted(codes) == [200, 409], codes
        request = _get(sm, request_id)
        decided = [a for a in request["steps"][0]["approvers"] if a["decision"] != "WAITING"]
        assert len(decided) == 1 and request["status"] == decided[0]["decision"]
        if request["status"] == "APPROVED":
            assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF).status_code == 200


@pytest.mark.slow
def test_approve_and_revoke_or_delete_at_once_end_consistent(sm, people, wf_server, sm_config):
    _workflow(sm, people, steps=[("ANY", [people.a])], max_active_requests=10)
    for other in ("revoke", "delete"):
        for _ in range(3):
            request_id = _request(sm, people)
            approve = _post(wf_server, f"/requests/{request_id}/decision", people.approver_a, go_decision(0, "APPROVED"))
            if other == "revoke":
                second = _post(wf_server, f"/requests/{request_id}/role/revoke", people.approver_a2)
            else:
                second = _delete(wf_server, f"/requests/{request_id}", sm.admin)
            approve_code, other_code = support.all_at_once([approve, second])
            if other == "revoke":
                request = _get(sm, request_id)
                assert approve_code == 200 and request["status"] == "APPROVED"
                # Revoke first: 409 (nothing approved yet), the grant stays; after: revoked and ended.
                assert (other_code, request["target_role_revoked"]) in ((409, False), (200, True))
                if other_code == 409:
                    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF).status_code == 200
                actions = _audit_actions(sm_config, request_id)
                assert actions.count("grant.start") == actions.count("grant.end") == 1
            else:
                assert other_code == 200 and sm.get(f"/requests/{request_id}", prefix=WF).status_code == 404
                actions = _audit_actions(sm_config, request_id)
                # Approved before the deletion: the grant started and ended; after it: nothing to approve.
                assert (approve_code, actions.count("grant.start"), actions.count("grant.end")) in ((200, 1, 1), (404, 0, 0))



# --- the command line ----------------------------------------------------------------------

def _secrets(base, token, *args):
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETS_")}
    env.update(SECRETS_SM_URL=base, SECRETS_TOKEN=token, SECRETS_OUTPUT="json")
    result = subprocess.run([sys.executable, "-m", "common.cli.main", *args], capture_output=True, text=True,
                            env=env, timeout=60)
    return result.returncode, (json.loads(result.stdout) if result.returncode == 0 else result.stderr)


@pytest.mark.slow
def test_the_whole_flow_from_the_command_line(wf_server, people, tokens):
    admin = tokens("admin")
    code, created = _secrets(wf_server, admin, "workflows", "create", support.unique("cli"),
                             "--target-role", people.target["id"], "--requester-role", people.requester_role["id"],
                             "--step", f"ALL:{people.a['id']}", "--step", f"any:{people.b['id']}")
    assert code == 0, created
    requester = tokens("user", sub=people.requester["sub"], roles=[people.requester_role])
    code, listed = _secrets(wf_server, requester, "workflows", "list")
    assert created["id"] in [w["id"] for w in listed["items"]]
    code, made = _secrets(wf_server, requester, "requests", "create", people.target["id"], "--hours", "2",
                          "--justification", "ticket 7")
    assert code == 0, made
    approver_a = tokens("user", sub=people.approver_a["sub"], roles=[people.a])
    approver_b = tokens("user", sub=people.approver_b["sub"], roles=[people.b])
    assert _secrets(wf_server, requester, "requests", "approve", made["id"])[0] == 4  # 403: not their own
    assert _secrets(wf_server, approver_a, "requests", "approve", made["id"]) == (
        0, {"id": made["id"], "step": 0, "decision": "APPROVED"})
    assert _secrets(wf_server, approver_b, "requests", "approve", made["id"])[1]["step"] == 1
    code, shown = _secrets(wf_server, requester, "requests", "show", made["id"])
    assert shown["status"] == "APPROVED" and shown["grant_type"] == "TIME_RESTRICTED"
    code, approvals = _secrets(wf_server, approver_b, "requests", "list", "--filter", "approvals")
    assert made["id"] in [r["id"] for r in approvals["items"]]
    assert _secrets(wf_server, approver_b, "requests", "revoke", made["id"]) == (0, {"id": made["id"], "revoked": True})
    assert _secrets(wf_server, requester, "requests", "delete", made["id"], "--yes")[0] == 4  # no longer WAITING
    assert _secrets(wf_server, admin, "requests", "delete", made["id"], "--yes")[0] == 0
    assert _secrets(wf_server, admin, "workflows", "delete", created["id"], "--yes")[0] == 0
    code, error = _secrets(wf_server, admin, "workflows", "show", created["id"])
    assert code == 5 and "OBJECT_NOT_FOUND" in error
