"""The `secrets` commands. Run `secrets --help`; `secrets completion bash` prints shell completion."""
from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timezone
from urllib.parse import quote

import click
from click.shell_completion import get_completion_class

from common import programs
from common.cli import acl_commands, output, session, values, workflow_commands
from common.cli import versions as version_commands
from common.cli.session import CliError

EPILOG = """\b
Values: VALUE, @FILE (its content) or - (standard input), so passwords stay out of shell history.
Settings: SECRETS_URL (one origin for all services), SECRETS_AUTH_URL, SECRETS_VAULT_URL,
SECRETS_SM_URL, SECRETS_TOKEN (a token instead of the cached login), SECRETS_OUTPUT.
\b
Exit codes: 0 ok, 1 other error, 2 bad usage or request (400), 3 not logged in or token
refused (401), 4 forbidden (403), 5 not found (404), 6 conflict (409), 7 service unavailable
(connection, 429, 5xx: retry later)."""
ROLE = click.option("--read-role", "read_roles", multiple=True, metavar="ROLE",
                    help="role that may read: its id or name (`secrets roles`; repeatable)")
WRITE_ROLE = click.option("--write-role", "write_roles", multiple=True, metavar="ROLE",
                          help="role that may write: its id or name (repeatable)")
UNKNOWN_ROLE = click.option("--allow-unknown-role", is_flag=True,
                            help="take a role id the Vault has not seen yet (no token holding it came by)")
YES = values.YES
PERSONAL = click.option("--personal", is_flag=True, help="your own personal secret (the token's user)")
USER = click.option("--user", "user_id", metavar="USER_ID", help="the personal secrets of this user")
SECRET_COLUMNS = ("name", "updated", "updated_by", "author")


class Context:
    def __init__(self, fmt: str, base: str | None, urls: dict):
        self.format = fmt
        self.endpoints = session.Endpoints.resolve(base, urls, (session.cached() or {}).get("urls"),
                                                   session.running_suite_urls())
        self._client = None

    @property
    def client(self) -> session.Client:
        if self._client is None:
            self._client = session.Client(self.endpoints, session.bearer_token())
        return self._client

    def emit(self, result, columns: tuple[str, ...] = ()) -> None:
        output.emit(result, self.format, columns)

    def secrets_path(self, personal: bool, user_id: str | None) -> str:
        """`/secrets` for shared secrets, `/user/{id}/secrets` for personal ones."""
        if personal and not user_id:
            user_id = _token_subject(session.bearer_token())
        return f"/user/{quote(user_id, safe='')}/secrets" if user_id else "/secrets"


def _token_claims(token: str) -> dict:
    """The claims of our own token (read, not verified: the services verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        claims = None
    if not isinstance(claims, dict):
        raise CliError("the token is not a JWT (SECRETS_TOKEN or the cached login)", session.EXIT_USAGE)
    return claims


def _token_subject(token: str) -> str:
    subject = _token_claims(token).get("sub")
    if not isinstance(subject, str):
        raise CliError("the token is not a JWT with a sub: give --user USER_ID", session.EXIT_USAGE)
    return subject


def _time(epoch: float) -> str:
    """A moment as the services write times: RFC 3339 in UTC."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")





def _name(name: str) -> str:
    return quote(name, safe="")  # one path segment: "/" as %2F, as the contract lets clients send it


def _path(path: str) -> str:
    return quote(path, safe="/")


pass_ctx = click.make_pass_decorator(Context)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(programs.version(), "--version", prog_name="secrets", message="%(prog)s %(version)s")
@click.option("-o", "--output", "fmt", type=click.Choice(output.FORMATS), default="table", show_default=True,
              envvar="SECRETS_OUTPUT", help="how results are printed")
