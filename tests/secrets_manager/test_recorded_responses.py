"""The Secrets Manager's answers stay byte for byte what they were (issue 25, point 4: made faster,
changed in nothing a client sees).

A fixed list of requests (the account list and search, with host and directory accounts; checkout
create, read, list and release of both kinds; a target domain's account lists; errors of each)
runs against an app on a database of its own (the session's Vault under gunicorn keeps the
passwords), seeded with fixed host ids, subjects, role ids, names and passwords, and each answer is
compared with `recorded_responses.json`, recorded on the code before the speed work: the status,
every header but the ones named in VARYING_HEADERS, and the body's bytes.

Masked, because they differ from one run to the next whatever the code: UUIDs the server makes
(policy, domain, account and checkout ids) and times (RFC 3339). The UUIDs the test chooses (host
ids, subjects, role ids) are not masked. Nothing else is. Requests name what an earlier answer
made with `{key}` (see REMEMBER).

    RECORD_RESPONSES=1 .venv/bin/python -m pytest tests/secrets_manager/test_recorded_responses.py   # re-record
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import support
from tests.secrets_manager.helpers import AUTHORIZER, SM, host_body, policy_body
from tests.secrets_manager.target_domains.helpers import TD, domain_body, insert_scanned_account

RECORDING = Path(__file__).with_name("recorded_responses.json")

ADMIN, READER, OTHER, OUTSIDER = (f"00000000-0000-4000-8000-0000000001{n:02d}" for n in range(1, 5))
ROLE = {"id": "00000000-0000-4000-9000-000000000101", "name": "rec-operators"}
ROLE2 = {"id": "00000000-0000-4000-9000-000000000102", "name": "rec-dbas"}
HOSTS = [f"00000000-0000-4000-a000-0000000001{n:02d}" for n in range(1, 4)]
CHOSEN = {ADMIN, READER, OTHER, OUTSIDER, ROLE["id"], ROLE2["id"], *HOSTS}

# Headers a response carries that vary without the code changing: the request id the service makes
# for a call that brought none. (Content-Length is compared: it follows the body; a Location's id is
# masked as in a body.)
VARYING_HEADERS = {"X-Request-ID"}


# What later requests refer to: {key} in a path or body is the value an answer gave, found by
# (index of the request in the whole list, a function of its JSON).
REMEMBER = {}


def masked(body: bytes) -> bytes:
    return support.masked_ids_and_times(body, CHOSEN)


def _seed() -> list[tuple]:
    """Requests that make the data (their answers are recorded too). A tuple is (method, path,
    who, body, query, remember: key -> function of the answer's JSON)."""
    policy = policy_body(name="rec-policy", max_versions=5)
    exclusive = policy_body(name="rec-exclusive", max_versions=3, max_concurrent_checkouts=1)
    requests = [
        ("POST", "/password-policy", "admin", policy, "", {"policy": lambda j: j["id"]}),
        ("POST", "/password-policy", "admin", exclusive, "", {"exclusive": lambda j: j["id"]}),
    ]
    accounts = [
        {"root": "rec-root-1", "admin": "rec-admin-1", "no-password": None, "a b+c@d=e": "rec-odd-1"},
        {"postgres": "rec-pg-1", "backup": "rec-backup-1"},
        {"svc": "rec-svc-1"},
    ]
    for index, (host, named) in enumerate(zip(HOSTS, accounts)):
        body = host_body("{exclusive}" if index == 2 else "{policy}", accounts=named,
                         roles=[ROLE2] if index == 1 else [ROLE], address=f"10.9.0.{index + 1}")
        requests.append(("POST", f"/host-secret/{host}", "admin", body, "", {}))
    requests += [
        ("POST", f"/set-password/{HOSTS[0]}/root", "admin", {"password": "rec-root-2"}, "", {}),
        ("POST", f"/set-password/{HOSTS[0]}/root", "admin", {"password": "rec-root-3"}, "", {}),
        ("POST", TD, "admin", domain_body(name="rec-domain"), "", {"domain": lambda j: j["id"]}),
        ("SCANNED", "{domain}", None, ["dir-alice", "dir-bob", "dir-carol"], "", {}),
        ("POST", TD + "/{domain}/managedaccounts", "admin",
         {"username": "dir-alice", "password_policy": {"id": "{policy}"}, "explicit_checkout": True,
          "password": "rec-alice-1", "access_roles": [ROLE]}, "", {"alice": lambda j: j["id"]}),
        ("POST", TD + "/{domain}/managedaccounts", "admin",
         {"username": "dir-bob", "password_policy": {"id": "{policy}"}, "explicit_checkout": False,
          "password": "rec-bob-1", "access_roles": [ROLE]}, "", {}),
        ("POST", TD + "/{domain}/managedaccounts/{alice}/password", "admin", {"password": "rec-alice-2"}, "", {}),
    ]
    return requests


def _checks() -> list[tuple]:
    """Lists, searches, checkouts and errors against the seeded data."""
    alice = "targetdomains/{domain}/{alice}"
    return [
        # account lists and searches
        ("GET", "/secrets", "reader", None, "", {}),
        ("GET", "/secrets", "admin", None, "", {}),
        ("GET", "/secrets", "admin", None, "limit=3&offset=2", {}),
        ("GET", "/secrets", "admin", None, "sortkey=username&sortdir=desc", {}),
        ("GET", "/secrets", "other", None, "sortkey=username", {}),
        ("GET", "/secrets", "outsider", None, "", {}),
        ("GET", "/secrets", "reader", None, "limit=101", {}),
        ("GET", "/secrets", "reader", None, "sortkey=nope", {}),
        ("GET", "/secrets", None, None, "", {}),
        ("GET", AUTHORIZER + "/secrets", "reader", None, "limit=2", {}),
        ("POST", "/secrets/search", "reader", {"keywords": "root"}, "", {}),
        ("POST", "/secrets/search", "admin", {"keywords": "10.9.0.2"}, "", {}),
        ("POST", "/secrets/search", "admin", {"keywords": "dir"}, "sortkey=username", {}),
        ("POST", "/secrets/search", "admin", {"host_id": HOSTS[0]}, "", {}),
        ("POST", "/secrets/search", "admin", {"username": "svc"}, "", {}),
        ("POST", "/secrets/search", "admin", {"target_domain_id": "{domain}"}, "", {}),
        ("POST", "/secrets/search", "admin", {"keywords": 7}, "", {}),
        # checkouts of host accounts
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[0]}/root"}, "", {"c1": lambda j: j["items"][0]["id"]}),
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[0]}/root"}, "", {}),
        ("GET", "/secrets/checkouts/{c1}", "reader", None, "", {}),
        ("GET", "/secrets/checkouts/{c1}", "admin", None, "", {}),
        ("GET", "/secrets/checkouts/{c1}", "outsider", None, "", {}),
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[0]}/a b+c@d=e"}, "", {"c2": lambda j: j["items"][0]["id"]}),
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[2]}/svc"}, "", {"c3": lambda j: j["items"][0]["id"]}),
        ("POST", "/secrets/checkouts", "admin", {"path": f"hosts/{HOSTS[2]}/svc"}, "", {}),
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[0]}/no-password"}, "", {}),
        ("POST", "/secrets/checkouts", "reader", {"path": f"hosts/{HOSTS[1]}/postgres"}, "", {}),
        ("POST", "/secrets/checkouts", "reader", {"path": "hosts/nope"}, "", {}),
        ("POST", "/secrets/checkouts", "reader", {}, "", {}),
        # checkouts of a directory account
        ("POST", "/secrets/checkouts", "reader", {"path": alice}, "", {"c4": lambda j: j["items"][0]["id"]}),
        ("GET", "/secrets/checkouts/{c4}", "reader", None, "", {}),
        ("POST", "/secrets/checkouts", "reader", {"path": "targetdomains/{domain}/00000000-0000-4000-8000-000000000000"}, "", {}),
        # the caller's checkouts
        ("GET", "/secrets/checkouts", "reader", None, "", {}),
        ("GET", "/secrets/checkouts", "reader", None, "sortdir=desc&limit=2", {}),
        ("GET", "/secrets/checkouts", "reader", None, "offset=3", {}),
        ("GET", AUTHORIZER + "/secrets/checkouts", "reader", None, "", {}),
        ("GET", "/secrets/checkouts", "other", None, "", {}),
        ("GET", "/secrets/checkouts", "admin", None, "", {}),
        # releases
        ("POST", "/secrets/checkouts/{c1}/release", "reader", None, "", {}),
        ("POST", "/secrets/checkouts/{c1}/release", "reader", None, "", {}),
        ("GET", "/secrets/checkouts/{c1}", "reader", None, "", {}),
        ("POST", "/secrets/checkouts/{c4}/release", "reader", None, "", {}),
        ("POST", "/secrets/checkouts/{c2}/release", "outsider", None, "", {}),
        ("GET", "/secrets/checkouts", "reader", None, "", {}),
        ("GET", "/secrets/checkouts/not-a-uuid", "reader", None, "", {}),
        # a target domain's account lists
        ("GET", TD + "/{domain}/accounts", "admin", None, "", {}),
        ("GET", TD + "/{domain}/accounts", "admin", None, "sortkey=username&sortdir=desc&limit=2", {}),
        ("POST", TD + "/{domain}/accounts/search", "admin", {"keywords": "bob"}, "", {}),
        ("GET", TD + "/{domain}/managedaccounts", "admin", None, "sortkey=username", {}),
        ("GET", TD + "/{domain}/accounts", "reader", None, "", {}),
    ]


