"""The contract's "Everywhere" edges, through the real gunicorn stack (deploy/gunicorn/vault.conf.py):
integers out of range, text PostgreSQL cannot store, lax JSON, bodies of any Content-Type,
authentication before validation, echoed and Go zero-valued fields, gunicorn's own limits."""
from __future__ import annotations

import base64
import uuid

import pytest
import requests

from tests.edges import INT32_OVERFLOW, INT64_OVERFLOW, chunked, expect, raw_json, served, with_headers
from tests.vault.helpers import V1, new_role, unique

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(vault_config):
    with served("vault_service.wsgi:app", vault_config, conf="vault.conf.py", health_path=f"{V1}/status") as url:
        yield url + V1


@pytest.fixture(scope="module")
def admin(tokens):
    return tokens.headers("admin")


@pytest.fixture(scope="module")
def service(tokens):
    return tokens.headers("service")


def _shared(base, admin, **extra) -> str:
    name = unique("edge")
    response = requests.post(f"{base}/secrets", headers=admin, json={"name": name, "data": {"k": "v"}, **extra})
    assert response.status_code == 201, response.text
    return name


# --- integers out of range: 400, never 500 or 503 -------------------------------------------

@pytest.mark.parametrize("route", ["/secrets", "/user/{user}/secrets", "/audit-events", "/search/secrets"])
def test_offset_beyond_int64_in_the_query_is_400(base, tokens, route):
    user = str(uuid.uuid4())
    headers = tokens.headers("admin vaultManage", sub=user)
    method = requests.post if route.startswith("/search") else requests.get
    response = method(base + route.format(user=user), params={"offset": INT64_OVERFLOW}, headers=headers)
    expect(response, 400, "VALUE_OUT_OF_BOUNDS", "offset")


@pytest.mark.parametrize("field", ["offset", "limit"])
def test_paging_beyond_int64_in_the_search_body_is_400(base, admin, field):
    response = requests.post(f"{base}/search/secrets", headers=admin, json={field: INT64_OVERFLOW})
    expect(response, 400, "VALUE_OUT_OF_BOUNDS", field)


def test_version_beyond_int32_is_400_not_an_outage(base, service):
    path = unique("edge")
    assert requests.post(f"{base}/secret/data/{path}", headers=service, json={"data": {"a": 1}}).status_code == 200
    expect(requests.get(f"{base}/secret/data/{path}", params={"version": INT32_OVERFLOW}, headers=service),
           400, "VALUE_OUT_OF_BOUNDS", "version")
    for body, prop in (({"data": {"a": 2}, "options": {"cas": INT64_OVERFLOW}}, "options.cas"),):
        expect(requests.post(f"{base}/secret/data/{path}", headers=service, json=body), 400, "VALUE_OUT_OF_BOUNDS", prop)
    expect(requests.post(f"{base}/secret/delete/{path}", headers=service, json={"versions": [INT32_OVERFLOW]}),
           400, "VALUE_OUT_OF_BOUNDS", "versions.0")
    token = base64.urlsafe_b64encode(f"v{INT32_OVERFLOW}".encode()).decode().rstrip("=")
    expect(requests.get(f"{base}/secret/versions/{path}", params={"page_token": token}, headers=service),
           400, "VALUE_INCORRECT_FORMAT", "page_token")


# --- text PostgreSQL (or UTF-8) cannot hold: 400 naming the property --------------------------

