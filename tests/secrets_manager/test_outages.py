"""The Vault or the database going away: 503 in the envelope, nothing half-written, recovery."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from secrets_manager_service.app import create_app
from tests import support
from tests.secrets_manager.helpers import SmApi, host_body

pytestmark = pytest.mark.slow


@pytest.fixture()
def linked(sm_config, vault_url, tokens):
    """A Secrets Manager that reaches the Vault only through a TCP link the test can cut."""
    link = support.TcpLink("127.0.0.1", int(vault_url.rsplit(":", 1)[1])).start()
    app = create_app({**sm_config, "VAULT_URL": f"http://127.0.0.1:{link.port}"})
    yield SmApi(app.test_client(), tokens), link
    link.cut()
    app.extensions["db"].close()


def _rows(sm_config, query: str, *params) -> int:
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        return conn.execute(query, params).fetchone()[0]


def _is_intra_service_error(response) -> bool:
    body = response.get_json()
    return response.status_code == 503 and body["error_code"] == "INTRA_SERVICE_COMMUNICATION_ERROR"


def test_vault_cut_mid_flow(linked, vault_reader, tokens, sm_config):
    sm, link = linked
    role = support.new_role()
    user = tokens.headers("user", roles=[role])
    policy = sm.policy(rotate_on_release=True)
    host_id = sm.host(policy, accounts={"root": "before-the-cut"}, roles=[role])
    path = f"hosts/{host_id}/root"

    link.cut()

    # A new host with an initial password: refused, and not a row of it in the database.
    new_host = str(uuid.uuid4())
    response = sm.post(f"/host-secret/{new_host}", json=host_body(policy, accounts={"root": "never-stored"}))
    assert _is_intra_service_error(response)
    assert "never-stored" not in response.get_data(as_text=True)
    assert sm.get(f"/host-secret/{new_host}").status_code == 404
    assert _rows(sm_config, "SELECT count(*) FROM sm_hosts WHERE id = %s", new_host) == 0

    # Replacing the existing one: refused, the old registration stays as it was.
    replaced = sm.post(f"/host-secret/{host_id}", json=host_body(policy, accounts={"root": "new-pw"}, address="x"))
    assert _is_intra_service_error(replaced)
    assert sm.get(f"/host-secret/{host_id}").get_json()["metadata"]["address"] == "10.0.0.1"

    # A checkout needs the password: refused, and no checkout recorded.
    assert _is_intra_service_error(sm.post("/secrets/checkouts", headers=user, json={"path": path}))
    assert _rows(sm_config, """SELECT count(*) FROM sm_checkouts c JOIN sm_accounts a ON a.id = c.account_id
                                WHERE a.host_id = %s""", host_id) == 0
    assert _is_intra_service_error(sm.post(f"/set-password/{host_id}/root", json={"password": "p"}))
    assert _is_intra_service_error(sm.delete(f"/host-secret/{host_id}"))
    assert sm.get(f"/host-secret/{host_id}").status_code == 200

    # What needs only the database still works.
    assert sm.get("/secrets", headers=user).get_json()["count"] == 1
    assert sm.post(f"/rotate/{host_id}/root").status_code == 200
    status = sm.get("/status", headers={})
    assert status.status_code == 503 and status.get_json()["status"] == "ERROR"
    assert {d["k"]: d["v"] for d in status.get_json()["status_details"]} == {"database": "ok", "vault": "unreachable"}

    # The worker cannot read the old password: it records why and keeps the rotation queued.
    sm.run_worker()
    account = sm.account(host_id, "root")
    assert account["last_error"].endswith("Z")  # when (RFC 3339); what is in the details
    assert account["last_error_details"].startswith("the Vault is unreachable; the password was not changed")
    assert vault_reader.newest(path) == "before-the-cut"

    link.restore()

    assert sm.get("/status", headers={}).status_code == 200
    checkout = sm.checkout(path, user)
    assert checkout["secrets"][0]["secret"] == "before-the-cut"
    sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user)
    sm.run_worker()
    assert vault_reader.newest(path) not in (None, "before-the-cut")
    assert sm.account(host_id, "root")["last_error"] is None
    assert sm.post(f"/host-secret/{new_host}", json=host_body(policy, accounts={"root": "stored"})).status_code == 200
    assert vault_reader.newest(f"hosts/{new_host}/root") == "stored"


def test_database_down(sm_config, tokens):
    app = create_app({**sm_config, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{support.free_port()}/none",
                      "DB_POOL_TIMEOUT_SECONDS": 1.0})
    try:
        sm = SmApi(app.test_client(), tokens)
        status = sm.get("/status", headers={})
        assert status.status_code == 503 and status.get_json()["status"] == "ERROR"
        assert {d["k"]: d["v"] for d in status.get_json()["status_details"]} == {"database": "unreachable",
                                                                                 "vault": "ok"}
        response = sm.get("/password-policies")
        assert response.status_code == 503 and response.get_json()["error_code"] == "DATABASE_ERROR"
    finally:
        app.extensions["db"].close()


def test_vault_not_configured(sm_config, tokens):
    app = create_app({**sm_config, "VAULT_URL": None})
    try:
        sm = SmApi(app.test_client(), tokens)
        assert sm.get("/status", headers={}).status_code == 503
        response = sm.post(f"/host-secret/{uuid.uuid4()}", json=host_body(sm.policy()))
        assert _is_intra_service_error(response)
    finally:
        app.extensions["db"].close()
