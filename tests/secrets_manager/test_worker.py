"""The worker: checkout expiry, queued, scheduled and retried rotations, against real targets."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from secrets_manager_service import worker
from tests import support
from tests.sm_rotation import pg_target

pytestmark = pytest.mark.slow


def _db_row(sm_config, query: str, *params):
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        return conn.execute(query, params).fetchone()


def _queued(sm_config, host_id: str, account: str) -> bool:
    return _db_row(sm_config, """SELECT count(*) FROM sm_rotations r JOIN sm_accounts a ON a.id = r.account_id
                                  WHERE a.host_id = %s AND a.account = %s""", host_id, account)[0] == 1


def test_an_expired_checkout_ends_without_the_worker(sm, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(max_concurrent_checkouts=1, max_checkout_duration="PT1S"), roles=[role])
    first_user, second_user = (tokens.headers("user", roles=[role]) for _ in range(2))
    checkout = sm.checkout(f"hosts/{host_id}/root", first_user)
    assert sm.post("/secrets/checkouts", headers=second_user, json={"path": f"hosts/{host_id}/root"}).status_code == 409
    time.sleep(1.2)
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=first_user).status_code == 404
    assert sm.get("/secrets/checkouts", headers=first_user).get_json()["count"] == 0
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=first_user).status_code == 404
    assert sm.post("/secrets/checkouts", headers=second_user, json={"path": f"hosts/{host_id}/root"}).status_code == 200


def test_worker_marks_expiry_and_rotates_after_the_last_checkout(sm, vault_reader, tokens, sm_config):
    role = support.new_role()
    policy = sm.policy(max_checkout_duration="PT1S", rotate_on_release=True)
    host_id = sm.host(policy, accounts={"root": "expiring"}, roles=[role])
    checkout = sm.checkout(f"hosts/{host_id}/root", tokens.headers("user", roles=[role]))
    time.sleep(1.2)
    result = sm.run_worker()
    assert result.expired >= 1 and result.rotated >= 1
    assert _db_row(sm_config, "SELECT ended FROM sm_checkouts WHERE id = %s", checkout["id"])[0] is not None
    assert vault_reader.newest(f"hosts/{host_id}/root") not in (None, "expiring")
    assert sm.account(host_id, "root")["last_rotated"] is not None


def test_release_rotation_waits_while_someone_else_holds_it(sm, vault_reader, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(rotate_on_release=True), accounts={"root": "shared"}, roles=[role])
    path = f"hosts/{host_id}/root"
    alice, bob = (tokens.headers("user", roles=[role]) for _ in range(2))
    alices = sm.checkout(path, alice)
    bobs = sm.checkout(path, bob)
    sm.post(f"/secrets/checkouts/{alices['id']}/release", headers=alice)
    sm.run_worker()
    assert vault_reader.newest(path) == "shared"  # Bob still holds it
    sm.post(f"/secrets/checkouts/{bobs['id']}/release", headers=bob)
    # Released, then checked out again before the worker came by: the rotation is dropped.
    carols = sm.checkout(path, tokens.headers("user", roles=[role]))
    sm.run_worker()
    assert vault_reader.newest(path) == "shared"
    assert sm.get(f"/secrets/checkouts/{carols['id']}").get_json()["secrets"][0]["secret"] == "shared"


def test_scheduled_rotation(sm, vault_reader):
    host_id = sm.host(sm.policy(rotation_interval="PT1S"), accounts={"root": "stale"})
    time.sleep(1.2)
    sm.run_worker()
    assert vault_reader.newest(f"hosts/{host_id}/root") not in (None, "stale")
    sm.delete(f"/host-secret/{host_id}")  # so later passes do not keep rotating it


def _pg_host(sm, policy_id, target, role, *, port, host_id=None, accounts=None, **metadata):
    return sm.host(policy_id, host_id=host_id, protocol="POSTGRESQL", address=target["host"], port=port,
                   accounts=accounts if accounts is not None else {role: None}, **metadata)


def test_failed_rotation_is_recorded_and_retried_until_the_target_takes_it(sm, vault_reader, target, sm_config):
    initial = "initial-" + secrets.token_urlsafe(12)
    role = target["new_role"](initial)
    policy = sm.policy(number_of_retries=3, retry_interval="PT1S", verify_after_rotation=True)
    closed_port = support.free_port()
    host_id = _pg_host(sm, policy, target, role, port=closed_port, accounts={role: initial})
    path = f"hosts/{host_id}/{role}"

    sm.post(f"/rotate/{host_id}/{role}")
    assert sm.run_worker().failed >= 1
    account = sm.account(host_id, role)
    # A target that is down is not one that refused (issue 11): the details say which.
    assert account["last_error"].endswith("Z")
    assert account["last_error_details"] == "the target could not be reached; the password was not changed (connection refused)"
    assert account["last_rotated"] is None
    assert initial not in str(account)
    # Written ahead, then destroyed once the target was known not to have it.
    assert vault_reader.newest(path) == initial
    assert [(v["version"], v["destroyed"]) for v in vault_reader.versions(path)] == [(1, False), (2, True)]
    assert _queued(sm_config, host_id, role)

    # Fix the host's port: the stored password was set for the old endpoint, so the retry sends
    # it nowhere (credential binding) until it is given again for the new one.
    _pg_host(sm, policy, target, role, port=target["port"], host_id=host_id)
    time.sleep(1.2)
    assert sm.run_worker().failed >= 1
    assert sm.account(host_id, role)["last_error_details"].startswith(
        "the password was not changed: the stored passwords are not bound to the target's endpoint")
    # Given again with the fixed port: the queued retry then goes through.
    _pg_host(sm, policy, target, role, port=target["port"], host_id=host_id, accounts={role: initial})
    time.sleep(1.2)
    assert sm.run_worker().rotated >= 1
    account = sm.account(host_id, role)
    assert account["last_error"] is None and account["last_error_details"] is None
    assert account["last_rotated"] is not None
    new_password = vault_reader.newest(path)
    assert new_password != initial
    assert pg_target.can_login(target["host"], target["port"], role, new_password)
    assert not pg_target.can_login(target["host"], target["port"], role, initial)
    assert not _queued(sm_config, host_id, role)


def test_retries_run_out(sm, vault_reader, target, sm_config):
    role = target["new_role"]("never-changed")
    policy = sm.policy(number_of_retries=1, retry_interval="PT0S")
    host_id = _pg_host(sm, policy, target, role, port=support.free_port(), accounts={role: "wrong-password"})
    sm.post(f"/rotate/{host_id}/{role}")
    result = sm.run_worker()
    assert result.failed >= 2  # the first try and its one retry
    assert not _queued(sm_config, host_id, role)
    given_up = _db_row(sm_config, "SELECT rotation_given_up FROM sm_accounts WHERE host_id = %s", host_id)[0]
    assert given_up is not None
    assert sm.account(host_id, role)["last_error"]
    # A manual request starts over.
    sm.post(f"/rotate/{host_id}/{role}")
    assert _queued(sm_config, host_id, role)
    sm.delete(f"/host-secret/{host_id}")


def test_rotation_through_the_main_account(sm, vault_reader, target):
    role = target["new_role"]("unknown-to-us")
    accounts = {target["superuser"]: target["superpassword"], role: None}
    host_id = _pg_host(sm, sm.policy(verify_after_rotation=True), target, role, port=target["port"],
                       accounts=accounts, use_main_account=True, main_account=target["superuser"])
    sm.post(f"/rotate/{host_id}/{role}")
    sm.run_worker()
    new_password = vault_reader.newest(f"hosts/{host_id}/{role}")
    assert new_password and pg_target.can_login(target["host"], target["port"], role, new_password)
    assert vault_reader.newest(f"hosts/{host_id}/{target['superuser']}") == target["superpassword"]
    assert sm.account(host_id, role)["last_error"] is None


def test_wrong_old_password_is_an_authentication_failure(sm, vault_reader, target):
    role = target["new_role"]("the-real-one")
    host_id = _pg_host(sm, sm.policy(number_of_retries=0), target, role, port=target["port"],
                       accounts={role: "a-stale-one"})
    sm.post(f"/rotate/{host_id}/{role}")
    sm.run_worker()
    account = sm.account(host_id, role)
    assert account["last_error_details"] == "the target refused the new password; the password was not changed (authentication failed)"
    assert vault_reader.newest(f"hosts/{host_id}/{role}") == "a-stale-one"
    assert "a-stale-one" not in str(account) and "the-real-one" not in str(account)


def test_main_migrate_and_once_read_the_environment(sm_config, monkeypatch):
    for key, value in sm_config.items():
        monkeypatch.setenv(key, str(value))
    assert worker.main(["migrate"]) == 0
    assert worker.main(["run", "--once"]) == 0
    assert worker.main(["--once"], config={"VAULT_URL": sm_config["VAULT_URL"]}) == 0


def test_the_worker_stops_at_start_when_the_database_is_down(sm_config, capsys):
    config = {**sm_config, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{support.free_port()}/none",
              "DB_POOL_TIMEOUT_SECONDS": 1.0}
    with pytest.raises(SystemExit) as stopped:
        worker.main(["--once"], config=config)
    assert stopped.value.code == 1
    assert "(connection refused)" in capsys.readouterr().err


def test_sigterm_stops_the_loop_cleanly(sm_config):
    # Its metrics listener opens just before the loop: once it listens, the worker is running
    # (a fixed sleep was too short on a loaded machine, where the imports alone take seconds).
    port = support.free_port()
    env = {**os.environ, **{key: str(value) for key, value in sm_config.items()}, "SM_WORKER_METRICS_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "secrets_manager_service.worker", "run", "--interval", "0.2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        support.wait_until_listening(port, process, timeout=120)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_ssh_rotation_runs_the_hosts_script_template(sm, vault_reader, tmp_path):
    from tests.sm_rotation.ssh_server import fake_ssh_host

    template = sm.post("/script-template", json={"name": support.unique("chpasswd"), "operating_system": "LINUX",
                                                 "script": "echo {{ .Username }}:{{ .Password }} | chpasswd\n"})
    with fake_ssh_host(tmp_path, {"alice": "alice-old"}) as ssh:
        host_id = sm.host(sm.policy(verify_after_rotation=True), protocol="SSH", address=ssh.address, port=ssh.port,
                          script_template_id=template.get_json()["id"], certificate_validation_options="DISABLED",
                          accounts={"alice": "alice-old"})
        sm.post(f"/rotate/{host_id}/alice")
        sm.run_worker()
        new_password = vault_reader.newest(f"hosts/{host_id}/alice")
        assert new_password != "alice-old" and ssh.passwords["alice"] == new_password
        assert sm.account(host_id, "alice")["last_error"] is None