@click.option("--url", envvar="SECRETS_URL", help="base URL of every service (one origin behind a proxy)")
@click.option("--auth-url", envvar="SECRETS_AUTH_URL", help="the token issuer's base URL")
@click.option("--vault-url", envvar="SECRETS_VAULT_URL", help="the Vault's base URL")
@click.option("--sm-url", envvar="SECRETS_SM_URL", help="the Secrets Manager's base URL")
@click.pass_context
def cli(ctx, fmt, url, auth_url, vault_url, sm_url):
    """Shared and personal secrets, their versions, and account checkouts."""
    ctx.obj = Context(fmt, url, {"auth": auth_url, "vault": vault_url, "sm": sm_url})


# --------------------------------------------------------------------------- login


@cli.command()
@click.option("--client-id", required=True, help="the OAuth client (sent in HTTP Basic)")
@click.option("--client-secret", required=True, help="its secret: VALUE, @FILE or -")
@click.option("--username", help="an API client: password grant (without it: client credentials)")
@click.option("--password", help="the API client's secret: VALUE, @FILE or - (asked for when missing)")
@click.option("--scope", help="ask for fewer scopes (space separated)")
@pass_ctx
def login(ctx, client_id, client_secret, username, password, scope):
    """Get a token and cache it (mode 0600) in the user's config folder."""
    client_secret = values.read_value(client_secret, "Client secret")
    if username and password is None:
        password = click.prompt("Password", hide_input=True, err=True)
    elif password is not None:
        password = values.read_value(password, "Password")
    token = session.login(ctx.endpoints, client_id=client_id, client_secret=client_secret, username=username,
                          password=password, scope=scope)
    path = session.save(token)
    ctx.emit({"token_file": str(path), "scope": token["scope"], "expires_at": _time(token["expires_at"])})


@cli.command()
@pass_ctx
def whoami(ctx):
    """Who the token says you are: your id, scopes and roles (from the token; the services check it)."""
    claims = _token_claims(session.bearer_token())
    roles = [{"id": r.get("id"), "name": r.get("name")} for r in claims.get("roles") or [] if isinstance(r, dict)]
    result = {"id": claims.get("sub"), "name": claims.get("name"), "email": claims.get("email"),
              "scopes": (claims.get("scope") or "").split(), "roles": roles,
              "expires_at": _time(claims["exp"]) if isinstance(claims.get("exp"), (int, float)) else None}
    if ctx.format == "table":  # one line a field, for people
        result = {**result, "scopes": " ".join(result["scopes"]),
                  "roles": ", ".join(f"{r['name']} ({r['id']})" for r in roles) or "(none)"}
    ctx.emit(result)


@cli.command()
@click.argument("keywords", nargs=-1)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=100, show_default=True)
@pass_ctx
def roles(ctx, keywords, offset, limit):
    """The roles the Vault knows (ids and names), by name; KEYWORDS narrow them (id or name)."""
    result = ctx.client.call("vault", "GET", "/roles", params={"keywords": " ".join(keywords), "offset": offset,
                                                                "limit": limit})
    ctx.emit(result, ("name", "id"))


@cli.command()
@pass_ctx
def logout(ctx):
    """Forget the cached token."""
    ctx.emit({"forgotten": session.forget()})


# --------------------------------------------------------------------------- secrets


@cli.command()
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), help="this version (versioned API)")
@click.option("--field", help="print only this key of the data, as is")
@PERSONAL
@USER
@pass_ctx
def get(ctx, name, version, field, personal, user_id):
    """Read a secret (data and metadata)."""
    if version is not None:
        if personal or user_id:
            raise CliError("--version reads shared secrets only (the versioned API)", session.EXIT_USAGE)
        result = ctx.client.call("vault", "GET", f"/secret/data/{_path(name)}", params={"version": version})
    else:
        result = ctx.client.call("vault", "GET", f"{ctx.secrets_path(personal, user_id)}/{_name(name)}")
    if field is not None:
        data = result.get("data") or {}
        if field not in data:
            raise CliError(f"the secret has no key {field!r}", session.EXIT_NOT_FOUND)
        value = data[field]
        click.echo(value if isinstance(value, str) else json.dumps(value))
        return
    ctx.emit(result)