@pytest.mark.parametrize("method, route, body, prop", [
    ("post", "/secrets", '{"name": "n\\u0000", "data": {}}', "name"),
    ("post", "/secrets", '{"name": "NAME", "data": {}, "read_roles": [{"id": "r\\u0000"}]}', "read_roles.0.id"),
    ("post", "/secrets", '{"name": "NAME", "data": {}, "write_roles": [{"id": "r", "name": "\\u0000"}]}',
     "write_roles.0.name"),
    ("post", "/secrets", '{"name": "NAME", "data": {"k": "\\ud800"}}', "data.k"),
    ("post", "/secrets", '{"name": "NAME", "data": {"\\udfff": 1}}', "data"),
    ("post", "/secrets", '{"name": "NAME", "data": {}, "read_roles": [{"id": "\\ud800"}]}', "read_roles.0.id"),
    ("post", "/search/secrets", '{"keywords": "a\\u0000"}', "keywords"),
    ("post", "/search/secrets", '{"owner_id": ["\\u0000"]}', "owner_id.0"),
    ("post", "/secret/data/PATH", '{"data": {"x": ["\\u0000"]}}', "data.x.0"),
    ("post", "/secret/metadata/PATH", '{"custom_metadata": {"k": "v\\u0000"}}', "custom_metadata.k"),
])
def test_unstorable_text_in_a_body_is_400(base, tokens, method, route, body, prop):
    headers = tokens.headers("admin service")
    response = getattr(requests, method)(base + route.replace("PATH", unique("edge")),
                                         **with_headers(raw_json(body.replace("NAME", unique("edge"))), headers))
    expect(response, 400, prop=prop)


@pytest.mark.parametrize("route, params, prop", [
    ("/user/{user}/secrets", {"sortkey": "\x00"}, "sortkey"),
    ("/secrets", {"sortkey": "name\x00"}, "sortkey"),
    ("/audit-events", {"principal": "\x00"}, "principal"),
    ("/audit-events", {"target": "x\x00y"}, "target"),
    ("/secrets/a%00b", {}, "name"),
])
def test_nul_in_the_url_is_400(base, admin, route, params, prop):
    route = route.format(user=uuid.uuid4())
    expect(requests.get(base + route, params=params, headers=admin), 400, prop=prop)


@pytest.mark.parametrize("user_id", ["a%00b", "null,null", "not-a-uuid"])
def test_a_user_id_that_is_no_uuid_is_400(base, tokens, user_id):
    expect(requests.get(f"{base}/user/{user_id}/secrets", headers=tokens.headers("vaultManage")), 400,
           "VALUE_INCORRECT_FORMAT", "user_id")


# --- bodies: JSON whatever the Content-Type, strictly ----------------------------------------

@pytest.mark.parametrize("route, body, prop", [
    ("/search/secrets", {"limit": True}, "limit"),
    ("/secret/metadata/PATH", {"cas_required": 0}, "cas_required"),
    ("/secrets", {"name": "NAME", "data": {}, "read_roles": [{"id": "r", "deleted": 1}]}, "read_roles.0.deleted"),
])
def test_json_types_are_not_coerced(base, tokens, route, body, prop):
    """true is not 1 and 0 is not false, though Python says they are equal."""
    route, body = route.replace("PATH", unique("edge")), {k: (unique("edge") if v == "NAME" else v) for k, v in body.items()}
    expect(requests.post(base + route, json=body, headers=tokens.headers("admin service")), 400, "VALUE_INCORRECT_TYPE", prop)