@pytest.fixture(scope="module")
def recorded_app(db_server, data_dir, vault_url, token_url, sm_client_secret):
    from secrets_manager_service.app import create_app

    with support.fresh_database(db_server, "sm_recorded") as url:
        app = create_app(support.service_settings(data_dir, url, VAULT_URL=vault_url, SM_TOKEN_URL=token_url,
                                                  SM_CLIENT_SECRET=sm_client_secret, LOG_LEVEL="WARNING"))
        try:
            yield app
        finally:
            app.extensions["db"].close()


def _headers(tokens, who: str | None) -> dict:
    if who is None:
        return {}
    token = {
        "admin": lambda: tokens("admin", sub=ADMIN, roles=[ROLE]),
        "reader": lambda: tokens("user", sub=READER, roles=[ROLE]),
        "other": lambda: tokens("user", sub=OTHER, roles=[ROLE2]),
        "outsider": lambda: tokens("user", sub=OUTSIDER),
    }[who]()
    return {"Authorization": f"Bearer {token}"}


def _filled(value, known: dict):
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: known.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_filled(item, known) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, known) for key, item in value.items()}
    return value


def _answer(app, client, tokens, known: dict, method, path, who, body, query, remember) -> dict:
    if method == "SCANNED":  # accounts as a complete scan writes them (no directory is run)
        for username in body:
            insert_scanned_account(app, _filled(path, known), username)
        return {"request": f"scanned accounts {body}"}
    full = path if path.startswith(AUTHORIZER) else SM + path
    response = client.open(_filled(full, known), method=method, headers=_headers(tokens, who),
                           json=_filled(body, known), query_string=query or None)
    for key, pick in remember.items():
        known[key] = pick(response.get_json())
    return {
        "request": f"{method} {full}{'?' + query if query else ''} as {who}",
        "status": response.status,
        "headers": [[name, masked(value.encode()).decode()] for name, value in response.headers.items()
                    if name not in VARYING_HEADERS],
        "body": masked(response.get_data()).decode("utf-8"),
    }


def test_answers_are_byte_for_byte_the_recorded_ones(recorded_app, tokens):
    client, known = recorded_app.test_client(), {}
    answers = [_answer(recorded_app, client, tokens, known, *request) for request in _seed() + _checks()]
    support.compare_with_recording(answers, RECORDING)
