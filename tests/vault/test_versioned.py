"""The versioned API: versions, check-and-set, soft delete, destroy, metadata, keys, paging."""
from __future__ import annotations

import time

import pytest

from tests.vault.helpers import V1, assert_error, unique


def write(client, headers, path, data, cas=None, status=200):
    body = {"data": data}
    if cas is not None:
        body["options"] = {"cas": cas}
    response = client.post(f"{V1}/secret/data/{path}", headers=headers, json=body)
    assert response.status_code == status, response.json
    return response.json


def read(client, headers, path, version=None):
    query = f"?version={version}" if version is not None else ""
    return client.get(f"{V1}/secret/data/{path}{query}", headers=headers)


def test_write_creates_and_versions_increase(client, svc):
    path = unique("hosts/h1/root")
    first = write(client, svc, path, {"password": "one"})
    assert list(first) == ["version", "created", "deletion_time", "destroyed"]
    assert first["version"] == 1 and first["deletion_time"] is None and first["destroyed"] is False
    assert write(client, svc, path, {"password": "two"})["version"] == 2
    body = read(client, svc, path).json
    assert body["data"] == {"password": "two"} and body["metadata"]["version"] == 2
    assert read(client, svc, path, 1).json["data"] == {"password": "one"}


def test_missing_path_and_version_are_404(client, svc):
    path = unique("v2")
    assert_error(read(client, svc, path), 404, "OBJECT_NOT_FOUND")
    write(client, svc, path, {"a": 1})
    assert_error(read(client, svc, path, 7), 404, "OBJECT_NOT_FOUND")


def test_check_and_set(client, svc):
    path = unique("cas")
    write(client, svc, path, {"v": 1}, cas=0)
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": 2}, "options": {"cas": 0}}),
                 409, "VALUE_DUPLICATE", "options.cas")
    write(client, svc, path, {"v": 2}, cas=1)
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": 3}, "options": {"cas": 1}}),
                 409, "VALUE_DUPLICATE")
    assert read(client, svc, path).json["data"] == {"v": 2}
    new_path = unique("cas-new")
    assert_error(client.post(f"{V1}/secret/data/{new_path}", headers=svc, json={"data": {}, "options": {"cas": 3}}),
                 409, "VALUE_DUPLICATE")
    assert_error(read(client, svc, new_path), 404, "OBJECT_NOT_FOUND")


def test_cas_required(client, svc):
    path = unique("casreq")
    write(client, svc, path, {"v": 1})
    client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"cas_required": True})
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": 2}}),
                 400, "REQUIRED_VALUE_MISSING", "options.cas")
    write(client, svc, path, {"v": 2}, cas=1)


def test_delete_undelete_destroy(client, svc, tokens):
    path = unique("lifecycle")
    for i in range(1, 4):
        write(client, svc, path, {"v": i})
    # DELETE data soft-deletes the newest: reads fall back to the previous live version.
    assert client.delete(f"{V1}/secret/data/{path}", headers=svc).status_code == 200
    assert read(client, svc, path).json["metadata"]["version"] == 2
    assert_error(read(client, svc, path, 3), 404, "OBJECT_NOT_FOUND")
    response = client.post(f"{V1}/secret/delete/{path}", headers=tokens.headers("hostsManage"), json={"versions": [2, 99]})
    assert response.status_code == 200 and response.data == b""
    assert read(client, svc, path).json["data"] == {"v": 1}
    assert client.post(f"{V1}/secret/undelete/{path}", headers=svc, json={"versions": [3]}).status_code == 200
    assert read(client, svc, path).json["data"] == {"v": 3}
    assert_error(client.post(f"{V1}/secret/destroy/{path}", headers=tokens.headers("hostsManage"), json={"versions": [3]}),
                 403, "PERMISSION_DENIED")
    assert client.post(f"{V1}/secret/destroy/{path}", headers=tokens.headers("admin"), json={"versions": [3]}).status_code == 200
    assert_error(read(client, svc, path, 3), 404, "OBJECT_NOT_FOUND")
    # A destroyed version cannot come back.
    client.post(f"{V1}/secret/undelete/{path}", headers=svc, json={"versions": [2, 3]})
    assert read(client, svc, path).json["metadata"]["version"] == 2
    versions = {v["version"]: v for v in client.get(f"{V1}/secret/metadata/{path}", headers=svc).json["versions"]}
    assert versions[3]["destroyed"] is True and versions[2]["deletion_time"] is None
    assert versions[1]["deletion_time"] is None


