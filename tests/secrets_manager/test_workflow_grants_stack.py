"""Issue 21, point 3, the parts that need the Vault, through the real stack: the token issuer, the
Vault and the Secrets Manager under gunicorn, and the Secrets Manager's worker, the Secrets
Manager reaching the Vault through a link the tests can cut.

A user without the role gets 404 on the account and on the v1 secret; after a two-step approval
they check the account out and read the secret; a revoke ends the checkout (`checkout.revoke`,
by the worker's sweep, not at a next use) and the Vault read within 5 s; expiry ends a grant in
both services without any call (the link cut: no message can reach the Vault); a Vault outage
during a revoke delays its end in the Vault, which lands once the Vault is back, nothing lost.
Time limits are polled for, never slept: each check passes as soon as it holds."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import requests

from secrets_manager_service.workflows.grant_outbox import FIRST_USE_CHECK_SECONDS
from tests import support
from tests.secrets_manager.helpers import LiveSmApi
from tests.secrets_manager.workflow_helpers import WF, People, go_access_request, go_decision, go_workflow
from vault_service.grants.cache import REFRESH_SECONDS

pytestmark = pytest.mark.slow

END_WITHIN = 5.0  # seconds: the contract's bound on a grant's end in both services
V1 = "/vault/api/v1"


@pytest.fixture(scope="module")
def stack(db_server, sm_config, vault_url):
    """A Secrets Manager (gunicorn, 2 workers) and its worker on a database of their own, both
    reaching the session's Vault through a cuttable link."""
    link = support.TcpLink("127.0.0.1", int(vault_url.rsplit(":", 1)[1])).start()
    with support.fresh_database(db_server, "sm_grants") as database_url:
        env = {key: str(value) for key, value in sm_config.items()}
        env.update(DATABASE_URL=database_url, VAULT_URL=f"http://127.0.0.1:{link.port}", SM_WORKER_INTERVAL_SECONDS="5")
        subprocess.run([sys.executable, "-m", "secrets_manager_service.worker", "migrate"], env={**os.environ, **env},
                       check=True, capture_output=True, timeout=120)
        worker = subprocess.Popen([sys.executable, "-m", "secrets_manager_service.worker", "run"],
                                  env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with support.gunicorn("secrets_manager_service.wsgi:app", env, workers=2, health_path=WF + "/status") as base:
                yield {"base": base, "db": database_url, "link": link, "vault": vault_url, "worker": worker}
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            link.restore()


@pytest.fixture()
def world(stack, tokens):
    """People, a two-step workflow (ALL then ANY) over a role that a host account's access_roles
    and a v1 secret's read_roles name, and what each user sees of them."""
    people = People(tokens)
    sm = LiveSmApi(stack["base"], tokens)
    response = sm.post("/workflows", prefix=WF, json=go_workflow(
        requester_roles=[people.requester_role], target_roles=[people.target],
        steps=[("ALL", [people.a]), ("ANY", [people.b])], max_active_requests=10))
    assert response.status_code == 201, response.get_json()
    host_id = sm.host(sm.policy(), accounts={"root": "jit-password"}, roles=[people.target])
    secret = support.unique("jit")
    created = requests.post(f"{stack['vault']}{V1}/secrets", headers=tokens.headers("admin"), timeout=30, json={
        "name": secret, "data": {"password": "jit-secret"}, "read_roles": [people.target]})
    assert created.status_code == 201
    return {"people": people, "sm": sm, "path": f"hosts/{host_id}/root", "secret": secret}


def _vault_read(stack, world) -> int:
    return requests.get(f"{stack['vault']}{V1}/secrets/{world['secret']}", headers=world["people"].requester,
                        timeout=30).status_code


def _vault_says(stack, world, status: int) -> bool:
    """Every Vault process answers `status` (each re-reads the grants on its own: a few reads in a
    row reach both gunicorn workers)."""
    return all(_vault_read(stack, world) == status for _ in range(8))


def _granted_everywhere(stack, world) -> None:
    """The approved grant reaches the Vault within END_WITHIN, and then every Vault process.

    A read cannot choose its gunicorn worker: eight reads in a row may all reach the one that has
    reloaded, and a later read then meets another that has not yet (CI saw 404 there). Each
    process reloads at most REFRESH_SECONDS after the change, which is before the first read that
    shows it, so from REFRESH_SECONDS after that read every process answers 200."""
    _within(END_WITHIN, lambda: _vault_read(stack, world) == 200, "the Vault honours the approved grant")
    settled = time.monotonic() + REFRESH_SECONDS + 0.2
    _within(REFRESH_SECONDS + END_WITHIN, lambda: time.monotonic() >= settled and _vault_says(stack, world, 200),
            "every Vault process honours the approved grant")


def _within(seconds: float, check, what: str):
    """Poll `check` until it returns something true; its value, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def _approved(world, **fields) -> str:
    people, sm = world["people"], world["sm"]
    response = sm.post("/requests", prefix=WF, headers=people.requester, json=go_access_request(people.target, **fields))
    assert response.status_code == 201, response.get_json()
    request_id = response.get_json()["id"]
    assert sm.post(f"/requests/{request_id}/decision", prefix=WF, headers=people.approver_a,
                   json=go_decision(0, "APPROVED")).status_code == 200
    return request_id


def _approve_last_step(world, request_id: str) -> None:
    assert world["sm"].post(f"/requests/{request_id}/decision", prefix=WF, headers=world["people"].approver_b,
                            json=go_decision(1, "APPROVED")).status_code == 200


def _checkout(world) -> str:
    response = world["sm"].post("/secrets/checkouts", headers=world["people"].requester, json={"path": world["path"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["items"][0]["secrets"][0]["secret"] == "jit-password"
    return response.get_json()["items"][0]["id"]


def _checkout_revoked(stack, checkout_id: str) -> bool:
    """Ended, and audited as a revocation, in the Secrets Manager's database (looked at directly:
    a read through the API would end it itself)."""
    with psycopg.connect(stack["db"]) as conn:
        return conn.execute("""SELECT 1 FROM audit_events WHERE action = 'checkout.revoke' AND outcome = 'success'
                                  AND details->>'checkout_id' = %s""", (checkout_id,)).fetchone() is not None


def _outbox(stack, request_id: str) -> list[tuple]:
    with psycopg.connect(stack["db"]) as conn:
        return conn.execute("""SELECT state->>'ended', delivered IS NOT NULL, refused IS NOT NULL, attempts
                                 FROM wf_grant_outbox WHERE request_id = %s ORDER BY id""", (request_id,)).fetchall()


def _ten_minutes() -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_approval_opens_both_services_and_a_revoke_ends_both_within_5_s(stack, world):
    people, sm = world["people"], world["sm"]
    assert _vault_read(stack, world) == 404
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": world["path"]}).status_code == 404

    request_id = _approved(world, grant_type="TIME_RESTRICTED", grant_end=_ten_minutes())
    # The requester's own decision is refused, and one step approved is no grant yet.
    assert sm.post(f"/requests/{request_id}/decision", prefix=WF, headers=people.requester,
                   json=go_decision(1, "APPROVED")).status_code == 403
    assert _vault_read(stack, world) == 404
    _approve_last_step(world, request_id)
    _granted_everywhere(stack, world)
    read = requests.get(f"{stack['vault']}{V1}/secrets/{world['secret']}", headers=people.requester, timeout=30)
    assert read.status_code == 200 and read.json()["data"] == {"password": "jit-secret"}, (read.status_code, read.text)
    checkout_id = _checkout(world)

    revoked_at = time.monotonic()
    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.approver_a).status_code == 200
    _within(END_WITHIN, lambda: _vault_says(stack, world, 404), "the Vault read ends")
    _within(END_WITHIN - (time.monotonic() - revoked_at), lambda: _checkout_revoked(stack, checkout_id),
            "the worker ends the checkout")
    assert sm.post("/secrets/checkouts", headers=people.requester, json={"path": world["path"]}).status_code == 404
    assert _outbox(stack, request_id) == [("false", True, False, 1), ("true", True, False, 1)]


def test_expiry_ends_a_grant_in_both_services_without_any_call(stack, world):
    """The link to the Vault is cut before the grant's end: no message can tell the Vault, which
    ends it by its own clock; the worker ends the checkout."""
    people = world["people"]
    end = (datetime.now(timezone.utc) + timedelta(seconds=30)).replace(microsecond=0)  # as sent
    request_id = _approved(world, grant_type="TIME_RESTRICTED", grant_end=end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _approve_last_step(world, request_id)
    _granted_everywhere(stack, world)
    checkout_id = _checkout(world)
    stack["link"].cut()
    try:
        assert _vault_read(stack, world) == 200  # still live: ends at grant_end, not before
        wait = (end - datetime.now(timezone.utc)).total_seconds()
        assert wait > 0, "the approval took longer than the grant's window"
        _within(wait + END_WITHIN, lambda: _vault_says(stack, world, 404), "the Vault ends the grant at grant_end")
        assert datetime.now(timezone.utc) >= end
        _within(max(0.5, (end - datetime.now(timezone.utc)).total_seconds() + END_WITHIN),
                lambda: _checkout_revoked(stack, checkout_id), "the worker ends the checkout at grant_end")
        assert world["sm"].post("/secrets/checkouts", headers=people.requester,
                                json={"path": world["path"]}).status_code == 404
    finally:
        stack["link"].restore()
    # The expiry's own record reaches the Vault too once the link is back.
    _within(30, lambda: [row[:3] for row in _outbox(stack, request_id)] == [("false", True, False), ("true", True, False)],
            "the expiry is delivered")


def test_a_vault_outage_during_a_revoke_delays_the_end_and_loses_nothing(stack, world):
    people, sm = world["people"], world["sm"]
    request_id = _approved(world, grant_type="PERMANENT")
    _approve_last_step(world, request_id)
    _granted_everywhere(stack, world)
    checkout_id = _checkout(world)

    stack["link"].cut()
    try:
        assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.approver_a).status_code == 200
        # The Secrets Manager ends its side at once; the Vault's side waits in the outbox.
        _within(END_WITHIN, lambda: _checkout_revoked(stack, checkout_id), "the worker ends the checkout")
        _within(10, lambda: _outbox(stack, request_id)[-1][3] >= 2, "the end is retried while the Vault is away")
        end = _outbox(stack, request_id)[-1]
        assert end[:3] == ("true", False, False)
        assert _vault_read(stack, world) == 200  # the Vault cannot know yet
    finally:
        stack["link"].restore()
    restored = time.monotonic()
    _within(10, lambda: _vault_says(stack, world, 404), "the end lands once the Vault is back")
    # Within the sender's longest backoff and the Vault's cache.
    assert time.monotonic() - restored < 10
    assert [row[:3] for row in _outbox(stack, request_id)] == [("false", True, False), ("true", True, False)]
    with psycopg.connect(stack["db"]) as conn:
        waiting = conn.execute("SELECT count(*) FROM wf_grant_outbox WHERE delivered IS NULL OR refused IS NOT NULL")
        assert waiting.fetchone()[0] == 0


def test_revoke_and_delete_at_once_end_the_grant_once_in_both(stack, world, tokens):
    people = world["people"]
    request_id = _approved(world, grant_type="PERMANENT")
    _approve_last_step(world, request_id)
    _granted_everywhere(stack, world)
    admin = tokens.headers("admin")
    base = stack["base"] + WF
    statuses = support.all_at_once([
        lambda: requests.post(f"{base}/requests/{request_id}/role/revoke", headers=people.approver_a, timeout=30).status_code,
        lambda: requests.delete(f"{base}/requests/{request_id}", headers=admin, timeout=30).status_code])
    assert 200 in statuses
    _within(END_WITHIN, lambda: _vault_says(stack, world, 404), "the Vault read ends")
    ends = [row for row in _outbox(stack, request_id) if row[0] == "true"]
    assert len(ends) == 1 and ends[0][1:3] == (True, False)


def test_the_sweep_keeps_a_checkout_whose_holder_still_holds_the_role(stack, world, tokens):
    """A grant of a role the holder's token carries as well: its end takes nothing away."""
    people, sm = world["people"], world["sm"]
    both = people.user(people.requester_role, people.target, name="Tom Token-holder")
    response = sm.post("/requests", prefix=WF, headers=both, json=go_access_request(people.target, grant_type="PERMANENT"))
    assert response.status_code == 201, response.get_json()
    request_id = response.get_json()["id"]
    for step, approver in ((0, people.approver_a), (1, people.approver_b)):
        assert sm.post(f"/requests/{request_id}/decision", prefix=WF, headers=approver,
                       json=go_decision(step, "APPROVED")).status_code == 200
    checkout = sm.post("/secrets/checkouts", headers=both, json={"path": world["path"]})
    assert checkout.status_code == 200
    checkout_id = checkout.get_json()["items"][0]["id"]
    assert sm.post(f"/requests/{request_id}/role/revoke", prefix=WF, headers=people.approver_a).status_code == 200

    def swept():
        with psycopg.connect(stack["db"]) as conn:
            return conn.execute("""SELECT checkouts_swept IS NOT NULL FROM wf_grant_outbox
                                    WHERE request_id = %s AND state->>'ended' = 'true'""", (request_id,)).fetchone()[0]

    _within(END_WITHIN, swept, "the worker sweeps the grant's end")
    assert not _checkout_revoked(stack, checkout_id)
    assert sm.get(f"/secrets/checkouts/{checkout_id}", headers=both).status_code == 200


