"""Helpers of the workflow engine's tests: the PrivX Go SDK's models as encoding/json writes them
(privx-sdk-go api/workflow/model.go), people holding the roles, and short calls."""
from __future__ import annotations

import psycopg

from tests import support

WF = "/workflow-engine/api/v1"


# --- the PrivX Go SDK's models, as encoding/json writes them --------------------------------

def go_role(role: dict) -> dict:
    """WorkflowRole: id and name always, deleted omitted when false."""
    return {"id": role["id"], "name": role.get("name", "")}


def go_workflow(*, target_roles, requester_roles, steps, **fields) -> dict:
    """Workflow with Go's zero values (id, author, created, updated, updated_by have no omitempty)."""
    return {"id": "", "author": "", "created": "", "updated": "", "updated_by": "", "name": support.unique("wf"),
            "grant_types": ["TIME_RESTRICTED", "PERMANENT", "FLOATING"], "max_active_requests": 0,
            "target_roles": [go_role(r) for r in target_roles], "requester_roles": [go_role(r) for r in requester_roles],
            "can_bypass_revoke_workflow": False,
            "steps": [{"match": match, "approvers": [{"role": go_role(r)} for r in roles]} for match, roles in steps],
            **fields}


def go_access_request(role: dict, **fields) -> dict:
    """AccessRequest as a Go client builds it: the fields without omitempty at their zero values."""
    return {"id": "", "author": "", "created": "", "updated": "", "updated_by": "", "name": "",
            "requested_role": go_role(role), "request_justification": "", "grant_type": "PERMANENT",
            "approver_can_revoke": False, "target_role_revoked": False, **fields}


def go_decision(step: int, decision: str, comment: str = "") -> dict:
    body = {"step": step, "decision": decision}
    if comment:
        body["comment"] = comment
    return body


# --- people ---------------------------------------------------------------------------------

class People:
    """A requester role, a target role and approver roles, and users holding them."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.requester_role, self.target, self.a, self.b = (support.new_role(n) for n in ("req", "tgt", "apa", "apb"))
        self.requester = self.user(self.requester_role, name="Rita Requester")
        self.approver_a = self.user(self.a, name="Alice Approver")
        self.approver_a2 = self.user(self.a, name="Arthur Approver")
        self.approver_b = self.user(self.b, name="Bob Approver")

    def user(self, *roles, name="someone", scopes="user", sub=None) -> dict:
        sub = sub or support.uuid.uuid4().__str__()
        headers = self.tokens.headers(scopes, sub=sub, roles=list(roles), name=name)
        headers["sub"] = sub  # read by the tests; ignored by the server as an unknown header
        return headers


def _workflow(sm, people, steps=None, **fields) -> str:
    steps = steps or [("ALL", [people.a]), ("ANY", [people.b])]
    fields.setdefault("target_roles", [people.target])
    response = sm.post("/workflows", prefix=WF, json=go_workflow(requester_roles=[people.requester_role],
                                                                  steps=steps, **fields))
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"].endswith(f"/workflows/{response.get_json()['id']}")
    return response.get_json()["id"]


def _request(sm, people, headers=None, **fields) -> str:
    response = sm.post("/requests", prefix=WF, headers=headers or people.requester,
                       json=go_access_request(people.target, **fields))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _get(sm, request_id, headers=None) -> dict:
    response = sm.get(f"/requests/{request_id}", prefix=WF, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _decide(sm, request_id, headers, step, decision="APPROVED"):
    return sm.post(f"/requests/{request_id}/decision", prefix=WF, headers=headers, json=go_decision(step, decision))


def _audit_actions(sm_config, request_id: str) -> list[str]:
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        return [row[0] for row in conn.execute(
            "SELECT action FROM audit_events WHERE target = %s ORDER BY id", (request_id,))]