@pytest.mark.parametrize("body, prop, code", [
    ({"versions": []}, "versions", "VALUE_OUT_OF_BOUNDS"),
    ({}, "versions", "REQUIRED_VALUE_MISSING"),
    ({"versions": ["1"]}, "versions.0", "VALUE_INCORRECT_TYPE"),
    ({"versions": [0]}, "versions.0", "VALUE_OUT_OF_BOUNDS"),
])
def test_bad_version_lists_are_400(client, svc, body, prop, code):
    path = unique("badv")
    write(client, svc, path, {"v": 1})
    assert_error(client.post(f"{V1}/secret/delete/{path}", headers=svc, json=body), 400, code, prop)
    assert read(client, svc, path).json["data"] == {"v": 1}


def test_version_operations_on_missing_secret_are_404(client, svc):
    assert_error(client.post(f"{V1}/secret/delete/{unique('none')}", headers=svc, json={"versions": [1]}), 404, "OBJECT_NOT_FOUND")


def test_max_versions_prunes_the_oldest_for_good(client, svc):
    path = unique("prune")
    meta = client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"max_versions": 3})
    assert meta.status_code == 200 and meta.json["metadata"]["max_versions"] == 3
    for i in range(1, 6):
        write(client, svc, path, {"v": i})
    body = client.get(f"{V1}/secret/metadata/{path}", headers=svc).json
    assert [v["version"] for v in body["versions"]] == [3, 4, 5]
    assert body["metadata"]["oldest_version"] == 3 and body["metadata"]["current_version"] == 5
    assert_error(read(client, svc, path, 2), 404, "OBJECT_NOT_FOUND")
    # Lowering the cap prunes at once.
    client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"max_versions": 1})
    assert [v["version"] for v in client.get(f"{V1}/secret/metadata/{path}", headers=svc).json["versions"]] == [5]


def test_default_max_versions_is_ten(client, svc):
    path = unique("ten")
    for i in range(12):
        write(client, svc, path, {"v": i})
    assert len(client.get(f"{V1}/secret/metadata/{path}", headers=svc).json["versions"]) == 10


def test_delete_version_after(client, svc):
    path = unique("ttl")
    body = client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"delete_version_after": "1s"}).json
    assert body["metadata"]["delete_version_after"] == "1s"
    written = write(client, svc, path, {"v": 1})
    assert written["deletion_time"] is not None
    assert read(client, svc, path).status_code == 200
    time.sleep(2.1)
    assert_error(read(client, svc, path), 404, "OBJECT_NOT_FOUND")
    iso = client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"delete_version_after": "P30D"}).json
    assert iso["metadata"]["delete_version_after"] == "720h0m0s"


def test_metadata_document(client, svc, tokens):
    path = unique("meta")
    write(client, svc, path, {"v": 1})
    response = client.post(f"{V1}/secret/metadata/{path}", headers=tokens.headers("admin"),
                           json={"custom_metadata": {"owner": "team-a"}, "cas_required": False})
    assert response.status_code == 200
    body = client.get(f"{V1}/secret/metadata/{path}", headers=tokens.headers("hostsManage")).json
    assert list(body["metadata"]) == ["created", "created_by", "updated", "updated_by", "current_version", "oldest_version",
                                      "max_versions", "delete_version_after", "cas_required", "custom_metadata"]
    assert body["metadata"]["custom_metadata"] == {"owner": "team-a"}
    assert list(body["versions"][0]) == ["version", "created", "created_by", "deletion_time", "destroyed", "status",
                                         "destroy_at", "description", "payload_entry_keys",
                                         "password_payload_specification"]
    # Metadata changes never make a version.
    assert body["metadata"]["current_version"] == 1


