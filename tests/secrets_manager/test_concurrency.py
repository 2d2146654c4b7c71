"""Checkout limits hold across replicas: several gunicorn workers, many simultaneous requests."""
from __future__ import annotations

import psycopg
import pytest
import requests

from tests import support
from tests.secrets_manager.helpers import AUTHORIZER, SM

pytestmark = pytest.mark.slow

CALLERS = 12


@pytest.fixture(scope="module")
def sm_server(sm_config):
    env = {key: str(value) for key, value in sm_config.items()}
    with support.gunicorn("secrets_manager_service.wsgi:app", env, workers=3, health_path=SM + "/status") as base:
        yield base


def _checkout_call(base: str, path: str, headers: dict, prefix: str = SM):
    return lambda: requests.post(f"{base}{prefix}/secrets/checkouts", headers=headers, json={"path": path}, timeout=30)


def _live_checkouts(sm_config, path: str) -> int:
    host_id, account = path.split("/")[1:]
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        return conn.execute(
            """SELECT count(*) FROM sm_checkouts c JOIN sm_accounts a ON a.id = c.account_id
                WHERE a.host_id = %s AND a.account = %s AND c.ended IS NULL AND c.expires > now()""",
            (host_id, account)).fetchone()[0]


def test_status_of_a_live_server(sm_server):
    body = requests.get(f"{sm_server}{SM}/status", timeout=10).json()
    assert body["status"] == "RUNNING"
    assert {d["k"]: d["v"] for d in body["status_details"]} == {"database": "ok", "vault": "ok"}


def test_exclusive_checkout_has_exactly_one_winner(sm, sm_server, sm_config, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(max_concurrent_checkouts=1), accounts={"root": "only-one"}, roles=[role])
    path = f"hosts/{host_id}/root"
    callers = [tokens.headers("user", roles=[role]) for _ in range(CALLERS)]
    # Half of them come through the authorizer prefix, as PrivX clients do.
    responses = support.all_at_once([_checkout_call(sm_server, path, h, AUTHORIZER if i % 2 else SM)
                              for i, h in enumerate(callers)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (CALLERS - 1), [r.text for r in responses if r.status_code not in (200, 409)]
    assert all(r.json()["error_code"] == "VALUE_DUPLICATE" for r in responses if r.status_code == 409)
    assert _live_checkouts(sm_config, path) == 1


def test_limit_of_three_admits_three(sm, sm_server, sm_config, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(max_concurrent_checkouts=3), accounts={"root": "three"}, roles=[role])
    path = f"hosts/{host_id}/root"
    responses = support.all_at_once([_checkout_call(sm_server, path, tokens.headers("user", roles=[role]))
                              for _ in range(CALLERS)])
    assert sorted(r.status_code for r in responses) == [200] * 3 + [409] * (CALLERS - 3)
    assert _live_checkouts(sm_config, path) == 3


def test_one_user_racing_itself_gets_one_checkout(sm, sm_server, sm_config, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(max_concurrent_checkouts=0), accounts={"root": "mine"}, roles=[role])
    path = f"hosts/{host_id}/root"
    user = tokens.headers("user", roles=[role])
    responses = support.all_at_once([_checkout_call(sm_server, path, user) for _ in range(8)])
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["items"][0]["id"] for r in responses}) == 1
    assert _live_checkouts(sm_config, path) == 1
