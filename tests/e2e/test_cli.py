"""The `secrets` command line against the running suite (`make run`: real issuer, Vault,
Secrets Manager), as a user's shell runs it: its own config folder, values from files and
standard input, exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest
import yaml

from tests.e2e.suite import ok, one_line_error
from tests.support import free_port, unique

pytestmark = pytest.mark.slow
ADMIN_ROLE = "00000000-0000-4000-8000-000000000001"  # the dev admin's role (common/devtools/issuer/default_clients.json)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_version_help_and_completion(shell):
    assert ok(shell("--version")).startswith("secrets ")
    assert "Exit codes:" in ok(shell("--help"))
    assert "_SECRETS_COMPLETE" in ok(shell("completion", "bash"))


def test_before_login_a_command_says_so_and_exits_3(shell, tmp_path):
    line = one_line_error(shell("get", "x", extra_env={"XDG_CONFIG_HOME": str(tmp_path)}), 3)
    assert "not logged in" in line


def test_a_refused_login_is_one_line(shell, tmp_path):
    result = shell("login", "--client-id", "privx-external", "--client-secret", "dev-oauth-secret",
                   "--username", "admin", "--password", "wrong", extra_env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert "login refused (400)" in one_line_error(result, 3)
    assert not list(tmp_path.rglob("token.json"))


def test_the_token_is_cached_for_this_user_only(logged_in):
    (token_file,) = list((logged_in.home / "config").rglob("token.json"))
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


def test_shared_secret_lifecycle(logged_in):
    cli = logged_in
    name = unique("cli/db")
    (cli.home / "pw.txt").write_text("from-a-file\n")
    created = json.loads(ok(cli("-o", "json", "put", name, "user=app", "password=@pw.txt",
                                "--read-role", ADMIN_ROLE, "--write-role", ADMIN_ROLE)))
    assert created == {"name": name, "created": True}
    assert ok(cli("get", name, "--field", "password")) == "from-a-file\n"
    assert json.loads(ok(cli("-o", "json", "get", name)))["data"] == {"user": "app", "password": "from-a-file"}

    ok(cli("put", name, "user=app", "password=-", stdin="from-stdin\n"))  # a new version, same roles
    assert ok(cli("get", name, "--field", "password")) == "from-stdin\n"
    assert json.loads(ok(cli("-o", "json", "patch", name, "port=5432", "--remove", "user")))["keys"] == ["password",
                                                                                                         "port"]
    assert yaml.safe_load(ok(cli("-o", "yaml", "get", name)))["data"] == {"password": "from-stdin", "port": "5432"}

    listing = json.loads(ok(cli("-o", "json", "list", "--limit", "100")))
    assert name in [item["name"] for item in listing["items"]] and "data" not in listing["items"][0]
    assert name in ok(cli("list", "--limit", "100"))  # the table
    found = json.loads(ok(cli("-o", "json", "search", name.split("-")[-1])))
    assert [item["name"] for item in found["items"]] == [name]

    # A delete asks first; without a terminal to ask at (a pipe, a script) it needs --yes.
    assert "give --yes" in one_line_error(cli("delete", name, stdin=""), 2)
    assert ok(cli("get", name, "--field", "password")) == "from-stdin\n"
    ok(cli("delete", name, "--yes"))
    assert "404 " in one_line_error(cli("get", name), 5)


def test_versions(logged_in, suite):
    cli = logged_in
    name = unique("cli/versions")
    for value in ("one", "two", "three"):
        ok(cli("put", name, f"v={value}", "--read-role", ADMIN_ROLE, "--write-role", ADMIN_ROLE))
    history = json.loads(ok(cli("-o", "json", "versions", "history", name)))["items"]
    assert [v["version"] for v in history] == [3, 2, 1]
    assert json.loads(ok(cli("-o", "json", "versions", "metadata", name)))["current_version"] == 3

    # Reading by version is the versioned API's, which wants the `service` scope: the 403 says so.
    line = one_line_error(cli("get", name, "--version", "1"), 4)
    assert "403 " in line and "service" in line
    as_admin = {"SECRETS_TOKEN": suite.token}  # the admin token `make run` prints has that scope
    assert json.loads(ok(cli("-o", "json", "get", name, "--version", "1", extra_env=as_admin)))["data"] == {"v": "one"}
    ok(cli("versions", "delete", name, "2"))
    assert "404 " in one_line_error(cli("versions", "get", name, "2", extra_env=as_admin), 5)
    ok(cli("versions", "undelete", name, "2"))
    assert json.loads(ok(cli("-o", "json", "versions", "get", name, "2", extra_env=as_admin)))["data"] == {"v": "two"}
    assert "give --yes" in one_line_error(cli("versions", "destroy", name, "1", extra_env=as_admin), 2)
    ok(cli("versions", "destroy", name, "1", "--yes", extra_env=as_admin))
    assert [v["destroyed"] for v in json.loads(ok(cli("-o", "json", "versions", "history", name)))["items"]] == [
        False, False, True]
    ok(cli("delete", name, "--yes"))


def test_personal_secrets(logged_in):
    cli = logged_in
    name = unique("mine")
    ok(cli("put", "--personal", name, "token=-", stdin="personal-value"))
    assert ok(cli("get", "--personal", name, "--field", "token")) == "personal-value\n"
    assert name in [i["name"] for i in json.loads(ok(cli("-o", "json", "list", "--personal")))["items"]]
    ok(cli("delete", "--personal", name, "--yes"))
    one_line_error(cli("get", "--personal", name), 5)


def test_account_checkout(logged_in, suite):
    cli = logged_in
    accounts = json.loads(ok(cli("-o", "json", "accounts")))
    assert suite.demo_path in [item["path"] for item in accounts["items"]]
    checkout_id = ok(cli("checkout", suite.demo_path, "--field", "id")).strip()
    password = ok(cli("checkouts", "show", checkout_id, "--field", "password")).strip()
    assert password
    assert checkout_id in [c["id"] for c in json.loads(ok(cli("-o", "json", "checkouts", "list")))["items"]]
    table = ok(cli("checkouts", "show", checkout_id))
    assert password in table and suite.demo_path in table
    ok(cli("checkouts", "release", checkout_id))
    assert checkout_id not in [c["id"] for c in json.loads(ok(cli("-o", "json", "checkouts", "list")))["items"]]


def test_errors_are_one_line_with_an_exit_code_a_script_can_use(logged_in):
    cli = logged_in
    assert "409 " not in one_line_error(cli("get", unique("absent")), 5)
    unreachable = {"SECRETS_VAULT_URL": f"http://127.0.0.1:{free_port()}"}
    line = one_line_error(cli("get", "x", extra_env=unreachable), 7)
    assert "cannot reach" in line and "Set SECRETS_VAULT_URL" in line  # what to change
    assert "not key=value" in one_line_error(cli("put", "x", "novalue"), 2)
    assert "No such command" in one_line_error(cli("nonsense"), 2)
    assert "400 " in one_line_error(cli("put", "bad//name", "a=b"), 2)


def test_whoami_shows_the_callers_id_scopes_and_roles(logged_in):
    me = json.loads(ok(logged_in("-o", "json", "whoami")))
    assert me["id"] and "vaultManage" in me["scopes"]
    assert {"id": ADMIN_ROLE, "name": "privx-admin"} in me["roles"]
    assert RFC3339.match(me["expires_at"])
    table = ok(logged_in("whoami"))
    assert f"privx-admin ({ADMIN_ROLE})" in table


def test_roles_lists_what_the_vault_knows_and_put_refuses_an_unknown_role(logged_in):
    cli = logged_in
    listing = json.loads(ok(cli("-o", "json", "roles", "privx")))
    assert {"id": ADMIN_ROLE, "name": "privx-admin"} in listing["items"]
    assert "privx-admin" in ok(cli("roles"))
    name = unique("cli/roles")
    # A role nobody was seen holding (a typo, or a literal placeholder) would make the secret
    # unreadable to everyone: refused, and nothing is written.
    line = one_line_error(cli("put", name, "a=b", "--read-role", "ROLE_ID"), 2)
    assert "the Vault knows no role 'ROLE_ID'" in line and "--allow-unknown-role" in line
    one_line_error(cli("get", name), 5)
    # By name, the role's id is what the Vault stores.
    ok(cli("put", name, "a=b", "--read-role", "privx-admin", "--write-role", "PRIVX-ADMIN"))
    secret = json.loads(ok(cli("-o", "json", "get", name)))
    assert [r["id"] for r in secret["read_roles"]] == [ADMIN_ROLE] == [r["id"] for r in secret["write_roles"]]
    # On purpose: an id the Vault has not seen yet; then the admin puts the right role back.
    unseen = "11111111-2222-4333-8444-000000000abc"
    ok(cli("put", name, "a=c", "--read-role", unseen, "--write-role", unseen, "--allow-unknown-role"))
    assert "403 " in one_line_error(cli("get", name), 4)  # no one holds it: not even its creator, an admin, reads it
    assert json.loads(ok(cli("-o", "json", "set-roles", name, "--read-role", "privx-admin", "--write-role",
                             "privx-admin"))) == {"name": name, "read_roles": [ADMIN_ROLE], "write_roles": [ADMIN_ROLE]}
    assert ok(cli("get", name, "--field", "a")) == "c\n"
    ok(cli("delete", name, "--yes"))


def test_login_prints_rfc3339_times(shell, tmp_path):
    out = ok(shell("-o", "json", "login", "--client-id", "privx-external", "--client-secret", "dev-oauth-secret",
                   extra_env={"XDG_CONFIG_HOME": str(tmp_path)}))
    assert RFC3339.match(json.loads(out)["expires_at"])


def test_a_wrong_client_secret_says_so_in_plain_words(shell, tmp_path):
    result = shell("login", "--client-id", "privx-external", "--client-secret", "wrong",
                   extra_env={"XDG_CONFIG_HOME": str(tmp_path)})
    line = one_line_error(result, 3)
    assert "Wrong client secret" in line and "client_secret_basic" not in line


def test_a_password_from_a_terminal_is_not_echoed(shell, suite, tmp_path):
    """`--password -` on a terminal asks without echo (getpass), as `--password` left out does."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETS_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path),
               SECRETS_AUTH_URL=f"http://127.0.0.1:{suite.ports['ISSUER_PORT']}")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "common.cli.main", "-o", "json", "login", "--client-id",
                                "privx-external", "--client-secret", "dev-oauth-secret", "--username", "admin",
                                "--password", "-"], stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                               cwd=tmp_path, start_new_session=True)
    os.close(terminal)
    seen = b""
    try:
        while b"Password:" not in seen:
            seen += os.read(controller, 1024)
        os.write(controller, b"dev-admin-secret\n")
        while True:
            try:
                chunk = os.read(controller, 1024)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=30) == 0, seen
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert b"dev-admin-secret" not in seen and b"expires_at" in seen
    assert list(tmp_path.rglob("token.json"))