@pytest.mark.parametrize("body, prop, code", [
    ({"max_versions": -1}, "max_versions", "VALUE_OUT_OF_BOUNDS"),
    ({"max_versions": "3"}, "max_versions", "VALUE_INCORRECT_TYPE"),
    ({"delete_version_after": "soon"}, "delete_version_after", "VALUE_INCORRECT_FORMAT"),
    ({"delete_version_after": 30}, "delete_version_after", "VALUE_INCORRECT_TYPE"),
    ({"cas_required": "yes"}, "cas_required", "VALUE_INCORRECT_TYPE"),
    ({"custom_metadata": {f"k{i}": "v" for i in range(65)}}, "custom_metadata", "VALUE_OUT_OF_BOUNDS"),
    ({"custom_metadata": {"k": 1}}, "custom_metadata.k.value", "VALUE_INCORRECT_TYPE"),
])
def test_bad_metadata_is_400_and_changes_nothing(client, svc, body, prop, code):
    path = unique("badmeta")
    write(client, svc, path, {"v": 1})
    before = client.get(f"{V1}/secret/metadata/{path}", headers=svc).json
    assert_error(client.post(f"{V1}/secret/metadata/{path}", headers=svc, json=body), 400, code, prop)
    assert client.get(f"{V1}/secret/metadata/{path}", headers=svc).json == before


def test_delete_metadata_removes_everything(client, svc):
    path = unique("gone")
    write(client, svc, path, {"v": 1})
    assert client.delete(f"{V1}/secret/metadata/{path}", headers=svc).status_code == 200
    assert_error(client.get(f"{V1}/secret/metadata/{path}", headers=svc), 404, "OBJECT_NOT_FOUND")


def test_keys_lists_direct_children(client, svc):
    root = unique("tree")
    for leaf in ("a/x", "a/y/z", "b"):
        write(client, svc, f"{root}/{leaf}", {"v": 1})
    assert client.get(f"{V1}/secret/keys/{root}", headers=svc).json == {"keys": ["a/", "b"]}
    assert client.get(f"{V1}/secret/keys/{root}/a", headers=svc).json == {"keys": ["x", "y/"]}
    assert f"{root}/" in client.get(f"{V1}/secret/keys", headers=svc).json["keys"]
    assert_error(client.get(f"{V1}/secret/keys/{root}/b", headers=svc), 404, "OBJECT_NOT_FOUND")


def test_versions_listing_pages_newest_first(client, svc):
    path = unique("pages")
    for i in range(5):
        write(client, svc, path, {"v": i})
    first = client.get(f"{V1}/secret/versions/{path}?page_size=2", headers=svc).json
    assert [v["version"] for v in first["versions"]] == [5, 4] and first["next_page_token"]
    second = client.get(f"{V1}/secret/versions/{path}?page_size=2&page_token={first['next_page_token']}", headers=svc).json
    assert [v["version"] for v in second["versions"]] == [3, 2]
    third = client.get(f"{V1}/secret/versions/{path}?page_size=2&page_token={second['next_page_token']}", headers=svc).json
    assert [v["version"] for v in third["versions"]] == [1] and third["next_page_token"] is None
    assert_error(client.get(f"{V1}/secret/versions/{path}?page_token=bogus!", headers=svc), 400, "VALUE_INCORRECT_FORMAT", "page_token")
    assert_error(client.get(f"{V1}/secret/versions/{path}?page_size=1001", headers=svc), 400, "VALUE_OUT_OF_BOUNDS", "page_size")


def test_v1_and_versioned_api_share_the_namespace(client, svc, tokens):
    from tests.vault.helpers import create_shared, new_role

    role = new_role()
    name = create_shared(client, tokens, read_roles=[role])
    write(client, svc, name, {"rotated": True})
    assert client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role])).json["data"] == {"rotated": True}
