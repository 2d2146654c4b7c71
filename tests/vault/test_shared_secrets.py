"""The v1 shared-secret API: create, read, update, delete, access rules, listing."""
from __future__ import annotations

import re

import pytest

from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_returns_201_name_and_location(client, tokens):
    name = unique("db/prod")
    response = client.post(f"{V1}/secrets", headers=tokens.headers("vaultAdd"), json={"name": name, "data": {"k": "v"}})
    assert response.status_code == 201
    assert response.json == {"name": name}
    # The name as one path segment: a client reading {name} off the template gets all of it.
    assert response.headers["Location"] == f"{V1}/secrets/{name.replace('/', '%2F')}"


def test_roles_come_back_in_the_order_given_with_their_names(client, tokens):
    roles = [new_role(f"r{i}") for i in range(4)]
    given = [roles[2], roles[0], roles[3], roles[1]]
    name = unique("ordered")
    client.post(f"{V1}/secrets", headers=tokens.headers("admin"),
                json={"name": name, "data": {}, "read_roles": given, "write_roles": given[::-1]})
    body = client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[roles[0]])).json
    assert body["read_roles"] == [{"id": r["id"], "name": r["name"], "deleted": False} for r in given]
    assert body["write_roles"] == [{"id": r["id"], "name": r["name"], "deleted": False} for r in given[::-1]]


def test_create_twice_is_409(client, tokens):
    name = create_shared(client, tokens)
    response = client.post(f"{V1}/secrets", headers=tokens.headers("admin"), json={"name": name, "data": {}})
    assert_error(response, 409, "VALUE_DUPLICATE", "name")


def test_reader_gets_the_whole_secret_object(client, tokens):
    role = new_role("readers")
    author_sub = "11111111-2222-4333-8444-555555555555"
    name = unique("app")
    client.post(f"{V1}/secrets", headers=tokens.headers("admin", sub=author_sub),
                json={"name": name, "data": {"password": "s3cr3t", "n": [1, 2]}, "read_roles": [role]})
    body = client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role])).json
    assert list(body) == ["name", "data", "read_roles", "write_roles", "author", "path", "updated_by", "created", "updated"]
    assert body["data"] == {"password": "s3cr3t", "n": [1, 2]}
    assert body["read_roles"] == [{"id": role["id"], "name": role["name"], "deleted": False}]
    assert body["write_roles"] == []
    assert body["author"] == body["updated_by"] == author_sub
    assert body["path"] == f"{V1}/secrets/{name}"
    assert RFC3339.match(body["created"]) and RFC3339.match(body["updated"])


def test_percent_encoded_slash_reaches_the_same_secret(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, name=unique("team/app/db"), read_roles=[role])
    reader = tokens.headers("user", roles=[role])
    plain = client.get(f"{V1}/secrets/{name}", headers=reader)
    encoded = client.get(f"{V1}/secrets/{name.replace('/', '%2F')}", headers=reader)
    assert plain.status_code == encoded.status_code == 200
    assert plain.json == encoded.json


def test_writer_without_read_role_gets_403_on_read(client, tokens):
    writer_role = new_role()
    name = create_shared(client, tokens, write_roles=[writer_role])
    assert_error(client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[writer_role])),
                 403, "PERMISSION_DENIED")


def test_admin_without_read_role_cannot_read_data_but_sees_metadata(client, tokens):
    name = create_shared(client, tokens, read_roles=[new_role()])
    admin = tokens.headers("admin")
    assert_error(client.get(f"{V1}/secrets/{name}", headers=admin), 403, "PERMISSION_DENIED")
    meta = client.get(f"{V1}/metadata/secrets/{name}", headers=admin)
    assert meta.status_code == 200 and "data" not in meta.json and meta.json["name"] == name


def test_missing_secret_is_404(client, tokens):
    assert_error(client.get(f"{V1}/secrets/{unique('nope')}", headers=tokens.headers("user")), 404, "OBJECT_NOT_FOUND")


def test_update_data_makes_a_new_version_readers_see(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role], write_roles=[role])
    member = tokens.headers("user", roles=[role])
    response = client.put(f"{V1}/secrets/{name}", headers=member, json={"data": {"password": "new"}})
    assert response.status_code == 200 and response.data == b""
    assert client.get(f"{V1}/secrets/{name}", headers=member).json["data"] == {"password": "new"}
    versions = client.get(f"{V1}/secret/metadata/{name}", headers=tokens.headers("service")).json["metadata"]
    assert versions["current_version"] == 2


def test_update_as_privx_clients_send_it(client, tokens):
    # The PrivX Go SDK echoes the name and sends "data": null when only the roles change.
    role, new_reader = new_role(), new_role()
    name = create_shared(client, tokens, data={"a": 1}, read_roles=[role], write_roles=[role])
    member = tokens.headers("user", roles=[role])
    response = client.put(f"{V1}/secrets/{name}", headers=member,
                          json={"name": name, "data": None, "read_roles": [role, new_reader], "write_roles": [role]})
    assert response.status_code == 200
    body = client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[new_reader])).json
    assert body["data"] == {"a": 1}
    assert [r["id"] for r in body["read_roles"]] == [role["id"], new_reader["id"]]


