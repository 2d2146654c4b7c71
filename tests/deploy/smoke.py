"""The end-to-end smoke an installed suite must pass, over HTTP only: the wheel test
(tests/deploy/test_wheel_install.py, processes from a virtualenv) and the image test
(tests/deploy/images.py, containers) run the same steps against what they started.

It logs in through the development issuer with its packaged clients, as a user would, and
checks one thing of each part that only an installed suite can break (a module or data file
missing from the package, an entry point, a gunicorn configuration):
- a v1 secret written and read (Vault, migrations, master keys, token validation);
- the same secret read with hvac through HashiCorp's KV v2 API at /v1/;
- a host account registered and checked out (Secrets Manager, its calls to the Vault);
- a directory account checked out against a private slapd: the worker scans the directory
  and rotates the onboarded account there, and the checked-out password binds.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import hvac
import requests

from common.devtools import slapd
from tests import support
from tests.secrets_manager.helpers import host_body, policy_body
from tests.secrets_manager.target_domains.helpers import endpoint_body

# The development issuer's packaged clients (common/devtools/issuer/default_clients.json).
OAUTH_CLIENT = ("privx-external", "dev-oauth-secret")
ADMIN = ("admin", "dev-admin-secret")
ADMIN_ROLE = {"id": "00000000-0000-4000-8000-000000000001", "name": "privx-admin"}
SERVICE_CLIENT = ("secrets-manager", "dev-secrets-manager-secret")
# How long the worker may take to scan the directory and rotate the account: it runs a pass
# every SM_WORKER_INTERVAL_SECONDS (the callers set 1), so this only bounds a hung worker.
WORKER_DEADLINE_SECONDS = 120


@dataclass(frozen=True)
class Suite:
    """Base URLs of a running suite (no path)."""

    issuer: str
    vault: str
    secrets_manager: str


class SmokeFailure(AssertionError):
    pass


def check(condition: bool, what: str, response: requests.Response | None = None) -> None:
    if not condition:
        detail = f": {response.status_code} {response.text[:500]}" if response is not None else ""
        raise SmokeFailure(what + detail)


def token(suite: Suite, *, client: tuple[str, str], user: tuple[str, str] | None = None) -> str:
    """A token from the issuer's token endpoint: the password grant with `user`, else client credentials."""
    form = {"grant_type": "password", "username": user[0], "password": user[1]} if user else {
        "grant_type": "client_credentials"}
    response = requests.post(f"{suite.issuer}/auth/api/v1/oauth/token", auth=client, data=form, timeout=10)
    check(response.status_code == 200, "the issuer gave no token", response)
    return response.json()["access_token"]


def run(suite: Suite, directory: slapd.Slapd) -> list[str]:
    """Every step, in order; raises SmokeFailure at the first that fails. Returns the steps done."""
    admin = {"Authorization": f"Bearer {token(suite, client=OAUTH_CLIENT, user=ADMIN)}"}
    service_token = token(suite, client=SERVICE_CLIENT)
    done = []

    name = support.unique("smoke/db")
    vault = f"{suite.vault}/vault/api/v1"
    created = requests.post(f"{vault}/secrets", headers=admin, timeout=10, json={
        "name": name, "data": {"password": "smoke-value"}, "read_roles": [ADMIN_ROLE], "write_roles": [ADMIN_ROLE]})
    check(created.status_code == 201, "v1 secret create", created)
    read = requests.get(f"{vault}/secrets/{name}", headers=admin, timeout=10)
    check(read.status_code == 200 and read.json()["data"] == {"password": "smoke-value"}, "v1 secret read", read)
    done.append("v1 secret written and read")

    client = hvac.Client(url=suite.vault, token=service_token)
    client.session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    kv = client.secrets.kv.v2.read_secret_version(path=name, raise_on_deleted_version=True)
    check(kv["data"]["data"] == {"password": "smoke-value"}, f"hvac read gave {kv['data']['data']!r}")
    client.adapter.close()
    done.append("KV v2 read with hvac")

    sm = f"{suite.secrets_manager}/secrets-manager/api/v1"
    policy = requests.post(f"{sm}/password-policy", headers=admin, timeout=10, json=policy_body())
    check(policy.status_code == 201, "password policy create", policy)
    policy_id = policy.json()["id"]
    host_id, initial = str(uuid.uuid4()), "initial-" + uuid.uuid4().hex
    host = requests.post(f"{sm}/host-secret/{host_id}", headers=admin, timeout=10,
                         json=host_body(policy_id, accounts={"smoke": initial}, roles=[ADMIN_ROLE]))
    check(host.status_code == 200, "host register", host)
    checkout = _checkout(sm, admin, f"hosts/{host_id}/smoke")
    check(checkout["secrets"][0]["secret"] == initial, "the host account's checkout gave another password")
    done.append("host account checked out")

    domain = requests.post(f"{sm}/targetdomains", headers=admin, timeout=10, json={
        "name": support.unique("smoke-directory"), "endpoints": [endpoint_body(directory)],
        "auto_onboarding_policy": {"id": policy_id}})
    check(domain.status_code == 201, "target domain create", domain)
    domain_id = domain.json()["id"]
    scanned = _wait(lambda: _get(f"{sm}/targetdomains/{domain_id}", admin),
                    lambda d: d["scan_status"] in ("DONE", "FAILED"), "the worker's scan of the directory")
    check(scanned["scan_status"] == "DONE", f"the directory scan failed: {scanned.get('scan_message')}")
    original = directory.password_of("user1")
    onboarded = requests.post(f"{sm}/targetdomains/{domain_id}/managedaccounts", headers=admin, timeout=10, json={
        "username": "user1", "rotate": True, "explicit_checkout": True, "access_roles": [ADMIN_ROLE]})
    check(onboarded.status_code == 201, "managed account create", onboarded)
    managed_id = onboarded.json()["id"]
    account = _wait(lambda: _get(f"{sm}/targetdomains/{domain_id}/managedaccounts/{managed_id}", admin),
                    lambda a: a["state"] != "PENDING" or a["last_error"], "the worker's rotation of the account")
    check(account["state"] == "ACTIVE" and not account["last_error"],
          f"the onboarding rotation failed: {account['state']} {account.get('last_error_details')}")
    checkout = _checkout(sm, admin, f"targetdomains/{domain_id}/{managed_id}")
    password = checkout["secrets"][0]["secret"]
    check(directory.binds("user1", password), "the checked-out directory password does not bind")
    check(not directory.binds("user1", original), "the worker did not rotate the directory password")
    done.append("directory account rotated by the worker and checked out")
    return done


def _checkout(sm: str, headers: dict, path: str) -> dict:
    response = requests.post(f"{sm}/secrets/checkouts", headers=headers, json={"path": path}, timeout=10)
    check(response.status_code == 200, f"checkout of {path}", response)
    item = response.json()["items"][0]
    released = requests.post(f"{sm}/secrets/checkouts/{item['id']}/release", headers=headers, timeout=10)
    check(released.status_code == 200, f"release of {path}", released)
    return item


def _get(url: str, headers: dict) -> dict:
    response = requests.get(url, headers=headers, timeout=10)
    check(response.status_code == 200, f"GET {url}", response)
    return response.json()


def _wait(fetch, done, what: str):
    """Poll `fetch()` until `done(value)`; SmokeFailure (with the last value) after the deadline."""
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{what} did not happen in {WORKER_DEADLINE_SECONDS} s: {value}")
        time.sleep(0.5)
