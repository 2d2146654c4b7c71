"""Bodies and calls the target-domain tests share."""
from __future__ import annotations

from tests import support
from common.devtools import slapd

TD = "/targetdomains"


def endpoint_body(directory=None, **overrides) -> dict:
    body = {
        "type": "LDAP",
        "ldap_protocol": "LDAP",
        "ldap_address": "127.0.0.1",
        "ldap_port": directory.port if directory else 389,
        "ldap_base_dn": slapd.PEOPLE,
        "ldap_bind_dn": slapd.BIND_DN,
        "ldap_bind_password": directory.bind_password if directory else "bind-secret",
    }
    body.update(overrides)
    return body


def domain_body(directory=None, *, endpoints=None, **overrides) -> dict:
    body = {"name": support.unique("domain"), "endpoints": endpoints or [endpoint_body(directory)]}
    body.update(overrides)
    return body


def create_domain(sm, directory=None, **overrides) -> str:
    response = sm.post(TD, json=domain_body(directory, **overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def scan(sm, domain_id: str) -> dict:
    """Queue a scan, run the worker's scans until none is left, and return the domain."""
    from secrets_manager_service.target_domains import flows

    response = sm.post(f"{TD}/{domain_id}/refresh")
    assert response.status_code == 200, response.get_json()
    with sm.app.app_context():
        while flows.scan_one() is not None:
            pass
    return sm.get(f"{TD}/{domain_id}").get_json()


def insert_scanned_account(app, domain_id: str, username: str) -> str:
    """A scanned account as a complete scan would have written it, for tests that run no directory."""
    import uuid

    from psycopg.types.json import Jsonb

    account_id = str(uuid.uuid4())
    dn = f"uid={username},{slapd.PEOPLE}"
    with app.app_context(), app.extensions["db"].transaction() as cur:
        cur.execute("""INSERT INTO sm_td_accounts (id, domain_id, identity, dn, username, email, additional_data)
                       VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                    (account_id, domain_id, str(uuid.uuid4()), dn, username, f"{username}@example.test",
                     Jsonb({"dn": dn})))
    return account_id