def _access_options(command):
    """The options of a command that sets a secret's roles: --read-role, --write-role,
    --allow-unknown-role, --personal, --user."""
    for option in reversed((ROLE, WRITE_ROLE, UNKNOWN_ROLE, PERSONAL, USER)):
        command = option(command)
    return command


@cli.command()
@click.argument("name")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--data", help="the whole data as a JSON object: JSON, @FILE or -")
@_access_options
@version_commands.write_options
@pass_ctx
def put(ctx, name, pairs, data, read_roles, write_roles, allow_unknown_role, personal, user_id, generate, description):
    """Create a secret, or store a new version of it, with exactly this data."""
    body = values.data_from(pairs, data)
    roles = _roles_body(ctx, read_roles, write_roles, allow_unknown_role)
    if generate or description is not None:
        version_commands.refuse_personal(personal, user_id)
        ctx.emit(version_commands.put_versioned(ctx, name, body, generate=generate, description=description,
                                                roles=roles))
        return
    if not body:
        raise CliError("no data: give KEY=VALUE pairs or --data", session.EXIT_USAGE)
    ctx.emit(_write(ctx, name, body, roles, ctx.secrets_path(personal, user_id)))


@cli.command("set-roles")
@click.argument("name")
@_access_options
@pass_ctx
def set_roles(ctx, name, read_roles, write_roles, allow_unknown_role, personal, user_id):
    """Give a secret exactly these read and write roles, its data unchanged (no new version).

    An admin (or vaultManage) may do this to any secret without holding its roles: so a secret
    whose roles nobody holds can always be repaired."""
    if not read_roles and not write_roles:
        raise CliError("no roles: give --read-role and/or --write-role", session.EXIT_USAGE)
    body = _roles_body(ctx, read_roles, write_roles, allow_unknown_role)
    ctx.client.call("vault", "PUT", f"{ctx.secrets_path(personal, user_id)}/{_name(name)}", body=body)
    ctx.emit({"name": name, **{key: [r["id"] for r in roles] for key, roles in body.items()}})


def _roles_body(ctx, read_roles, write_roles, allow_unknown: bool) -> dict:
    """`read_roles` and `write_roles` as a request sends them, for those given."""
    body = {}
    for key, given in (("read_roles", read_roles), ("write_roles", write_roles)):
        if given:
            body[key] = [{"id": _role_id(ctx, role, allow_unknown)} for role in given]
    return body


def _role_id(ctx, given: str, allow_unknown: bool) -> str:
    """The id of the role `given` names (its id, else its name, as the Vault knows them).

    The API takes any role id (the contract: roles come from the identity provider), so a typo
    would make the secret unreadable to everyone; the command line asks the Vault first."""
    known = ctx.client.call("vault", "GET", "/roles", params={"keywords": given, "limit": 100})["items"]
    for match in ([r for r in known if r["id"] == given], [r for r in known if r["name"] == given],
                  [r for r in known if r["name"].lower() == given.lower()]):
        if len(match) == 1:
            return match[0]["id"]
        if len(match) > 1:
            ids = ", ".join(r["id"] for r in match)
            raise CliError(f"{given!r} names several roles ({ids}): give the id", session.EXIT_USAGE)
    if allow_unknown:
        return given
    raise CliError(f"the Vault knows no role {given!r} (neither id nor name; `secrets roles` lists them): give "
                   "--allow-unknown-role to use the id anyway", session.EXIT_USAGE)


@cli.command()
@click.argument("name")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", multiple=True, metavar="KEY", help="drop this key (repeatable)")
@PERSONAL
@USER
@pass_ctx
def patch(ctx, name, pairs, remove, personal, user_id):
    """Change some keys of a secret's data, keeping the others (a new version)."""
    base = ctx.secrets_path(personal, user_id)
    current = ctx.client.call("vault", "GET", f"{base}/{_name(name)}")
    data = {**(current.get("data") or {}), **values.data_from(pairs, None)}
    for key in remove:
        data.pop(key, None)
    ctx.client.call("vault", "PUT", f"{base}/{_name(name)}", body={"data": data})
    ctx.emit({"name": name, "keys": sorted(data)})


