"""Personal secrets: the owner's own namespace; admins see metadata only."""
from __future__ import annotations

import uuid

from tests.vault.helpers import V1, assert_error, unique


def _owner(tokens):
    sub = str(uuid.uuid4())
    return sub, tokens.headers("user", sub=sub)


def _create(client, headers, sub, data=None):
    name = unique("mine/ssh")
    response = client.post(f"{V1}/user/{sub}/secrets", headers=headers, json={"name": name, "data": data or {"key": "k"}})
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == f"{V1}/user/{sub}/secrets/{name.replace('/', '%2F')}"
    return name


def test_owner_full_lifecycle(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, owner, sub)
    body = client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner).json
    assert body["data"] == {"key": "k"} and body["owner_id"] == sub
    assert body["path"] == f"{V1}/user/{sub}/secrets/{name}"
    assert client.put(f"{V1}/user/{sub}/secrets/{name}", headers=owner, json={"data": {"key": "k2"}}).status_code == 200
    assert client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner).json["data"] == {"key": "k2"}
    listing = client.get(f"{V1}/user/{sub}/secrets", headers=owner).json
    assert listing["count"] == 1 and listing["items"][0]["data"] == {"key": "k2"}
    assert client.delete(f"{V1}/user/{sub}/secrets/{name}", headers=owner).status_code == 200
    assert_error(client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner), 404, "OBJECT_NOT_FOUND")


def test_personal_and_shared_namespaces_are_separate(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, owner, sub)
    assert_error(client.get(f"{V1}/secrets/{name}", headers=tokens.headers("admin")), 404, "OBJECT_NOT_FOUND")


def test_another_user_is_denied(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, owner, sub)
    other = tokens.headers("user")
    for response in (
        client.get(f"{V1}/user/{sub}/secrets/{name}", headers=other),
        client.put(f"{V1}/user/{sub}/secrets/{name}", headers=other, json={"data": {}}),
        client.delete(f"{V1}/user/{sub}/secrets/{name}", headers=other),
        client.get(f"{V1}/user/{sub}/secrets", headers=other),
        client.post(f"{V1}/user/{sub}/secrets", headers=other, json={"name": "x", "data": {}}),
        client.get(f"{V1}/user/{sub}/metadata/secrets/{name}", headers=other),
    ):
        assert_error(response, 403, "PERMISSION_DENIED")
    assert client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner).json["data"] == {"key": "k"}


def test_admin_reads_metadata_only_and_cannot_update(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, owner, sub)
    admin = tokens.headers("admin")
    body = client.get(f"{V1}/user/{sub}/secrets/{name}", headers=admin).json
    assert "data" not in body and body["owner_id"] == sub
    assert client.get(f"{V1}/user/{sub}/metadata/secrets/{name}", headers=admin).status_code == 200
    assert_error(client.put(f"{V1}/user/{sub}/secrets/{name}", headers=admin, json={"data": {}}), 403, "PERMISSION_DENIED")


def test_manager_lists_without_data_and_may_delete(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, owner, sub)
    manager = tokens.headers("vaultManage")
    listing = client.get(f"{V1}/user/{sub}/secrets", headers=manager).json
    assert [i["name"] for i in listing["items"]] == [name] and "data" not in listing["items"][0]
    assert client.delete(f"{V1}/user/{sub}/secrets/{name}", headers=manager).status_code == 200


def test_admin_may_create_for_a_user(client, tokens):
    sub, owner = _owner(tokens)
    name = _create(client, tokens.headers("vaultAdd"), sub)
    assert client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner).json["data"] == {"key": "k"}
