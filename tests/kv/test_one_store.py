"""One store, two APIs: /v1/secret/data/a/b, /vault/api/v1/secret/data/a/b and the shared
secret a/b are one row, with one version counter and one check-and-set, under gunicorn."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
import requests

from tests.support import new_role, unique

pytestmark = pytest.mark.slow

PRIVX = "/vault/api/v1"


@pytest.fixture()
def privx(kv_base):
    """The PrivX APIs of the same server, with a bearer token."""
    session = requests.Session()

    def call(method, path, token, **kwargs):
        return session.request(method, kv_base + PRIVX + path, headers={"Authorization": f"Bearer {token}"},
                               timeout=15, **kwargs)

    yield call
    session.close()


def test_a_version_written_through_v1_kv_reads_through_the_versioned_api_and_back(http, privx, service_token):
    path = unique("one/app") + "/db"
    assert http("POST", f"/v1/secret/data/{path}", token=service_token, json={"data": {"pw": "kv-1"}}).status_code == 200
    versioned = privx("GET", f"/secret/data/{path}", service_token)
    assert versioned.status_code == 200 and versioned.json()["data"] == {"pw": "kv-1"}
    assert versioned.json()["metadata"]["version"] == 1

    # The next version through the versioned API, guarded by the same counter.
    assert privx("POST", f"/secret/data/{path}", service_token, json={"data": {"pw": "v2-2"}, "options": {"cas": 1}}).json()[
        "version"] == 2
    kv = http("GET", f"/v1/secret/data/{path}", token=service_token).json()["data"]
    assert kv["data"] == {"pw": "v2-2"} and kv["metadata"]["version"] == 2

    # One check-and-set: a stale cas fails on both, and the KV write after it is version 3.
    stale_kv = http("POST", f"/v1/secret/data/{path}", token=service_token, json={"data": {}, "options": {"cas": 1}})
    assert stale_kv.status_code == 400
    assert privx("POST", f"/secret/data/{path}", service_token, json={"data": {}, "options": {"cas": 1}}).status_code == 409
    assert http("POST", f"/v1/secret/data/{path}", token=service_token,
                json={"data": {"pw": "kv-3"}, "options": {"cas": 2}}).json()["data"]["version"] == 3
    metadata = privx("GET", f"/secret/metadata/{path}", service_token).json()
    assert metadata["metadata"]["current_version"] == 3 and [v["version"] for v in metadata["versions"]] == [1, 2, 3]


def test_deletes_and_settings_made_through_one_show_in_the_other(http, privx, service_token):
    path = unique("one/lifecycle")
    for value in range(3):
        http("POST", f"/v1/secret/data/{path}", token=service_token, json={"data": {"v": value}})
    assert privx("POST", f"/secret/delete/{path}", service_token, json={"versions": [3]}).status_code == 200
    assert http("GET", f"/v1/secret/data/{path}", token=service_token).status_code == 404  # no fallback on /v1
    assert privx("GET", f"/secret/data/{path}", service_token).json()["metadata"]["version"] == 2  # PrivX falls back
    assert http("POST", f"/v1/secret/undelete/{path}", token=service_token, json={"versions": [3]}).status_code == 204
    assert privx("GET", f"/secret/data/{path}", service_token).json()["metadata"]["version"] == 3
    assert http("POST", f"/v1/secret/destroy/{path}", token=service_token, json={"versions": [1]}).status_code == 204
    assert privx("GET", f"/secret/data/{path}?version=1", service_token).status_code == 404

    assert privx("POST", f"/secret/metadata/{path}", service_token, json={"max_versions": 2, "cas_required": True}).status_code == 200
    kv_meta = http("GET", f"/v1/secret/metadata/{path}", token=service_token).json()["data"]
    assert kv_meta["max_versions"] == 2 and kv_meta["cas_required"] is True and sorted(kv_meta["versions"]) == ["2", "3"]
    assert http("POST", f"/v1/secret/data/{path}", token=service_token, json={"data": {}}).status_code == 400
    assert privx("POST", f"/secret/metadata/{path}", service_token, json={"max_versions": 0}).json()["metadata"]["max_versions"] == 0
    assert http("GET", f"/v1/secret/metadata/{path}", token=service_token).json()["data"]["max_versions"] == 0  # keep all

    assert http("DELETE", f"/v1/secret/metadata/{path}", token=service_token).status_code == 204
    assert privx("GET", f"/secret/metadata/{path}", service_token).status_code == 404


def test_the_v1_secret_routes_see_the_same_secret(http, privx, tokens, service_token):
    role = new_role("readers")
    reader = tokens("user", roles=[role])
    admin = tokens("admin", roles=[role])
    name = unique("one/shared") + "/app"
    created = privx("POST", "/secrets", admin, json={"name": name, "data": {"pw": "v1-1"}, "read_roles": [role],
                                                     "write_roles": [role]})
    assert created.status_code == 201, created.text

    # Written through /v1 (KV), read through PrivX's v1 route, by name with %2F too.
    assert http("POST", f"/v1/secret/data/{name}", token=service_token,
                json={"data": {"pw": "kv-2"}, "options": {"cas": 1}}).json()["data"]["version"] == 2
    for spelled in (name, quote(name, safe="")):
        read = privx("GET", f"/secrets/{spelled}", reader)
        assert read.status_code == 200 and read.json()["data"] == {"pw": "kv-2"}, spelled

    # Written through v1, read through /v1 as version 3.
    assert privx("PUT", f"/secrets/{quote(name, safe='')}", reader, json={"data": {"pw": "v1-3"}}).status_code == 200
    kv = http("GET", f"/v1/secret/data/{name}", token=service_token).json()["data"]
    assert kv["data"] == {"pw": "v1-3"} and kv["metadata"]["version"] == 3


def test_a_secret_created_through_kv_is_listed_for_managers_with_empty_roles(http, privx, tokens, service_token):
    name = unique("one/created-by-kv")
    http("PUT", f"/v1/secret/data/{name}", token=service_token, json={"data": {"pw": "x"}})
    listed = privx("POST", "/search/secrets", tokens("admin"), json={"keywords": name}).json()
    assert listed["count"] == 1
    item = listed["items"][0]
    assert item["name"] == name and item["read_roles"] == [] and item["write_roles"] == [] and "data" not in item
    assert privx("GET", f"/metadata/secrets/{quote(name, safe='')}", tokens("vaultManage")).status_code == 200


def test_kv_operations_are_in_the_audit_trail(http, privx, tokens, service_token):
    path = unique("one/audited")
    http("POST", f"/v1/secret/data/{path}", token=service_token, json={"data": {"pw": "secret-value"}})
    http("GET", f"/v1/secret/data/{path}", token=service_token)
    events = privx("GET", "/audit-events", tokens("admin"), params={"target": f"secret:{path}"}).json()["items"]
    assert sorted(event["action"] for event in events) == ["secret.read", "secret.write"]
    assert "secret-value" not in str(events)


def test_personal_secrets_are_not_on_the_mount(http, privx, tokens, service_token):
    owner = str(uuid.uuid4())
    name = unique("one/personal")
    created = privx("POST", f"/user/{owner}/secrets", tokens("user", sub=owner), json={"name": name, "data": {"pw": "mine"}})
    assert created.status_code == 201, created.text
    assert http("GET", f"/v1/secret/data/{name}", token=service_token).json() == {"errors": []}
    assert http("GET", f"/v1/secret/metadata/{name}", token=service_token).status_code == 404