def _write(ctx, name, body, roles: dict, base) -> dict:
    try:
        ctx.client.call("vault", "POST", base, body={"name": name, "data": body, **roles})
        return {"name": name, "created": True}
    except CliError as exc:
        if exc.exit_code != session.EXIT_CONFLICT:
            raise
    ctx.client.call("vault", "PUT", f"{base}/{_name(name)}", body={"data": body, **roles})
    return {"name": name, "created": False}


@cli.command("list")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@PERSONAL
@USER
@pass_ctx
def list_secrets(ctx, offset, limit, personal, user_id):
    """List secrets you can see (without their data)."""
    result = ctx.client.call("vault", "GET", ctx.secrets_path(personal, user_id),
                             params={"offset": offset, "limit": limit})
    for item in result.get("items", []):
        item.pop("data", None)
    ctx.emit(result, SECRET_COLUMNS)


@cli.command()
@click.argument("keywords", nargs=-1)
@click.option("--filter", "filter_", type=click.Choice(["personal", "shared", "readable", "writable", "accessible"]))
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@pass_ctx
def search(ctx, keywords, filter_, offset, limit):
    """Find secrets whose names hold every keyword."""
    body = {"keywords": " ".join(keywords), **({"filter": filter_} if filter_ else {})}
    result = ctx.client.call("vault", "POST", "/search/secrets", params={"offset": offset, "limit": limit}, body=body)
    ctx.emit(result, SECRET_COLUMNS)


@cli.command()
@click.argument("name")
@PERSONAL
@USER
@YES
@pass_ctx
def delete(ctx, name, personal, user_id, yes):
    """Delete a secret with every version (asks first, unless --yes)."""
    values.confirm(f"Delete the secret {name!r} and every version of it?", yes)
    ctx.client.call("vault", "DELETE", f"{ctx.secrets_path(personal, user_id)}/{_name(name)}")
    ctx.emit({"name": name, "deleted": True})


# --------------------------------------------------------------------------- versions


@cli.group()
def versions():
    """The versions of a shared secret (the versioned API)."""


@versions.command("history")
@click.argument("name")
@pass_ctx
def versions_history(ctx, name):
    """Every version, newest first."""
    result = ctx.client.call("vault", "GET", f"/secret/metadata/{_path(name)}")
    newest_first = sorted(result["versions"], key=lambda v: v["version"], reverse=True)
    ctx.emit({"items": newest_first}, ("version", "created", "created_by", "deletion_time", "destroyed"))


@versions.command("get")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@pass_ctx
def versions_get(ctx, name, version):
    """One version's data."""
    ctx.emit(ctx.client.call("vault", "GET", f"/secret/data/{_path(name)}", params={"version": version}))


@versions.command("metadata")
@click.argument("name")
@pass_ctx
def versions_metadata(ctx, name):
    """The secret's settings: current version, max_versions, delete_version_after, custom_metadata."""
    ctx.emit(ctx.client.call("vault", "GET", f"/secret/metadata/{_path(name)}")["metadata"])


def _change_versions(action: str, summary: str, *, confirm: bool = False):
    @click.argument("name")
    @click.argument("numbers", nargs=-1, required=True, type=click.IntRange(min=1), metavar="VERSION...")
    @pass_ctx
    def command(ctx, name, numbers, yes=True):
        values.confirm(f"Destroy version(s) {', '.join(map(str, numbers))} of {name!r} for good?", yes)
        ctx.client.call("vault", "POST", f"/secret/{action}/{_path(name)}", body={"versions": list(numbers)})
        ctx.emit({"name": name, action: list(numbers)})

    command.__doc__ = summary
    if confirm:
        command = YES(command)
    versions.command(action)(command)