def test_a_body_is_json_whatever_its_content_type(base, admin):
    role = new_role()
    name = _shared(base, admin, read_roles=[role])
    # curl -X PUT -d '{...}' sends application/x-www-form-urlencoded: a revocation must not be lost.
    response = requests.put(f"{base}/secrets/{name}", data=b'{"read_roles": []}',
                            headers={**admin, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert requests.get(f"{base}/metadata/secrets/{name}", headers=admin).json()["read_roles"] == []
    created = requests.post(f"{base}/secrets", data=f'{{"name": "{unique("edge")}", "data": {{}}}}'.encode(),
                            headers={**admin, "Content-Type": "text/plain"})
    assert created.status_code == 201, created.text
    no_type = requests.post(f"{base}/secrets", data=f'{{"name": "{unique("edge")}", "data": {{}}}}'.encode(),
                            headers=admin)
    assert no_type.status_code == 201, no_type.text


@pytest.mark.parametrize("body", [b"name=x&data=y", b"{} {}", b'{"name": "x"', b"\xff\xfe{}", b'{"data": NaN}',
                                  b'{"data": {"n": Infinity}}'])
def test_a_body_that_is_not_one_json_value_is_400(base, admin, body):
    response = requests.post(f"{base}/secrets", data=body, headers={**admin, "Content-Type": "text/plain"})
    expect(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", [b" \t\r\n", b"\n", b"\x93\x01\xff", b"\x1c", b"x"])
def test_an_optional_body_that_is_not_one_json_value_is_400(base, admin, body):
    """The search's body is optional: none at all is a search with the defaults, but bytes that
    are not one JSON value (whitespace alone included) are 400, never read as no body."""
    response = requests.post(f"{base}/search/secrets", data=body, headers={**admin, "Content-Type": "application/json"})
    expect(response, 400, "BAD_REQUEST")
    assert requests.post(f"{base}/search/secrets", data=b"", headers=admin).status_code == 200


def test_duplicate_keys_are_400(base, admin):
    body = '{"name": "NAME", "data": {"k": 1, "k": 2}}'.replace("NAME", unique("edge"))
    expect(requests.post(f"{base}/secrets", **with_headers(raw_json(body), admin)), 400, "VALUE_DUPLICATE", "k")


def test_a_number_json_reads_as_infinity_is_400(base, admin):
    body = '{"name": "NAME", "data": {"n": 1e400}}'.replace("NAME", unique("edge"))
    expect(requests.post(f"{base}/secrets", **with_headers(raw_json(body), admin)), 400, "VALUE_OUT_OF_BOUNDS",
           "data.n")


def test_a_chunked_body_over_one_mebibyte_is_413_never_cut(base, admin):
    name = unique("edge")
    head = f'{{"name": "{name}", "data": {{"k": "v"}}}}'.encode()
    body = head + b" " * (1024 * 1024 + 1 - len(head))  # valid JSON in the first MiB, one byte more
    response = requests.post(f"{base}/secrets", data=chunked(body), headers={**admin, "Content-Type": "application/json"})
    expect(response, 413, "OUT_OF_RESOURCES")
    assert requests.get(f"{base}/metadata/secrets/{name}", headers=admin).status_code == 404
    exact = head + b" " * (1024 * 1024 - len(head))
    response = requests.post(f"{base}/secrets", data=chunked(exact), headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 201, response.text


# --- authentication first -------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
@pytest.mark.parametrize("method, route, body", [
    ("post", "/secrets", b"{}"), ("post", "/secrets", b"not json"), ("put", "/secrets/x", b'{"bogus": 1}'),
    ("post", "/search/secrets", b'{"offset": -1}'), ("post", "/secret/data/x", b"[]"),
    ("post", f"/user/{uuid.uuid4()}/secrets", b"{}"),
])
def test_no_or_bad_token_is_401_whatever_the_body(base, headers, method, route, body):
    response = getattr(requests, method)(base + route, data=body, headers={**headers, "Content-Type": "application/json"})
    expect(response, 401, "UNAUTHORIZED")


def test_no_token_is_401_whatever_the_query(base):
    expect(requests.get(f"{base}/secrets", params={"offset": "x"}), 401, "UNAUTHORIZED")


# --- what real clients send back -----------------------------------------------------------

def test_a_put_of_what_a_get_returned_is_accepted(base, tokens):
    user = str(uuid.uuid4())
    owner = tokens.headers("user", sub=user)
    name = unique("edge")
    created = requests.post(f"{base}/user/{user}/secrets", headers=owner,
                            json={"name": name, "owner_id": user, "data": {"a": 1}, "read_roles": None})
    assert created.status_code == 201, created.text
    read = requests.get(f"{base}/user/{user}/secrets/{name}", headers=owner).json()
    assert {"author", "path", "created", "updated", "updated_by", "owner_id", "name"} <= set(read)
    read["data"] = {"a": 2}
    assert requests.put(f"{base}/user/{user}/secrets/{name}", headers=owner, json=read).status_code == 200
    assert requests.get(f"{base}/user/{user}/secrets/{name}", headers=owner).json()["data"] == {"a": 2}

    expect(requests.put(f"{base}/user/{user}/secrets/{name}", headers=owner, json={**read, "name": "other"}),
           400, "INVALID_REQUEST_DATA", "name")
    expect(requests.put(f"{base}/user/{user}/secrets/{name}", headers=owner,
                        json={**read, "owner_id": str(uuid.uuid4())}), 400, "INVALID_REQUEST_DATA", "owner_id")
    expect(requests.put(f"{base}/user/{user}/secrets/{name}", headers=owner, json={**read, "colour": "red"}),
           400, "INVALID_REQUEST_DATA", "colour")
    expect(requests.post(f"{base}/user/{user}/secrets", headers=owner,
                         json={"name": unique("edge"), "owner_id": str(uuid.uuid4()), "data": {}}),
           400, "INVALID_REQUEST_DATA", "owner_id")


def test_a_shared_secret_put_echoes_its_name(base, admin):
    name = _shared(base, admin)
    read = requests.get(f"{base}/metadata/secrets/{name}", headers=admin).json()
    assert requests.put(f"{base}/secrets/{name}", headers=admin, json=read).status_code == 200
    expect(requests.put(f"{base}/secrets/{name}", headers=admin, json={"name": name + "x"}), 400, prop="name")
    # No user_id in a shared secret's URL: an owner_id there is an unknown field.
    expect(requests.put(f"{base}/secrets/{name}", headers=admin, json={"owner_id": "someone"}), 400, prop="owner_id")


def test_the_go_sdk_zero_valued_models_are_accepted(base, tokens):
    """privx-sdk-go api/vault: Secret (omitempty on all but name) and SecretSearchRequest."""
    user = str(uuid.uuid4())
    owner = tokens.headers("user", sub=user)
    name = unique("edge")
    secret = {"name": name, "data": {"password": "pw"}}
    assert requests.post(f"{base}/user/{user}/secrets", headers=owner, json=secret).status_code == 201
    update = {"name": name, "read_roles": None, "write_roles": None, "data": None, "author": "", "updated_by": "",
              "created": "", "updated": ""}
    assert requests.put(f"{base}/user/{user}/secrets/{name}", headers=owner, json=update).status_code == 200
    assert requests.get(f"{base}/user/{user}/secrets/{name}", headers=owner).json()["data"] == {"password": "pw"}
    search = requests.post(f"{base}/search/secrets", headers=owner, json={"keywords": "", "filter": "", "owner_id": None})
    assert search.status_code == 200, search.text
    assert name in [item["name"] for item in search.json()["items"]]
    assert requests.post(f"{base}/secret/data/{unique('edge')}", headers=tokens.headers("service"),
                         json={"data": {"a": 1}, "options": None}).status_code == 200


# --- what gunicorn answers itself, in the envelope ------------------------------------------

def test_a_token_over_8_kib_is_401_in_the_envelope(base, tokens):
    token = tokens("admin") + "A" * (8 * 1024)
    expect(requests.get(f"{base}/secrets", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHORIZED")
    huge = "A" * (1024 * 1024)
    response = requests.get(f"{base}/secrets", headers={"Authorization": f"Bearer {huge}"})
    expect(response, 401, "UNAUTHORIZED")


def test_a_long_url_is_414_in_the_envelope(base, admin):
    expect(requests.get(f"{base}/secrets/{'a' * 9000}", headers=admin), 414)
    expect(requests.get(f"{base}/secrets", params={"x": "y" * 100_000}, headers=admin), 414)


def test_405_names_the_allowed_methods(base, admin):
    response = requests.patch(f"{base}/secrets", headers=admin, json={})
    expect(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
