"""Bad bodies, names and sizes: a 4xx in the envelope naming the property, and nothing changes."""
from __future__ import annotations

import json

import pytest

from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


def _post(client, tokens, body, **kw):
    return client.post(f"{V1}/secrets", headers=tokens.headers("admin"), json=body, **kw)


@pytest.mark.parametrize("body, prop, code", [
    ({"data": {}}, "name", "REQUIRED_VALUE_MISSING"),
    ({"name": "x"}, "data", "REQUIRED_VALUE_MISSING"),
    ({"name": 7, "data": {}}, "name", "VALUE_INCORRECT_TYPE"),
    ({"name": "x", "data": "plain string"}, "data", "VALUE_INCORRECT_TYPE"),
    ({"name": "x", "data": [1, 2]}, "data", "VALUE_INCORRECT_TYPE"),
    ({"name": "x", "data": {}, "read_roles": "r"}, "read_roles", "VALUE_INCORRECT_TYPE"),
    ({"name": "x", "data": {}, "read_roles": [{"name": "no id"}]}, "read_roles.0.id", "REQUIRED_VALUE_MISSING"),
    ({"name": "x", "data": {}, "colour": "blue"}, "colour", "INVALID_REQUEST_DATA"),
])
def test_bad_create_bodies(client, tokens, body, prop, code):
    assert_error(_post(client, tokens, body), 400, code, prop)


def test_every_bad_field_is_listed(client, tokens):
    body = assert_error(_post(client, tokens, {"name": 1, "data": 2}), 400, "INVALID_REQUEST_DATA")
    assert {d["property"] for d in body["details"]} == {"name", "data"}


@pytest.mark.parametrize("name", ["", "/lead", "trail/", "dou//ble", "semi;colon", "a/../b", ".", "..", "./a", "a/.", "a/./b", "x" * 257, "tab\tname", "é"])
def test_bad_names_are_400(client, tokens, name):
    assert_error(_post(client, tokens, {"name": name, "data": {}}), 400, "VALUE_INCORRECT_FORMAT", "name")


def test_all_allowed_characters_work(client, tokens):
    role = new_role()
    name = unique("Az09._-@ +=/seg")
    create_shared(client, tokens, name=name, read_roles=[role])
    from urllib.parse import quote

    response = client.get(f"{V1}/secrets/{quote(name, safe='')}", headers=tokens.headers("user", roles=[role]))
    assert response.status_code == 200 and response.json["name"] == name


def test_data_over_64_kib_is_400(client, tokens):
    name = unique("big")
    big = {"blob": "x" * (64 * 1024)}
    assert_error(_post(client, tokens, {"name": name, "data": big}), 400, "VALUE_OUT_OF_BOUNDS", "data")
    assert_error(client.get(f"{V1}/metadata/secrets/{name}", headers=tokens.headers("admin")), 404, "OBJECT_NOT_FOUND")


def test_data_just_under_the_limit_is_accepted(client, tokens):
    blob = "x" * (64 * 1024 - len('{"blob":""}'))
    assert _post(client, tokens, {"name": unique("edge"), "data": {"blob": blob}}).status_code == 201


def test_data_nested_too_deep_is_400(client, tokens):
    deep = {}
    node = deep
    for _ in range(40):
        node["n"] = {}
        node = node["n"]
    assert_error(_post(client, tokens, {"name": unique("deep"), "data": deep}), 400, "VALUE_OUT_OF_BOUNDS", "data")


def test_json_nested_beyond_the_parser_is_400_not_500(client, tokens):
    body = '{"name": "x", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(f"{V1}/secrets", headers={**tokens.headers("admin"), "Content-Type": "application/json"}, data=body)
    assert_error(response, 400, "INVALID_REQUEST_DATA")


def test_body_over_1_mib_is_413(client, tokens):
    body = json.dumps({"name": unique("huge"), "data": {"b": "x" * (1024 * 1024)}})
    response = client.post(f"{V1}/secrets", headers={**tokens.headers("admin"), "Content-Type": "application/json"}, data=body)
    assert_error(response, 413, "OUT_OF_RESOURCES")


@pytest.mark.parametrize("raw", ["{not json", '{"name": "x", "data": {"n": NaN}}', b"\xff\xfe{}"])
def test_malformed_json_is_400(client, tokens, raw):
    response = client.post(f"{V1}/secrets", headers={**tokens.headers("admin"), "Content-Type": "application/json"}, data=raw)
    assert_error(response, 400, "BAD_REQUEST")


def test_update_with_bad_body_changes_nothing(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role], write_roles=[role])
    member = tokens.headers("user", roles=[role])
    assert_error(client.put(f"{V1}/secrets/{name}", headers=member, json={"data": {"ok": 1}, "read_roles": "x"}),
                 400, "VALUE_INCORRECT_TYPE", "read_roles")
    assert client.get(f"{V1}/secrets/{name}", headers=member).json["data"] == {"password": f"pw-{name}"}


def test_router_errors_use_the_envelope(client, tokens):
    assert_error(client.get(f"{V1}/no-such-route"), 404, "OBJECT_NOT_FOUND")
    assert_error(client.patch(f"{V1}/secrets"), 405, "BAD_REQUEST")


def test_openapi_document_and_docs_page(client):
    spec = client.get(f"{V1}/openapi.json")
    assert spec.status_code == 200
    paths = spec.json["paths"]
    for path in ("/vault/api/v1/secrets", "/vault/api/v1/secret/data/{path}", "/vault/api/v1/search/secrets",
                 "/vault/api/v1/user/{user_id}/secrets/{name}", "/vault/api/v1/secret/versions/{path}"):
        assert path in paths
    assert paths["/vault/api/v1/secrets"]["post"]["summary"] == "Create a shared secret"
    assert client.get(f"{V1}/docs").status_code == 200
