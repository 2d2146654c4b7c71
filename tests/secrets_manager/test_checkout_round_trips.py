"""A checkout's statements (issue 25: the checkout cycle near its floor), counted at the protocol
level (tests/round_trips.py): its audit event is written by the statement it records (the claim,
the end), in the same durable transaction, so a checkout is 6 round trips and a release 5. The
events are those a separate insert wrote: same action, target, request id and details; none for a
claim refused by the limit or a release of a checkout already ended."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from tests import round_trips, support


def _events(database_url: str, request_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT principal, action, target, outcome, details FROM audit_events "
                            "WHERE request_id = %s ORDER BY id", (request_id,)).fetchall()


@pytest.fixture()
def account(sm, tokens):
    role = support.new_role("rt")
    sub = str(uuid.uuid4())
    user = tokens.headers("user", sub=sub, roles=[role])
    host_id = sm.host(sm.policy(max_concurrent_checkouts=1), accounts={"root": "root-pw"}, roles=[role])
    return {"user": user, "sub": sub, "role": role, "path": f"hosts/{host_id}/root"}


def _counted(sm_app, call):
    with round_trips.counted(sm_app.extensions["db"].pool()) as counter:
        response = call()
    return response, counter


def test_a_checkout_and_its_release_write_their_events_in_their_own_statements(sm, sm_app, sm_config, account):
    user, path, database = account["user"], account["path"], sm_config["DATABASE_URL"]
    sm.checkout(path, user)  # the first of a new user: its statements prepared, its token learnt
    created_id = f"req-{uuid.uuid4().hex}"
    created, counter = _counted(sm_app, lambda: sm.post("/secrets/checkouts", json={"path": path},
                                                        headers={**user, "X-Request-ID": created_id}))
    assert created.status_code == 200, created.get_json()
    # the account, the caller's grants, BEGIN, the lock, the claim with its event, COMMIT
    assert counter.round_trips <= 6, counter.statements
    checkout_id = created.get_json()["items"][0]["id"]
    assert _events(database, created_id) == [
        (account["sub"], "checkout.create", path, "success", {"checkout_id": checkout_id, "existing": True})]

    released_id = f"req-{uuid.uuid4().hex}"
    released, counter = _counted(sm_app, lambda: sm.post(f"/secrets/checkouts/{checkout_id}/release",
                                                         headers={**user, "X-Request-ID": released_id}))
    assert released.status_code == 200, released.get_json()
    # BEGIN, the checkout with its account locked, its end with its event, the queued rotation, COMMIT
    assert counter.round_trips <= 5, counter.statements
    assert _events(database, released_id) == [
        (account["sub"], "checkout.release", path, "success", {"checkout_id": checkout_id, "holder": account["sub"]})]

    again_id = f"req-{uuid.uuid4().hex}"
    again = sm.post(f"/secrets/checkouts/{checkout_id}/release", headers={**user, "X-Request-ID": again_id})
    assert again.status_code == 404
    assert [event[1:4] for event in _events(database, again_id)] == [
        ("checkout.release", f"checkouts/{checkout_id}", "not_found")]


def test_a_new_checkout_has_its_event_and_a_refused_one_only_the_refusal(sm, sm_config, tokens, account):
    path, database = account["path"], sm_config["DATABASE_URL"]
    created_id = f"req-{uuid.uuid4().hex}"
    created = sm.post("/secrets/checkouts", json={"path": path}, headers={**account["user"], "X-Request-ID": created_id})
    assert created.status_code == 200, created.get_json()
    checkout_id = created.get_json()["items"][0]["id"]
    assert _events(database, created_id) == [
        (account["sub"], "checkout.create", path, "success", {"checkout_id": checkout_id, "existing": False})]
    # the policy allows one live checkout: another holder's is refused, and of it only the refusal is written
    refused_id = f"req-{uuid.uuid4().hex}"
    other = tokens.headers("user", roles=[account["role"]])
    refused = sm.post("/secrets/checkouts", json={"path": path}, headers={**other, "X-Request-ID": refused_id})
    assert refused.status_code == 409, refused.get_json()
    assert [event[1:4] for event in _events(database, refused_id)] == [("checkout.create", path, "denied")]