def _vault_grant_window(stack, tokens, request_id: str) -> tuple | None:
    response = requests.get(f"{stack['vault']}{V1}/grants/{request_id}", headers=tokens.headers("service"), timeout=30)
    assert response.status_code in (200, 404), response.text
    grant = response.json() if response.status_code == 200 else {}
    if not grant.get("grant_start"):
        return None
    return datetime.fromisoformat(grant["grant_start"]), datetime.fromisoformat(grant["grant_end"])


def _sm_grant_window(stack, request_id: str) -> tuple:
    with psycopg.connect(stack["db"]) as conn:
        return conn.execute("SELECT grant_start, grant_end FROM wf_requests WHERE id = %s", (request_id,)).fetchone()


def test_a_floating_grant_first_used_in_the_vault_ends_when_the_vaults_window_does(stack, world, tokens):
    """The first use is a Vault read: the Vault starts the window, and the Secrets Manager, which
    the Vault never calls, takes that start (asking the Vault, or from its answer to the state the
    checkout sends), so its window cannot end later than the Vault's."""
    request_id = _approved(world, grant_type="FLOATING", floating_length=1)
    _approve_last_step(world, request_id)
    _granted_everywhere(stack, world)  # reads of the secret: the grant's first use, in the Vault
    vault_window = _within(END_WITHIN, lambda: _vault_grant_window(stack, tokens, request_id), "the Vault starts the window")
    assert vault_window[1] - vault_window[0] == timedelta(hours=1)
    _checkout(world)  # a use here too, later: it must not move the start
    _within(FIRST_USE_CHECK_SECONDS + END_WITHIN, lambda: _sm_grant_window(stack, request_id) == vault_window,
            "the Secrets Manager takes the Vault's start")
    assert _vault_grant_window(stack, tokens, request_id) == vault_window  # the Vault kept the earlier start
    with psycopg.connect(stack["db"]) as conn:
        where = conn.execute("""SELECT details->>'first_used_in' FROM audit_events
                                 WHERE action = 'grant.first_use' AND details->>'request_id' = %s""", (request_id,)).fetchall()
    assert ("vault",) in where
