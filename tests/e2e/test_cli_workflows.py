"""The README's just-in-time access example against `make run`: its demo workflow (demo-jit), alice
(operators) asks for jit-operators from the command line, bob (approvers) approves it."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.suite import ok, one_line_error

pytestmark = pytest.mark.slow
JIT_ROLE = "00000000-0000-4000-8000-000000000005"  # jit-operators (common/devtools/devstack.py)
# The dev issuer's roles (common/devtools/issuer/default_clients.json): alice's, bob's and admin's.
OPERATORS_ROLE, APPROVERS_ROLE, ADMIN_ROLE = ("00000000-0000-4000-8000-000000000002",
                                              "00000000-0000-4000-8000-000000000004",
                                              "00000000-0000-4000-8000-000000000001")


def _login(shell, tmp_path, user: str, password: str) -> dict:
    env = {"XDG_CONFIG_HOME": str(tmp_path / user)}
    ok(shell("login", "--client-id", "privx-external", "--client-secret", "dev-oauth-secret", "--username", user,
             "--password", "-", stdin=password + "\n", extra_env=env))
    return env


def test_alice_asks_and_bob_approves(shell, tmp_path):
    alice = _login(shell, tmp_path, "alice", "dev-alice-secret")
    bob = _login(shell, tmp_path, "bob", "dev-bob-secret")
    workflows = json.loads(ok(shell("-o", "json", "workflows", "list", extra_env=alice)))
    assert [w["name"] for w in workflows["items"]] == ["demo-jit"]
    made = {"id": ok(shell("requests", "create", JIT_ROLE, "--hours", "1", "--justification", "deploy",
                           "--field", "id", extra_env=alice)).strip()}
    assert "own request" in one_line_error(shell("requests", "approve", made["id"], extra_env=alice), 4)
    pending = json.loads(ok(shell("-o", "json", "requests", "list", "--filter", "active_approvals", extra_env=bob)))
    assert made["id"] in [r["id"] for r in pending["items"]]
    assert made["id"] in ok(shell("requests", "list", "--filter", "approvals", extra_env=bob))  # the table too
    ok(shell("requests", "approve", made["id"], "--comment", "ok", extra_env=bob))
    shown = json.loads(ok(shell("-o", "json", "requests", "show", made["id"], extra_env=alice)))
    assert shown["status"] == "APPROVED" and shown["steps"][0]["approvers"][0]["user"]["display_name"] == "Bob Approver"
    ok(shell("requests", "revoke", made["id"], extra_env=bob))
    assert json.loads(ok(shell("-o", "json", "requests", "show", made["id"], extra_env=alice)))["target_role_revoked"]


def test_the_server_alone_says_which_step_is_current(shell, tmp_path):
    """Two steps (approvers, then privx-admin): the CLI offers steps and the server's rule takes
    the current one; a step given with --step that is not current is the server's refusal."""
    admin = _login(shell, tmp_path, "admin", "dev-admin-secret")
    alice = _login(shell, tmp_path, "alice", "dev-alice-secret")
    bob = _login(shell, tmp_path, "bob", "dev-bob-secret")
    target = str(uuid.uuid4())
    ok(shell("workflows", "create", f"two-steps-{target[:8]}", "--target-role", target, "--requester-role",
             OPERATORS_ROLE, "--step", f"ANY:{APPROVERS_ROLE}", "--step", f"ANY:{ADMIN_ROLE}", extra_env=admin))
    request_id = ok(shell("requests", "create", target, "--field", "id", extra_env=alice)).strip()
    refused = one_line_error(shell("requests", "approve", request_id, "--step", "1", extra_env=bob), 2)
    assert "step 0 is the current step, not 1" in refused
    assert json.loads(ok(shell("-o", "json", "requests", "approve", request_id, extra_env=bob)))["step"] == 0
    # Step 0 is approved now: the server refuses it, and takes step 1 from privx-admin.
    assert json.loads(ok(shell("-o", "json", "requests", "approve", request_id, extra_env=admin)))["step"] == 1
    shown = json.loads(ok(shell("-o", "json", "requests", "show", request_id, extra_env=alice)))
    assert shown["status"] == "APPROVED"
    assert [[a["decision"] for a in step["approvers"]] for step in shown["steps"]] == [["APPROVED"], ["APPROVED"]]
