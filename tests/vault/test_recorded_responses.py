"""The Vault's answers stay byte for byte what they were (issue 25, point 4: made faster, changed in
nothing a client sees).

A fixed list of requests (v1 and versioned reads, writes, lists, search, keys, versions; the
HashiCorp KV v2 routes at /v1/; errors of each family) runs against an app on a database of its
own, seeded with fixed names, subjects and role ids, and each answer is compared with
`recorded_responses.json`, recorded on the code before the speed work: the status, every header
but the ones named in VARYING_HEADERS, and the body's bytes.

Masked, because they differ from one run to the next whatever the code: UUIDs the server makes
(secret ids, KV request ids), times (created/updated, RFC 3339 with or without a fraction), the
X-Request-ID header's value (32 random hex digits: its shape is kept) and Content-Length's (a
KV time's fraction has as many digits as it needs: it is checked to be the body's length). The
UUIDs the test chooses (subjects, role ids) are not masked. Nothing else is.

    RECORD_RESPONSES=1 .venv/bin/python -m pytest tests/vault/test_recorded_responses.py   # re-record
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import support

RECORDING = Path(__file__).with_name("recorded_responses.json")
V1 = "/vault/api/v1"

ADMIN, READER, OUTSIDER, SERVICE, POLICY_USER, OWNER = (
    f"00000000-0000-4000-8000-0000000000{n:02d}" for n in range(1, 7))
ROLE = {"id": "00000000-0000-4000-9000-000000000001", "name": "recorded-readers"}
POLICY_ROLE = {"id": "00000000-0000-4000-9000-000000000002", "name": "recorded-kv"}
CHOSEN = {ADMIN, READER, OUTSIDER, SERVICE, POLICY_USER, OWNER, ROLE["id"], POLICY_ROLE["id"]}

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")



def masked(body: bytes) -> bytes:
    return support.masked_ids_and_times(body, CHOSEN)


def _seed() -> list[tuple]:
    """Requests that make the data (their answers are recorded too)."""
    requests = []
    for index in range(12):
        requests.append(("POST", f"{V1}/secrets", "admin", {
            "name": f"rec-shared-{index:02d}", "data": {"username": f"svc-{index}", "password": f"pw-{index:04d}"},
            "read_roles": [ROLE], "write_roles": [ROLE] if index % 3 == 0 else []}, ""))
    requests.append(("POST", f"{V1}/secrets", "admin", {"name": "rec-hidden", "data": {"k": "v"}}, ""))
    requests.append(("POST", f"{V1}/user/{OWNER}/secrets", "owner", {"name": "rec-mine", "data": {"note": "n"}}, ""))
    for index in range(5):
        requests.append(("POST", f"{V1}/secret/data/rec/app/s{index}", "service",
                         {"data": {"username": "svc", "password": f"v1-{index}"}}, ""))
    requests += [
        ("POST", f"{V1}/secret/data/rec/app/s0", "service", {"data": {"password": "v2"}, "options": {"cas": 1}}, ""),
        ("POST", f"{V1}/secret/data/rec/app/s0", "service", {"data": {"password": "v3"}}, ""),
        ("POST", f"{V1}/secret/data/rec/app/deep/x", "service", {"data": {"a": {"b": 1}}}, ""),
        ("POST", f"{V1}/secret/metadata/rec/app/s1", "service",
         {"max_versions": 4, "custom_metadata": {"owner": "team-a"}}, ""),
        ("PUT", "/v1/secret/data/rec/kv/one", "kv-service", {"data": {"user": "kv", "password": "kv-1"}}, ""),
        ("PUT", "/v1/secret/data/rec/kv/one", "kv-service", {"data": {"user": "kv", "password": "kv-2"}}, ""),
        ("PUT", "/v1/sys/policies/acl/rec-read", "kv-admin",
         {"policy": 'path "secret/data/rec/kv/*" { capabilities = ["read"] }'}, ""),
        ("PUT", f"/v1/identity/group/name/{POLICY_ROLE['name']}", "kv-admin",
         {"type": "external", "policies": ["rec-read"]}, ""),
        ("PUT", f"{V1}/secrets/rec-shared-03", "reader", {"data": {"password": "pw-new"}}, ""),
    ]
    return requests


def _checks() -> list[tuple]:
    """Reads, lists and errors against the seeded data."""
    return [
        # v1
        ("GET", f"{V1}/secrets/rec-shared-01", "reader", None, ""),
        ("GET", f"{V1}/secrets/rec-shared-03", "reader", None, ""),
        ("GET", f"{V1}/metadata/secrets/rec-shared-01", "reader", None, ""),
        ("GET", f"{V1}/secrets", "reader", None, ""),
        ("GET", f"{V1}/secrets", "reader", None, "limit=5&offset=2"),
        ("GET", f"{V1}/secrets", "reader", None, "limit=3&sortdir=desc"),
        ("GET", f"{V1}/secrets", "admin", None, "limit=4"),
        ("GET", f"{V1}/user/{OWNER}/secrets", "owner", None, ""),
        ("GET", f"{V1}/user/{OWNER}/secrets/rec-mine", "owner", None, ""),
        ("POST", f"{V1}/search/secrets", "reader", {"keywords": "rec-shared-0"}, ""),
        ("POST", f"{V1}/search/secrets", "reader", {"keywords": "shared", "filter": "writable"}, "limit=2"),
        ("POST", f"{V1}/search/secrets", "admin", {"keywords": "rec", "owner_id": [OWNER]}, ""),
        ("GET", f"{V1}/secrets/rec-hidden", "reader", None, ""),
        ("GET", f"{V1}/secrets/rec-missing", "reader", None, ""),
        ("GET", f"{V1}/secrets/rec-shared-01", "outsider", None, ""),
        ("GET", f"{V1}/secrets/rec-shared-01", None, None, ""),
        ("GET", f"{V1}/secrets", "reader", None, "limit=abc"),
        ("POST", f"{V1}/secrets", "admin", {"name": "rec-shared-01", "data": {}}, ""),
        ("POST", f"{V1}/secrets", "admin", {"name": "", "data": "x"}, ""),
        ("PUT", f"{V1}/secrets/rec-shared-01", "reader", {"data": {"x": 1}}, ""),
        ("POST", f"{V1}/search/secrets", "reader", {"keywords": 5}, ""),
        # versioned
        ("GET", f"{V1}/secret/data/rec/app/s0", "service", None, ""),
        ("GET", f"{V1}/secret/data/rec/app/s0", "service", None, "version=1"),
        ("GET", f"{V1}/secret/data/rec/app/s0", "service", None, "version=9"),
        ("GET", f"{V1}/secret/data/rec/app/nope", "service", None, ""),
        ("GET", f"{V1}/secret/data/rec/app/s0", "service", None, "version=x"),
        ("POST", f"{V1}/secret/data/rec/app/s2", "service", {"data": {"p": "q"}, "options": {"cas": 7}}, ""),
        ("POST", f"{V1}/secret/data/rec/app/s2", "service", {"data": "nope"}, ""),
        ("GET", f"{V1}/secret/metadata/rec/app/s0", "service", None, ""),
        ("GET", f"{V1}/secret/metadata/rec/app/s1", "service", None, ""),
        ("GET", f"{V1}/secret/keys/rec/app", "service", None, ""),
        ("GET", f"{V1}/secret/keys", "service", None, ""),
        ("GET", f"{V1}/secret/keys/rec/none", "service", None, ""),
        ("GET", f"{V1}/secret/versions/rec/app/s0", "service", None, ""),
        ("GET", f"{V1}/secret/versions/rec/app/s0", "service", None, "page_size=1"),
        ("GET", f"{V1}/secret/data/rec/app/s0", "reader", None, ""),
        ("POST", f"{V1}/secret/delete/rec/app/s4", "service", {"versions": [1]}, ""),
        ("GET", f"{V1}/secret/data/rec/app/s4", "service", None, ""),
        # HashiCorp KV v2 at /v1/
        ("GET", "/v1/secret/data/rec/kv/one", "kv-service", None, ""),
        ("GET", "/v1/secret/data/rec/kv/one", "kv-service", None, "version=1"),
        ("GET", "/v1/secret/data/rec/app/s0", "kv-service", None, ""),
        ("GET", "/v1/secret/data/rec/app/s4", "kv-service", None, ""),
        ("GET", "/v1/secret/data/rec/kv/one", "kv-policy", None, ""),
        ("GET", "/v1/secret/data/rec/app/s0", "kv-policy", None, ""),
        ("GET", "/v1/secret/data/rec/kv/missing", "kv-service", None, ""),
        ("GET", "/v1/secret/metadata/rec/kv/one", "kv-service", None, ""),
        ("GET", "/v1/secret/metadata/rec/app/s1", "kv-service", None, ""),
        ("LIST", "/v1/secret/metadata/rec/app", "kv-service", None, ""),
        ("GET", "/v1/secret/metadata/rec/app/", "kv-service", None, "list=true"),
        ("GET", "/v1/secret/metadata/rec/none", "kv-service", None, "list=true"),
        ("GET", "/v1/secret/subkeys/rec/app/deep/x", "kv-service", None, ""),
        ("GET", "/v1/secret/data/rec/kv/one", None, None, ""),
        ("GET", "/v1/secret/data/rec/kv/one", "kv-service", None, "list=maybe"),
        ("GET", "/v1/secret/data/rec/kv/one", "kv-service", None, "help=1"),
        ("PATCH", "/v1/secret/nosuch/x", "kv-service", None, ""),
        ("DELETE", "/v1/secret/config/x", "kv-service", None, ""),
        ("PUT", "/v1/secret/data/rec/kv/one", "kv-service", {"data": {"x": 1}, "options": {"cas": 1}}, ""),
        ("PUT", "/v1/secret/data/rec/kv/two", "kv-service", {"data": {"x": 1}}, ""),
        ("GET", "/v1/secret/data/rec/kv/two", "kv-service", None, ""),
    ]


@pytest.fixture(scope="module")
def recorded_app(db_server, data_dir, master_keys):
    from vault_service.app import create_app

    with support.fresh_database(db_server, "vault_recorded") as url:
        app = create_app(support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING"))
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
        "outsider": lambda: tokens("user", sub=OUTSIDER),
        "owner": lambda: tokens("user", sub=OWNER),
        "service": lambda: tokens("service", sub=SERVICE),
        "kv-service": lambda: tokens("service", sub=SERVICE),
        "kv-admin": lambda: tokens("admin", sub=ADMIN),
        "kv-policy": lambda: tokens("user", sub=POLICY_USER, roles=[POLICY_ROLE]),
    }[who]()
    if who.startswith("kv-"):
        return {"X-Vault-Token": token, "X-Vault-Request": "true"}
    return {"Authorization": f"Bearer {token}"}


def _masked_header(name: str, value: str, body: bytes) -> str:
    if name == "X-Request-ID" and _REQUEST_ID.fullmatch(value):
        return "<32 hex digits>"
    if name == "Content-Length" and value == str(len(body)):
        return "<the body's length>"
    return value


def _answer(client, tokens, method, path, who, body, query) -> dict:
    response = client.open(path, method=method, headers=_headers(tokens, who), json=body,
                           query_string=query or None)
    raw = response.get_data()
    return {
        "request": f"{method} {path}{'?' + query if query else ''} as {who}",
        "status": response.status,
        "headers": [[name, _masked_header(name, value, raw)] for name, value in response.headers.items()],
        "body": masked(raw).decode("utf-8"),
    }


def test_answers_are_byte_for_byte_the_recorded_ones(recorded_app, tokens):
    client = recorded_app.test_client()
    answers = [_answer(client, tokens, *request) for request in _seed() + _checks()]
    support.compare_with_recording(answers, RECORDING)