_change_versions("delete", "Soft-delete versions (undelete brings them back).")
_change_versions("undelete", "Restore soft-deleted versions.")
_change_versions("destroy", "Destroy versions for good (asks first, unless --yes).", confirm=True)
for _command in version_commands.COMMANDS:
    versions.add_command(_command)


# --------------------------------------------------------------------------- account checkouts


CHECKOUT_COLUMNS = ("id", "path", "username", "expires")


@cli.command()
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@pass_ctx
def accounts(ctx, offset, limit):
    """Account secrets you may check out."""
    result = ctx.client.call("sm", "GET", "/secrets", params={"offset": offset, "limit": limit})
    ctx.emit(result, ("path", "type", "username"))


@cli.group()
def checkouts():
    """Your checkouts of account passwords."""


@checkouts.command("list")
@pass_ctx
def checkouts_list(ctx):
    """Your live checkouts (without passwords)."""
    result = ctx.client.call("sm", "GET", "/secrets/checkouts")
    for item in result.get("items", []):
        item.pop("secrets", None)
    ctx.emit(result, CHECKOUT_COLUMNS)


FIELD = click.option("--field", type=click.Choice(["password", "id"]), help="print only this, as is")


@checkouts.command("create")
@click.argument("path")
@FIELD
@pass_ctx
def checkouts_create(ctx, path, field):
    """Check out an account (PATH as `secrets accounts` lists it): its password until it expires."""
    result = ctx.client.call("sm", "POST", "/secrets/checkouts", body={"path": path})
    _emit_checkout(ctx, result["items"][0], field)


cli.add_command(checkouts_create, "checkout")  # `secrets checkout PATH`, the everyday verb


@checkouts.command("show")
@click.argument("checkout_id")
@FIELD
@pass_ctx
def checkouts_show(ctx, checkout_id, field):
    """One of your checkouts, with its password."""
    _emit_checkout(ctx, ctx.client.call("sm", "GET", f"/secrets/checkouts/{_name(checkout_id)}"), field)


@checkouts.command("release")
@click.argument("checkout_id")
@pass_ctx
def checkouts_release(ctx, checkout_id):
    """Give the password back (it may be rotated once nobody holds it)."""
    ctx.client.call("sm", "POST", f"/secrets/checkouts/{_name(checkout_id)}/release")
    ctx.emit({"id": checkout_id, "released": True})


def _emit_checkout(ctx, checkout: dict, field: str | None) -> None:
    password = checkout["secrets"][0]["secret"] if checkout.get("secrets") else None
    if field:
        click.echo(password if field == "password" else checkout["id"])
    elif ctx.format == "table":
        ctx.emit({**{k: checkout.get(k) for k in CHECKOUT_COLUMNS}, "password": password})
    else:
        ctx.emit(checkout)


cli.add_command(acl_commands.policy)  # `secrets policy ...`: ACL policies (common/cli/acl_commands.py)
cli.add_command(acl_commands.group)  # `secrets group ...`: the groups that bind them to roles
cli.add_command(workflow_commands.requests)  # `secrets requests ...`: ask for a role, decide (common/cli/workflow_commands.py)
cli.add_command(workflow_commands.workflows)  # `secrets workflows ...`: who approves which role requests


# --------------------------------------------------------------------------- completion


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script: eval "$(secrets completion bash)"."""
    click.echo(get_completion_class(shell)(cli, {}, "secrets", "_SECRETS_COMPLETE").source())


def main() -> None:
    """Every error is one line on stderr (click's usage errors too) and an exit code."""
    try:
        code = cli.main(prog_name="secrets", standalone_mode=False)
    except click.ClickException as exc:  # ours (CliError) and click's usage errors
        click.echo(f"secrets: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except click.Abort:  # Ctrl-C at a prompt
        click.echo("secrets: aborted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("secrets: interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
