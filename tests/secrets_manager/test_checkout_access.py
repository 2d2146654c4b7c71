"""A checkout is only as good as its holder's access: re-checked on every read and release.
Also: no checkout without a password, and one request id across both services' audit trails."""
from __future__ import annotations

import uuid

import psycopg
import pytest
import requests

from tests import support
from tests.secrets_manager.helpers import host_body

pytestmark = pytest.mark.slow


def _events(database_url: str, **where) -> list[tuple]:
    clauses = " AND ".join(f"{column} = %({column})s" for column in where)
    with psycopg.connect(database_url) as conn:
        return conn.execute(f"SELECT service, action, target, outcome, request_id, details FROM audit_events "
                            f"WHERE {clauses} ORDER BY id", where).fetchall()


def _revoke_role(sm, policy: str, host_id: str) -> None:
    """The issue's admin: removes the user's role from the host's access_roles, sets a new password."""
    response = sm.post(f"/host-secret/{host_id}", json=host_body(policy, accounts={"root": None}, roles=[]))
    assert response.status_code == 200, response.get_json()
    assert sm.post(f"/set-password/{host_id}/root", json={"password": "after-revocation"}).status_code == 200


@pytest.mark.parametrize("rotate_on_release", [False, True])
def test_revoked_access_ends_a_live_checkout(sm, vault_reader, tokens, sm_config, rotate_on_release):
    role = support.new_role()
    holder = tokens.headers("user", roles=[role])
    policy = sm.policy(rotate_on_release=rotate_on_release)
    host_id = sm.host(policy, accounts={"root": "before-revocation"}, roles=[role])
    path = f"hosts/{host_id}/root"
    checkout = sm.checkout(path, holder)
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=holder).status_code == 200

    _revoke_role(sm, policy, host_id)

    # Over: not readable (neither password shown), not releasable, not listed, not renewable.
    response = sm.get(f"/secrets/checkouts/{checkout['id']}", headers=holder)
    assert response.status_code == 404 and response.get_json()["error_code"] == "OBJECT_NOT_FOUND"
    assert "after-revocation" not in response.get_data(as_text=True)
    assert sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=holder).status_code == 404
    assert sm.get("/secrets/checkouts", headers=holder).get_json() == {"count": 0, "items": []}
    assert sm.post("/secrets/checkouts", headers=holder, json={"path": path}).status_code == 404
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT ended IS NOT NULL FROM sm_checkouts WHERE id = %s", (checkout["id"],)).fetchone()[0]
    revoked = _events(sm_config["DATABASE_URL"], action="checkout.revoke", target=path)
    assert len(revoked) == 1 and revoked[0][5]["checkout_id"] == checkout["id"]

    # It counted as released: with rotate_on_release the password the holder saw is rotated away.
    sm.run_worker()
    if rotate_on_release:
        assert vault_reader.newest(path) not in (None, "before-revocation", "after-revocation")
    else:
        assert vault_reader.newest(path) == "after-revocation"


def test_an_admin_reading_anothers_checkout_ends_it_once_the_holder_lost_access(sm, tokens, sm_config):
    role = support.new_role()
    holder = tokens.headers("user", roles=[role])
    policy = sm.policy()
    host_id = sm.host(policy, accounts={"root": "pw"}, roles=[role])
    checkout = sm.checkout(f"hosts/{host_id}/root", holder)
    assert sm.get(f"/secrets/checkouts/{checkout['id']}").status_code == 200  # admin, holder still allowed
    _revoke_role(sm, policy, host_id)
    assert sm.get(f"/secrets/checkouts/{checkout['id']}").status_code == 404  # judged by the holder's roles
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=holder).status_code == 404


def test_a_token_without_the_role_cannot_read_the_checkout_made_with_it(sm, tokens):
    role = support.new_role()
    sub = str(uuid.uuid4())
    host_id = sm.host(sm.policy(), accounts={"root": "pw"}, roles=[role])
    checkout = sm.checkout(f"hosts/{host_id}/root", tokens.headers("user", sub=sub, roles=[role]))
    # The same user, whose identity provider no longer gives the role.
    assert sm.get(f"/secrets/checkouts/{checkout['id']}", headers=tokens.headers("user", sub=sub)).status_code == 404
    assert sm.get(f"/secrets/checkouts/{checkout['id']}",
                  headers=tokens.headers("user", sub=sub, roles=[role])).status_code == 404  # over for good


def test_no_checkout_of_an_account_without_a_password(sm, tokens, sm_config):
    role = support.new_role()
    host_id = sm.host(sm.policy(), accounts={"root": None}, roles=[role])
    response = sm.post("/secrets/checkouts", headers=tokens.headers("user", roles=[role]),
                       json={"path": f"hosts/{host_id}/root"})
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error_code"] == "CONFIGURATION_ERROR"
    with psycopg.connect(sm_config["DATABASE_URL"]) as conn:
        assert conn.execute("""SELECT count(*) FROM sm_checkouts c JOIN sm_accounts a ON a.id = c.account_id
                                WHERE a.host_id = %s""", (host_id,)).fetchone()[0] == 0


def test_a_checkouts_request_id_is_in_both_audit_trails(sm, tokens, sm_config, sm_vault_db):
    role = support.new_role()
    user = tokens.headers("user", roles=[role])
    host_id = sm.host(sm.policy(), accounts={"root": "pw"}, roles=[role])
    path = f"hosts/{host_id}/root"
    request_id = f"req-{uuid.uuid4().hex}"
    response = sm.post("/secrets/checkouts", headers={**user, "X-Request-ID": request_id}, json={"path": path})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == request_id
    read_id = f"req-{uuid.uuid4().hex}"
    checkout_id = response.get_json()["items"][0]["id"]
    assert sm.get(f"/secrets/checkouts/{checkout_id}", headers={**user, "X-Request-ID": read_id}).status_code == 200

    for rid, action in ((request_id, "checkout.create"), (read_id, "checkout.read")):
        sm_events = _events(sm_config["DATABASE_URL"], request_id=rid)
        vault_events = _events(sm_vault_db, request_id=rid)
        assert [(e[0], e[1], e[2]) for e in sm_events] == [("secrets-manager", action, path)]
        # The Vault read the password (and its history) under the same request id.
        assert vault_events and {(e[0], e[1], e[2], e[3]) for e in vault_events} == {
            ("vault", "secret.read", f"secret:{path}", "success")}


def test_a_checkout_whose_password_left_the_vault_is_never_shown_empty(sm, vault_reader, tokens):
    role = support.new_role()
    user = tokens.headers("user", roles=[role])
    host_id = sm.host(sm.policy(), accounts={"root": "pw"}, roles=[role])
    checkout = sm.checkout(f"hosts/{host_id}/root", user)
    # Only the service scope can do this (the reserved part): as the Secrets Manager itself would.
    gone = requests.delete(f"{vault_reader.base}/secret/metadata/hosts/{host_id}/root", headers=vault_reader.headers, timeout=10)
    assert gone.status_code == 200
    response = sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user)
    assert response.status_code == 409 and response.get_json()["error_code"] == "CONFIGURATION_ERROR"
    listed = sm.get("/secrets/checkouts", headers=user)
    assert listed.status_code == 200 and listed.get_json() == {"count": 0, "items": []}
