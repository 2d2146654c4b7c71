"""`secrets requests ...` and `secrets workflows ...`: just-in-time access through the workflow
engine (docs/API.md "Workflow engine"): ask for a role, approve or deny a step, revoke a grant;
with the same token, output formats and exit codes as every command."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import click

from common.cli import values
from common.cli.session import CliError

REQUEST_COLUMNS = ("id", "status", "requested_role", "grant_type", "grant_end", "requester", "created")
WORKFLOW_COLUMNS = ("id", "name", "grant_types", "steps")
FILTERS = ("requests", "active_requests", "approvals", "active_approvals", "all")
GRANT_TYPES = ("PERMANENT", "TIME_RESTRICTED", "FLOATING")
MAX_STEPS = 3  # a workflow has 1 to 3 steps (API.md "Workflow")


def _call(ctx, method: str, path: str, *, params=None, body=None):
    return ctx.obj.client.call("workflow", method, path, params=params, body=body)


def _id(value: str) -> str:
    return quote(value, safe="")


def _request_row(request: dict) -> dict:
    """A request as one table row: names instead of nested objects."""
    return {**request, "requested_role": request["requested_role"]["name"],
            "requester": request["requester"]["display_name"]}


def _emit_requests(ctx, result: dict) -> None:
    if ctx.obj.format == "table":
        result = {**result, "items": [_request_row(item) for item in result["items"]]}
    ctx.obj.emit(result, REQUEST_COLUMNS)


@click.group()
def requests():
    """Ask for a role through a workflow, and decide others' requests."""


@requests.command("create")
@click.argument("role_id")
@click.option("--type", "grant_type", type=click.Choice(GRANT_TYPES, case_sensitive=False), default="TIME_RESTRICTED",
              show_default=True, help="how long the role is granted")
@click.option("--hours", type=click.IntRange(min=1), default=1, show_default=True,
              help="TIME_RESTRICTED: from now for this long; FLOATING: this long from first use")
