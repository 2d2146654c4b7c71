"""The workflow engine's rules (docs/API.md "Workflow engine"): who may ask for which role, who
decides which step, and when a request's grant is live. Every change runs in one transaction
with its audit events; a request's row is locked (store.lock_request) by every decision, revoke
and deletion, so concurrent ones happen one after the other and each sees the one before."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from common import audit, errors
from common.auth import Principal
from common.db import Database
from common.timefmt import rfc3339
from common.web import database
from secrets_manager_service.vault_client import VaultClient
from secrets_manager_service.workflows import grant_outbox, mail, schemas, smtp_password, store

log = logging.getLogger(__name__)

WAITING, APPROVED, DENIED = "WAITING", "APPROVED", "DENIED"
# A FLOATING grant not used within this long lapses (API.md).
FLOATING_UNUSED_LAPSE = timedelta(days=7)
SETTINGS_DEFAULTS = schemas.WorkflowSettingsBody().load({})


def _not_found(what: str = "request") -> errors.NotFound:
    return errors.NotFound(f"{what} not found")


def _bad(prop: str, message: str, code: str = "VALUE_OUT_OF_BOUNDS") -> errors.ApiError:
    detail = {"error_code": code, "error_message": message, "property": prop}
    return errors.ApiError(message, code=code, property=prop, details=[detail]).with_status(400)


def learn_from_token(principal: Principal) -> None:
    """Token hook (once per new token): remember who called, their mail and their roles' names,
    for display names and for mailing an approver role's members. Best effort: a database
    outage answers the request itself, not this."""
    try:
        with database().cursor() as cur:
            store.learn_principal(cur, principal)
    except errors.ApiError:
        log.warning("workflow engine: the caller could not be remembered")


# --- workflows --------------------------------------------------------------------------------

def _named_roles(cur, refs: list[dict]) -> list[dict]:
    """Roles with their names from the registry (else the client's name, else the id), once each."""
    known = store.role_names(cur, {ref["id"] for ref in refs})
    seen, roles = set(), []
    for ref in refs:
        if ref["id"] not in seen:
            seen.add(ref["id"])
            roles.append({"id": ref["id"], "name": known.get(ref["id"]) or ref.get("name") or ref["id"]})
    return roles


def _workflow_doc(cur, body: dict) -> dict:
    settings = _settings(cur)
    steps = []
    for index, step in enumerate(body["steps"]):
        approvers = _named_roles(cur, [a["role"] for a in step["approvers"]])
        if len(approvers) > settings["request_role_max_approvers"]:
            raise _bad(f"steps.{index}.approvers",
                       f"at most {settings['request_role_max_approvers']} approvers in a step (request_role_max_approvers)")
        steps.append({"id": str(index), "name": step.get("name") or f"step {index + 1}", "match": step["match"],
                      "approvers": [{"id": f"{index}.{n}", "role": role} for n, role in enumerate(approvers)]})
    return {
        "grant_types": sorted(set(body["grant_types"]), key=schemas.GRANT_TYPES.index),
        "max_time_restricted_duration": body["max_time_restricted_duration"],
        "max_floating_duration": body["max_floating_duration"],
        "max_active_requests": body["max_active_requests"],
        "target_roles": _named_roles(cur, body["target_roles"]),
        "requester_roles": _named_roles(cur, body["requester_roles"]),
        "action": "GRANT",
        "can_bypass_revoke_workflow": body["can_bypass_revoke_workflow"],
        "requires_justification": body["requires_justification"],
        "comment": body["comment"],
        "steps": steps,
    }


def workflow_view(row: dict) -> dict:
    return {"id": row["id"], "author": row["created_by"], "created": row["created"], "updated": row["updated"],
            "updated_by": row["updated_by"], "name": row["name"], **row["doc"]}


def create_workflow(db: Database, principal: Principal, body: dict):
    with db.transaction() as cur:
        workflow_id = store.insert_workflow(cur, principal.sub, body["name"], _workflow_doc(cur, body))
        audit.record("workflow.create", str(workflow_id), cur=cur, details={"name": body["name"]})
    return workflow_id


def replace_workflow(db: Database, principal: Principal, workflow_id, body: dict) -> None:
    with db.transaction() as cur:
        if store.lock_workflow(cur, workflow_id, exclusive=True) is None:
            raise _not_found("workflow")
        store.update_workflow(cur, principal.sub, workflow_id, body["name"], _workflow_doc(cur, body))
        audit.record("workflow.update", str(workflow_id), cur=cur, details={"name": body["name"]})


def delete_workflow(db: Database, workflow_id) -> None:
    with db.transaction() as cur:
        if store.lock_workflow(cur, workflow_id, exclusive=True) is None:
            raise _not_found("workflow")
        if store.waiting_requests_of(cur, workflow_id):
            raise errors.Conflict("the workflow has WAITING requests: decide or delete them first")
        ended = store.end_grants_of_workflow(cur, workflow_id)
        for row in ended:
            grant_ended(cur, row["id"], row, "workflow deleted")
        store.delete_workflow(cur, workflow_id)
        audit.record("workflow.delete", str(workflow_id), cur=cur)
    if ended:
        grant_outbox.deliver_soon()


def get_workflow(db: Database, principal: Principal, workflow_id) -> dict:
    row = store.find_workflow(db, workflow_id)
    if row is None or not (principal.has_scope("admin") or _may_request_under(principal, row["doc"])):
        raise _not_found("workflow")
    return workflow_view(row)


def list_workflows(db: Database, principal: Principal, args: dict) -> dict:
    roles = None if principal.has_scope("admin") else sorted(principal.role_ids)
    total, rows = store.workflows_page(db, requester_roles=roles, offset=args["offset"], limit=args["limit"],
                                       sortdir=args["sortdir"])
    return {"count": total, "items": [workflow_view(row) for row in rows]}


def _may_request_under(principal: Principal, doc: dict) -> bool:
    return principal.holds_any_role(role["id"] for role in doc["requester_roles"])


# --- requests ---------------------------------------------------------------------------------

def _user(user_id: str, name: str | None) -> dict:
    return {"id": user_id, "display_name": name or user_id, "deleted": False}


def request_view(row: dict) -> dict:
    revoked_by = _user(row["revoked_by_id"], row["revoked_by_name"]) if row["revoked_by_id"] else None
    return {
        "id": row["id"], "author": row["requester_id"], "created": row["created"], "updated": row["updated"],
        "updated_by": row["updated_by"], "name": row["role_name"],
        "workflow": str(row["workflow_id"]) if row["workflow_id"] else None,
        "requester": _user(row["requester_id"], row["requester_name"]),
        "requested_role": {"id": row["role_id"], "name": row["role_name"]},
        "request_justification": row["justification"], "grant_type": row["grant_type"],
        "grant_start": row["grant_start"], "grant_end": row["grant_end"], "floating_length": row["floating_length"],
        "target_user": _user(row["target_user_id"], row["target_user_name"]), "action": "GRANT",
        "status": row["status"], "comment": row["comment"], "steps": row["steps"],
        "approver_can_revoke": True, "target_role_revoked": row["revoked"],
        "target_role_revocation_time": row["revoked_at"], "target_role_revoked_by": revoked_by,
    }


def _grant_window(body: dict, doc: dict, now: datetime) -> tuple[datetime | None, datetime | None, int]:
    """(grant_start, grant_end, floating_length) of a new request, checked against the workflow."""
    grant_type = body["grant_type"]
    if grant_type not in doc["grant_types"]:
        raise _bad("grant_type", f"the workflow allows {', '.join(doc['grant_types'])}, not {grant_type}")
    if grant_type == "PERMANENT":
        return None, None, 0
    if grant_type == "FLOATING":
        hours = body.get("floating_length")
        if not hours:
            raise _bad("floating_length", "a FLOATING grant needs floating_length (hours)", "REQUIRED_VALUE_MISSING")
        if doc["max_floating_duration"] and hours > doc["max_floating_duration"]:
            raise _bad("floating_length", f"at most {doc['max_floating_duration']} hours (max_floating_duration)")
        return None, None, hours
    start, end = body.get("grant_start") or now, body.get("grant_end")
    if end is None:
        raise _bad("grant_end", "a TIME_RESTRICTED grant needs grant_end", "REQUIRED_VALUE_MISSING")
    if start >= end:
        raise _bad("grant_end", "grant_end must come after grant_start")
    if end <= now:
        raise _bad("grant_end", "grant_end must be in the future")
    if doc["max_time_restricted_duration"] and end - start > timedelta(days=doc["max_time_restricted_duration"]):
        raise _bad("grant_end", f"at most {doc['max_time_restricted_duration']} days (max_time_restricted_duration)")
    return start, end, 0


def _request_steps(doc: dict) -> list[dict]:
    return [{"id": step["id"], "name": step["name"], "match": step["match"],
             "approvers": [{"id": a["id"], "role": a["role"], "decision": WAITING, "comment": ""}
                           for a in step["approvers"]]}
            for step in doc["steps"]]


def create_request(db: Database, principal: Principal, body: dict):
    role_id = body["requested_role"]["id"]
    target = body.get("target_user") or {"id": principal.sub}
    if target["id"] != principal.sub and not principal.has_scope("admin"):
        raise errors.PermissionDenied("only an admin may request a role for another user")
    if body.get("request_justification") is None:
        body["request_justification"] = ""
    now = datetime.now(timezone.utc)
    with db.transaction() as cur:
        store.learn_principal(cur, principal)
        workflow = _workflow_for(cur, principal, role_id)
        doc = workflow["doc"]
        if doc["requires_justification"] and not body["request_justification"].strip():
            raise _bad("request_justification", "the workflow requires a justification", "REQUIRED_VALUE_MISSING")
        start, end, floating = _grant_window(body, doc, now)
        store.lock_requester(cur, workflow["id"], principal.sub)
        if store.active_requests(cur, workflow["id"], principal.sub) >= doc["max_active_requests"]:
            raise errors.Conflict(f"at most {doc['max_active_requests']} active requests under this workflow")
        role_name = next(r["name"] for r in doc["target_roles"] if r["id"] == role_id)
        target_name = (principal.name or principal.sub) if target["id"] == principal.sub else (
            store.user_name(cur, target["id"]) or target.get("display_name") or target["id"])
        request_id = store.insert_request(cur, {
            "workflow_id": workflow["id"], "requester_id": principal.sub,
            "requester_name": principal.name or principal.sub, "target_user_id": target["id"],
            "target_user_name": target_name, "role_id": role_id, "role_name": role_name,
            "justification": body["request_justification"], "comment": body["comment"],
            "grant_type": body["grant_type"], "grant_start": start, "grant_end": end, "floating_length": floating,
            "steps": _request_steps(doc)})
        audit.record("request.create", str(request_id), cur=cur,
                     details={"request_id": str(request_id), "role_id": role_id, "target_user": target["id"],
                              "grant_type": body["grant_type"], "workflow_id": str(workflow["id"])})
        _notify_approvers(cur, request_id, doc["steps"][0], requester=principal.sub, target=target["id"],
                          role_name=role_name, requester_name=principal.name or principal.sub)
    return request_id


def _workflow_for(cur, principal: Principal, role_id: str) -> dict:
    """The workflow the caller may request `role_id` under (locked shared), or 403."""
    workflow = store.workflow_for_role(cur, role_id, sorted(principal.role_ids))
    if workflow is None:
        raise errors.PermissionDenied("no workflow lets the caller request this role")
    return workflow


def _approver_roles(row: dict) -> set[str]:
    return {a["role"]["id"] for step in row["steps"] for a in step["approvers"]}


def _party(principal: Principal, row: dict) -> bool:
    return principal.sub in (row["requester_id"], row["target_user_id"])


def _visible(principal: Principal, row: dict) -> bool:
    return (principal.has_scope("admin") or _party(principal, row)
            or principal.holds_any_role(_approver_roles(row))
            or any(a.get("user", {}).get("id") == principal.sub for s in row["steps"] for a in s["approvers"]))


def get_request(db: Database, principal: Principal, request_id) -> dict:
    row = store.find_request(db, request_id)
    if row is None or not _visible(principal, row):
        raise _not_found()
    return request_view(row)


def list_requests(db: Database, principal: Principal, *, filter_name: str | None, paging: dict,
                  search: dict | None = None) -> dict:
    if filter_name is None and principal.has_scope("admin"):
        filter_name = "all"
    if filter_name == "all" and not principal.has_scope("admin"):
        raise errors.PermissionDenied("the filter all is for admins")
    search = search or {}
    total, rows = store.requests_page(
        db, condition=store.FILTER_CONDITIONS[filter_name], me=principal.sub, roles=sorted(principal.role_ids),
        keywords=search.get("keywords", ()), start_time=search.get("start_time"), end_time=search.get("end_time"),
        sortkey=paging.get("sortkey", "created"), sortdir=paging.get("sortdir", "DESC"),
        offset=paging["offset"], limit=paging["limit"])
    return {"count": total, "items": [request_view(row) for row in rows]}


def delete_request(db: Database, principal: Principal, request_id) -> None:
    with db.transaction() as cur:
        row = store.lock_request(cur, request_id)
        if row is None or not _visible(principal, row):
            raise _not_found()
        if not principal.has_scope("admin"):
            if principal.sub != row["requester_id"]:
                raise errors.PermissionDenied("only the requester (while WAITING) or an admin deletes a request")
            if row["status"] != WAITING:
                raise errors.PermissionDenied("a request that is no longer WAITING is deleted by an admin only")
        ends_grant = _grant_open(row)
        if ends_grant:
            grant_ended(cur, request_id, row, "request deleted")
        store.delete_request(cur, request_id)
        audit.record("request.delete", str(request_id), cur=cur, details={"request_id": str(request_id)})
    if ends_grant:
        grant_outbox.deliver_soon()


def decide(db: Database, principal: Principal, request_id, body: dict) -> None:
    """One approver's decision on the current step (the rules: API.md "Decisions")."""
    now = rfc3339(datetime.now(timezone.utc))
    with db.transaction() as cur:
        store.learn_principal(cur, principal)
        row = store.lock_request(cur, request_id)
        if row is None or not _visible(principal, row):
            raise _not_found()
        if _party(principal, row):
            raise errors.PermissionDenied("nobody decides their own request or one for themselves")
        if row["status"] != WAITING:
            raise errors.Conflict(f"the request is {row['status']}, not WAITING")
        steps = row["steps"]
        current = next(i for i, step in enumerate(steps) if not _step_approved(step))
        step = steps[current]
        held = [a for a in step["approvers"] if _approves_as(principal, a["role"]["id"], row["role_id"])]
        if body["step"] != current:
            raise _bad("step", f"step {current} is the current step, not {body['step']}")
        if not held:
            raise errors.PermissionDenied("the caller holds none of this step's approver roles")
        if any(a.get("user", {}).get("id") == principal.sub for a in step["approvers"]):
            raise errors.Conflict("the caller has already decided this step")
        entry = next((a for a in held if a["decision"] == WAITING), None)
        if entry is None:
            raise errors.Conflict("the approver entries the caller may decide are already decided")
        entry.update(decision=body["decision"], user=_user(principal.sub, principal.name), decision_time=now,
                     comment=body["comment"])
        status = WAITING
        if body["decision"] == DENIED:
            status = DENIED
        elif all(_step_approved(s) for s in steps):
            status = APPROVED
        store.save_decision(cur, request_id, steps=steps, status=status, by=principal.sub)
        audit.record("request.decision", str(request_id), cur=cur,
                     details={"request_id": str(request_id), "step": current, "decision": body["decision"],
                              "status": status})
        if status == APPROVED:
            audit.record("grant.start", str(request_id), cur=cur,
                         details={"request_id": str(request_id), "role_id": row["role_id"],
                                  "user": row["target_user_id"], "grant_type": row["grant_type"]})
            # The Vault learns of it from the outbox (after this commits: delivered below).
            store.queue_grant_state(cur, request_id, grant_state(
                {**row, "status": APPROVED, "updated": datetime.now(timezone.utc)}))
        if status != WAITING:
            _notify_requester(cur, request_id, row, status)
        elif _step_approved(step):  # the next step's approvers' turn
            _notify_approvers(cur, request_id, steps[current + 1], requester=row["requester_id"],
                              target=row["target_user_id"], role_name=row["role_name"],
                              requester_name=row["requester_name"])
    if status == APPROVED:
        grant_outbox.deliver_soon()


def _approves_as(principal: Principal, approver_role: str, requested_role: str) -> bool:
    """Whether the caller holds `approver_role` for deciding: by its token, or by a grant unless
    the request is for that same role (a grant never approves more of itself)."""
    if approver_role in principal.role_ids:
        return True
    return approver_role != requested_role and principal.holds_any_role([approver_role])


def _step_approved(step: dict) -> bool:
    decisions = [a["decision"] == APPROVED for a in step["approvers"]]
    return all(decisions) if step["match"] == "ALL" else any(decisions)


def revoke(db: Database, principal: Principal, request_id) -> None:
    with db.transaction() as cur:
        row = store.lock_request(cur, request_id)
        if row is None or not _visible(principal, row):
            raise _not_found()
        if not (principal.has_scope("admin") or principal.holds_any_role(_approver_roles(row))):
            raise errors.PermissionDenied("only an approver of the request or an admin revokes it")
        if _party(principal, row) and not principal.has_scope("admin"):
            raise errors.PermissionDenied("an approver does not revoke their own request")
        if row["status"] != APPROVED or row["revoked"]:
            raise errors.Conflict("only an APPROVED request whose role is not yet revoked can be revoked")
        store.save_revoke(cur, request_id, by_id=principal.sub, by_name=principal.name or principal.sub)
        audit.record("request.revoke", str(request_id), cur=cur, details={"request_id": str(request_id)})
        ends_grant = _grant_open(row)
        if ends_grant:
            grant_ended(cur, request_id, row, "revoked")
    if ends_grant:
        grant_outbox.deliver_soon()


def grant_is_live(row: dict, now: datetime | None = None) -> bool:
    """Whether an APPROVED request's grant holds now (the one rule of a grant's window)."""
    now = now or datetime.now(timezone.utc)
    if row["status"] != APPROVED or row["grant_ended"] is not None or row.get("revoked"):
        return False
    if row["grant_type"] == "PERMANENT":
        return True
    if row["grant_type"] == "FLOATING" and row["grant_start"] is None:
        return now < row["updated"] + FLOATING_UNUSED_LAPSE  # unused yet: starts at first use
    return row["grant_start"] <= now < row["grant_end"]


def _grant_open(row: dict) -> bool:
    """Whether an end must still be told: approved, and not ended before (even if its window is
    not open now: the Vault holds every approved grant and must learn that this one will never be)."""
    return row["status"] == APPROVED and row["grant_ended"] is None and not row.get("revoked")


def grant_ended(cur, request_id, row: dict, reason: str) -> None:
    """A grant ended (in the caller's transaction): audited, and its end queued for the Vault
    and for the worker's sweep of the checkouts that needed it."""
    audit.record("grant.end", str(request_id), cur=cur,
                 details={"request_id": str(request_id), "role_id": row["role_id"], "user": row["target_user_id"],
                          "reason": reason})
    store.queue_grant_state(cur, request_id, grant_state(row, ended=True, reason=reason))


def grant_state(row: dict, *, ended: bool = False, reason: str = "") -> dict:
    """A grant as the Vault is told it (PUT /vault/api/v1/grants/{request_id}, less its sequence)."""
    def iso(value):
        # Full precision: the Vault ends a grant at the same instant by its own clock.
        return value.astimezone(timezone.utc).isoformat() if value is not None else None

    unused = row["grant_type"] == "FLOATING" and row["grant_start"] is None
    return {"user_id": row["target_user_id"], "role": {"id": row["role_id"], "name": row["role_name"]},
            "grant_type": row["grant_type"], "grant_start": iso(row["grant_start"]), "grant_end": iso(row["grant_end"]),
            "floating_length": row["floating_length"],
            "unused_until": iso(row["updated"] + FLOATING_UNUSED_LAPSE) if unused else None,
            "ended": ended, "end_reason": reason}


# --- notifications (queued in the request's transaction; the worker sends them: mail.deliver_due) --

def _mail_on(cur) -> dict | None:
    settings = _settings(cur)
    return settings if settings["smtp_server_enabled"] else None


def _link(settings: dict, request_id) -> str:
    base = settings["privx_backend_address"].rstrip("/")
    return f"{base}/workflow-engine/api/v1/requests/{request_id}" if base else f"request {request_id}"


def _notify_approvers(cur, request_id, step: dict, *, requester: str, target: str, role_name: str,
                      requester_name: str) -> None:
    settings = _mail_on(cur)
    if settings is None:
        return
    recipients = store.members_with_mail(cur, [a["role"]["id"] for a in step["approvers"]], [requester, target])
    if not recipients:
        return
    store.queue_mail(cur, request_id, recipients, f"Access request waiting for your decision: {role_name}",
                     f"{requester_name} asks for the role {role_name}.\n"
                     f"Step {int(step['id']) + 1} ({step['match']}) waits for a decision:\n{_link(settings, request_id)}\n")


def _notify_requester(cur, request_id, row: dict, status: str) -> None:
    settings = _mail_on(cur)
    recipient = store.user_mail(cur, row["requester_id"]) if settings else None
    if recipient is None:
        return
    store.queue_mail(cur, request_id, [recipient], f"Your access request for {row['role_name']} was {status}",
                     f"Your request for the role {row['role_name']} was {status}.\n{_link(settings, request_id)}\n")


def test_smtp(db: Database, vault: VaultClient, body: dict) -> dict:
    """testsmtp: the given settings, with the stored password where the body leaves it ""."""
    password = body.pop("smtp_server_password", None) or smtp_password.stored(db, vault)
    return mail.test_settings(body, password)


# --- settings ---------------------------------------------------------------------------------

def _settings(cur) -> dict:
    return {**SETTINGS_DEFAULTS, **(store.read_settings(cur) or {})}


def read_settings(db: Database) -> dict:
    with db.cursor() as cur:
        return {**_settings(cur), "smtp_server_password": ""}  # write only


def write_settings(db: Database, vault: VaultClient, principal: Principal, body: dict) -> None:
    password = body.pop("smtp_server_password", None)  # "" or absent: keep the stored one
    # Into the Vault first (503 and nothing changed when it is down); the row then names it.
    version = smtp_password.save(vault, password) if password else None
    with db.transaction() as cur:
        store.write_settings(cur, principal.sub, body, version)
        # The password never reaches the audit row: only whether it changed.
        audit.record("workflow.settings", "settings", cur=cur,
                     details={"smtp_server_enabled": body["smtp_server_enabled"], "password_changed": bool(password)})