def test_reader_cannot_update(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role])
    reader = tokens.headers("user", roles=[role])
    assert_error(client.put(f"{V1}/secrets/{name}", headers=reader, json={"data": {"x": 1}}), 403, "PERMISSION_DENIED")
    assert client.get(f"{V1}/secrets/{name}", headers=reader).json["data"] == {"password": f"pw-{name}"}


def test_manager_may_change_roles_but_not_data(client, tokens):
    name = create_shared(client, tokens, read_roles=[new_role()])
    manager = tokens.headers("vaultManage")
    assert client.put(f"{V1}/secrets/{name}", headers=manager, json={"read_roles": []}).status_code == 200
    assert_error(client.put(f"{V1}/secrets/{name}", headers=manager, json={"data": {"x": 1}}), 403, "PERMISSION_DENIED")


def test_delete_by_writer_removes_every_version(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role], write_roles=[role])
    member = tokens.headers("user", roles=[role])
    response = client.delete(f"{V1}/secrets/{name}", headers=member)
    assert response.status_code == 200 and response.data == b""
    assert_error(client.get(f"{V1}/secrets/{name}", headers=member), 404, "OBJECT_NOT_FOUND")
    assert_error(client.get(f"{V1}/secret/metadata/{name}", headers=tokens.headers("service")), 404, "OBJECT_NOT_FOUND")


def test_reader_cannot_delete_and_outsider_gets_404(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role])
    assert_error(client.delete(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role])), 403, "PERMISSION_DENIED")
    assert_error(client.delete(f"{V1}/secrets/{name}", headers=tokens.headers("user")), 404, "OBJECT_NOT_FOUND")
    assert client.get(f"{V1}/metadata/secrets/{name}", headers=tokens.headers("admin")).status_code == 200


# --- listing ---------------------------------------------------------------

def _names(response):
    assert response.status_code == 200, response.json
    return [item["name"] for item in response.json["items"]]


def test_list_shows_only_visible_secrets_with_data_where_readable(client, tokens):
    reader, writer = new_role(), new_role()
    readable = create_shared(client, tokens, read_roles=[reader])
    writable = create_shared(client, tokens, write_roles=[writer])
    hidden = create_shared(client, tokens, read_roles=[new_role()])
    response = client.get(f"{V1}/secrets", headers=tokens.headers("user", roles=[reader, writer]))
    items = {item["name"]: item for item in response.json["items"]}
    assert set(items) == {readable, writable} and response.json["count"] == 2
    assert items[readable]["data"] == {"password": f"pw-{readable}"}
    assert "data" not in items[writable]
    assert hidden not in items


def test_list_paging_sorting_and_count(client, tokens):
    role = new_role()
    prefix = unique("page")
    names = [create_shared(client, tokens, name=f"{prefix}-{i}", read_roles=[role]) for i in range(5)]
    member = tokens.headers("user", roles=[role])
    first = client.get(f"{V1}/secrets?limit=2&offset=0&sortkey=name&sortdir=asc", headers=member)
    assert first.json["count"] == 5 and _names(first) == names[:2]
    last = client.get(f"{V1}/secrets?limit=2&offset=4&sortkey=NAME&sortdir=ASC", headers=member)
    assert _names(last) == names[4:]
    desc = client.get(f"{V1}/secrets?sortdir=desc", headers=member)
    assert _names(desc) == names[::-1]
    beyond = client.get(f"{V1}/secrets?offset=50", headers=member)
    assert beyond.json == {"count": 5, "items": []}


@pytest.mark.parametrize("query, prop, code", [
    ("limit=101", "limit", "VALUE_OUT_OF_BOUNDS"),
    ("limit=-1", "limit", "VALUE_OUT_OF_BOUNDS"),
    ("offset=-1", "offset", "VALUE_OUT_OF_BOUNDS"),
    ("limit=ten", "limit", "VALUE_INCORRECT_TYPE"),
    ("sortkey=password", "sortkey", "VALUE_INCORRECT_FORMAT"),
    ("sortdir=sideways", "sortdir", "VALUE_INCORRECT_FORMAT"),
])
def test_bad_list_parameters_are_400(client, tokens, query, prop, code):
    assert_error(client.get(f"{V1}/secrets?{query}", headers=tokens.headers("user")), 400, code, prop)


def test_manager_lists_every_shared_secret(client, tokens):
    name = create_shared(client, tokens, read_roles=[new_role()])
    response = client.post(f"{V1}/search/secrets", headers=tokens.headers("vaultManage"), json={"keywords": name})
    assert _names(response) == [name]
