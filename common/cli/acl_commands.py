"""`secrets policy ...` and `secrets group ...`: the Vault's ACL policies and the external groups
that bind them to token roles, thin over HashiCorp's routes at /v1 (docs/API-hashicorp-kv.md,
"Least privilege"), with the same token, output formats and exit codes as every command."""
from __future__ import annotations

from urllib.parse import quote

import click
import requests

from common.cli import session, values
from common.cli.session import CliError

V1 = "/v1"


def _call(ctx, method: str, path: str, body: dict | None = None):
    """A /v1 call with the caller's token; Vault's `{"errors": [...]}` becomes one line and an exit code."""
    client = ctx.client
    url = client.endpoints.vault + V1 + path
    try:
        response = client.http.request(method, url, json=body, timeout=session.TIMEOUT)
    except requests.RequestException as exc:
        raise CliError(session.unreachable("vault", client.endpoints.vault, exc), session.EXIT_UNAVAILABLE) from None
    if response.status_code >= 400:
        code = session.EXIT_UNAVAILABLE if response.status_code >= 500 else session._BY_STATUS.get(
            response.status_code, session.EXIT_ERROR)
        try:
            problems = response.json().get("errors") or []
        except (ValueError, AttributeError):
            problems = []
        detail = "; ".join(" ".join(str(p).split()) for p in problems) or response.reason
        raise CliError(f"{response.status_code} {detail}", code)
    return response.json() if response.content else None


def _segment(name: str) -> str:
    return quote(name, safe="")


# --------------------------------------------------------------------------- policies


@click.group()
def policy():
    """ACL policies in HashiCorp's language: what a role may do on /v1 and the versioned API."""


@policy.command("write")
@click.argument("name")
@click.argument("text", metavar="POLICY")
@click.pass_obj
def policy_write(ctx, name, text):
    """Create or replace a policy: POLICY is its HCL or JSON, as VALUE, @FILE or -."""
    _call(ctx, "PUT", f"/sys/policies/acl/{_segment(name)}", {"policy": values.read_value(text)})
    ctx.emit({"name": name.strip().lower(), "written": True})


@policy.command("read")
@click.argument("name")
@click.pass_obj
def policy_read(ctx, name):
    """Print a policy (its text as written; the whole answer with -o json or yaml)."""
    found = _call(ctx, "GET", f"/sys/policies/acl/{_segment(name)}")["data"]
    if ctx.format == "table":
        click.echo(found["policy"], nl=not found["policy"].endswith("\n"))
    else:
        ctx.emit(found)


@policy.command("list")
@click.pass_obj
def policy_list(ctx):
    """Every policy's name."""
    ctx.emit(_call(ctx, "LIST", "/sys/policies/acl")["data"]["keys"])


@policy.command("delete")
@click.argument("name")
@values.YES
@click.pass_obj
def policy_delete(ctx, name, yes):
    """Delete a policy (groups that name it keep the name; it grants nothing until written again).
    Asks first, unless --yes."""
    values.confirm(f"Delete the policy {name!r}?", yes)
    _call(ctx, "DELETE", f"/sys/policies/acl/{_segment(name)}")
    ctx.emit({"name": name.strip().lower(), "deleted": True})


# --------------------------------------------------------------------------- groups


@click.group()
def group():
    """External groups: a group named after a role's id or name gives its policies to that role."""


@group.command("write")
@click.argument("name")
@click.option("--policy", "policies", multiple=True, metavar="POLICY", help="a policy it gives (repeatable)")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="a label (repeatable)")
@click.pass_obj
def group_write(ctx, name, policies, metadata):
    """Create a group named after a role (its id or name), or change what it gives."""
    body = {"type": "external"}
    if policies:
        body["policies"] = list(policies)
    if metadata:
        body["metadata"] = values.data_from(metadata, None)
    created = _call(ctx, "PUT", f"/identity/group/name/{_segment(name)}", body)
    ctx.emit({"name": name, "created": created is not None, **({"id": created["data"]["id"]} if created else {})})


@group.command("read")
@click.argument("name")
@click.pass_obj
def group_read(ctx, name):
    """A group: its id, policies, metadata and times."""
    ctx.emit(_call(ctx, "GET", f"/identity/group/name/{_segment(name)}")["data"])


@group.command("list")
@click.pass_obj
def group_list(ctx):
    """Every group's name."""
    try:
        ctx.emit(_call(ctx, "LIST", "/identity/group/name")["data"]["keys"])
    except CliError as exc:
        if exc.exit_code != session.EXIT_NOT_FOUND:  # Vault answers an empty list with 404
            raise
        ctx.emit([])


@group.command("delete")
@click.argument("name")
@values.YES
@click.pass_obj
def group_delete(ctx, name, yes):
    """Delete a group: its role loses the group's policies (asks first, unless --yes)."""
    values.confirm(f"Delete the group {name!r}?", yes)
    _call(ctx, "DELETE", f"/identity/group/name/{_segment(name)}")
    ctx.emit({"name": name, "deleted": True})