@click.option("--justification", default="", help="why (some workflows require it)")
@click.option("--comment", default="")
@click.option("--for", "target_user", metavar="USER_ID", help="ask on another user's behalf (admin)")
@click.option("--field", type=click.Choice(["id"]), help="print only the new request's id, as is")
@click.pass_context
def requests_create(ctx, role_id, grant_type, hours, justification, comment, target_user, field):
    """Ask for ROLE_ID (its id: `secrets workflows list` shows the roles you may ask for)."""
    body = {"requested_role": {"id": role_id}, "grant_type": grant_type.upper(),
            "request_justification": justification, "comment": comment}
    if body["grant_type"] == "TIME_RESTRICTED":
        body["grant_end"] = (datetime.now(timezone.utc) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif body["grant_type"] == "FLOATING":
        body["floating_length"] = hours
    if target_user:
        body["target_user"] = {"id": target_user}
    created = _call(ctx, "POST", "/requests", body=body)
    if field:
        click.echo(created["id"])
    else:
        ctx.obj.emit(created)


@requests.command("list")
@click.option("--filter", "filter_name", type=click.Choice(FILTERS, case_sensitive=False), default="requests",
              show_default=True, help="yours, those you may decide (approvals), active_* = WAITING only")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.pass_context
def requests_list(ctx, filter_name, offset, limit):
    """Requests: yours, or those you approve."""
    _emit_requests(ctx, _call(ctx, "GET", "/requests", params={"filter": filter_name, "offset": offset, "limit": limit}))


@requests.command("show")
@click.argument("request_id")
@click.pass_context
def requests_show(ctx, request_id):
    """One request with its steps and decisions."""
    ctx.obj.emit(_call(ctx, "GET", f"/requests/{_id(request_id)}"))


def _decide(ctx, request_id: str, decision: str, comment: str, step: int | None) -> None:
    """Decide the current step. Which step is current is the server's rule alone (API.md
    "Decisions"): with --step that step is sent as given; without, the steps are offered in order
    and the server refuses each one that is not current (400 naming `step`, which changes
    nothing), so the one it takes is the current one."""
    offered = [step] if step is not None else range(MAX_STEPS)
    for index in offered:
        try:
            _call(ctx, "POST", f"/requests/{_id(request_id)}/decision",
                  body={"step": index, "decision": decision, "comment": comment})
        except CliError as refusal:
            if step is None and index + 1 < MAX_STEPS and refusal.status == 400 and refusal.property == "step":
                continue
            raise
        ctx.obj.emit({"id": request_id, "step": index, "decision": decision})
        return


COMMENT = click.option("--comment", default="", help="recorded with the decision")
STEP = click.option("--step", type=click.IntRange(0, MAX_STEPS - 1), default=None,
                    help="the step (0-based) to decide; by default the current one, as the server says")


def _decision_command(verb: str, decision: str, summary: str) -> None:
    @requests.command(verb, help=summary)
    @click.argument("request_id")
    @COMMENT
    @STEP
    @click.pass_context
    def command(ctx, request_id, comment, step):
        _decide(ctx, request_id, decision, comment, step)


_decision_command("approve", "APPROVED", "Approve the current step of a request.")
_decision_command("deny", "DENIED", "Deny a request (one denial ends it).")


@requests.command("revoke")
@click.argument("request_id")
@click.pass_context
def requests_revoke(ctx, request_id):
    """End the role an approved request granted."""
    _call(ctx, "POST", f"/requests/{_id(request_id)}/role/revoke")
    ctx.obj.emit({"id": request_id, "revoked": True})


@requests.command("delete")
@click.argument("request_id")
@values.YES
@click.pass_context
def requests_delete(ctx, request_id, yes):
    """Delete a request (yours while WAITING; any, as admin: its grant ends)."""
    _delete(ctx, "request", request_id, yes)


def _delete(ctx, kind: str, object_id: str, yes: bool) -> None:
    values.confirm(f"Delete {kind} {object_id}?", yes)
    _call(ctx, "DELETE", f"/{kind}s/{_id(object_id)}")
    ctx.obj.emit({"id": object_id, "deleted": True})


@click.group()
def workflows():
    """Workflows: which roles may be asked for, by whom, and who approves in which steps."""


def _workflow_row(workflow: dict) -> dict:
    steps = " then ".join(f"{s['match']}({', '.join(a['role']['name'] for a in s['approvers'])})"
                          for s in workflow["steps"])
    return {**workflow, "grant_types": ",".join(workflow["grant_types"]), "steps": steps}


@workflows.command("list")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.pass_context
def workflows_list(ctx, offset, limit):
    """Workflows (a user sees those they may ask under)."""
    result = _call(ctx, "GET", "/workflows", params={"offset": offset, "limit": limit})
    if ctx.obj.format == "table":
        result = {**result, "items": [_workflow_row(item) for item in result["items"]]}
    ctx.obj.emit(result, WORKFLOW_COLUMNS)


@workflows.command("show")
@click.argument("workflow_id")
@click.pass_context
def workflows_show(ctx, workflow_id):
    """One workflow."""
    ctx.obj.emit(_call(ctx, "GET", f"/workflows/{_id(workflow_id)}"))


def _step(text: str) -> dict:
    match, _, roles = text.partition(":")
    if match.upper() not in ("ALL", "ANY") or not roles:
        raise click.BadParameter(f"{text!r}: give MATCH:ROLE_ID[,ROLE_ID...] with MATCH ALL or ANY")
    return {"match": match.upper(), "approvers": [{"role": {"id": r.strip()}} for r in roles.split(",") if r.strip()]}


@workflows.command("create")
@click.argument("name")
@click.option("--target-role", "target_roles", multiple=True, required=True, metavar="ROLE_ID",
              help="a role that may be asked for (repeatable)")
@click.option("--requester-role", "requester_roles", multiple=True, required=True, metavar="ROLE_ID",
              help="a role whose holders may ask (repeatable)")
@click.option("--step", "steps", multiple=True, required=True, metavar="MATCH:ROLE_ID[,ROLE_ID]",
              help="an approval step, in order (1 to 3): ALL or ANY of these approver roles")
@click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES, case_sensitive=False),
              help="allowed grant types (repeatable; default all)")
@click.option("--max-hours", type=click.IntRange(min=0), default=0, help="FLOATING grants at most this long (0: no limit)")
@click.option("--max-days", type=click.IntRange(min=0), default=0,
              help="TIME_RESTRICTED grants at most this long (0: no limit)")
@click.option("--requires-justification", is_flag=True)
@click.pass_context
def workflows_create(ctx, name, target_roles, requester_roles, steps, grant_types, max_hours, max_days,
                     requires_justification):
    """Create a workflow (admin)."""
    body = {"name": name, "target_roles": [{"id": r} for r in target_roles],
            "requester_roles": [{"id": r} for r in requester_roles], "steps": [_step(s) for s in steps],
            "grant_types": [g.upper() for g in grant_types] or list(GRANT_TYPES),
            "max_floating_duration": max_hours, "max_time_restricted_duration": max_days,
            "requires_justification": requires_justification}
    ctx.obj.emit(_call(ctx, "POST", "/workflows", body=body))


@workflows.command("delete")
@click.argument("workflow_id")
@values.YES
@click.pass_context
def workflows_delete(ctx, workflow_id, yes):
    """Delete a workflow without WAITING requests (the grants it gave end)."""
    _delete(ctx, "workflow", workflow_id, yes)