def test_client_credentials_login_and_logout(shell, tmp_path):
    own = {"XDG_CONFIG_HOME": str(tmp_path)}
    out = ok(shell("-o", "json", "login", "--client-id", "privx-external", "--client-secret", "-",
                   stdin="dev-oauth-secret", extra_env=own))
    assert json.loads(out)["scope"] == "admin"
    assert "items" in json.loads(ok(shell("-o", "json", "list", extra_env=own)))
    assert json.loads(ok(shell("-o", "json", "logout", extra_env=own))) == {"forgotten": True}
    assert "not logged in" in one_line_error(shell("list", extra_env=own), 3)


def test_policies_and_groups(logged_in, suite):
    """`secrets policy` and `secrets group` over the Vault's /v1 routes, as an admin."""
    shell = logged_in
    # make run wrote app-read and bound it to kv-readers.
    assert 'path "secret/data/app/*"' in ok(shell("policy", "read", "app-read"))
    assert "app-read" in ok(shell("policy", "list")).split()
    assert json.loads(ok(shell("-o", "json", "group", "read", "kv-readers")))["policies"] == ["app-read"]

    name, role = unique("cli-policy").lower(), unique("cli-role")
    (shell.home / "policy.hcl").write_text('path "secret/data/cli/*" {\n  capabilities = ["read"]\n}\n')
    ok(shell("policy", "write", name, "@policy.hcl"))
    assert ok(shell("policy", "read", name)) == 'path "secret/data/cli/*" {\n  capabilities = ["read"]\n}\n'
    created = json.loads(ok(shell("-o", "json", "group", "write", role, "--policy", name, "--metadata", "team=cli")))
    assert created["created"] is True and created["id"]
    assert json.loads(ok(shell("-o", "json", "group", "write", role, "--policy", name, "--policy", "app-read")))[
        "created"] is False
    group = json.loads(ok(shell("-o", "json", "group", "read", role)))
    assert group["policies"] == [name, "app-read"] and group["metadata"] == {"team": "cli"}
    assert role in json.loads(ok(shell("-o", "json", "group", "list")))
    ok(shell("group", "delete", role, "--yes"))
    assert "404" in one_line_error(shell("group", "read", role), 5)
    ok(shell("policy", "delete", name, "--yes"))
    assert name not in json.loads(ok(shell("-o", "json", "policy", "list")))

    # Mistakes: one line, the server's reason, the exit code of a bad request.
    bad = one_line_error(shell("policy", "write", name, 'path "secret/data/hosts/*" { capabilities = ["read"] }'), 2)
    assert "reserved" in bad
    assert "cannot delete \"default\" policy" in one_line_error(shell("policy", "delete", "default", "--yes"), 2)
