"""HashiCorp's own Python client, hvac, against the Vault under gunicorn: every
secrets.kv.v2 method, sys.read_health_status, is_authenticated and auth.token.lookup_self."""
from __future__ import annotations

import time

import hvac
import pytest
from hvac import exceptions

from tests.support import unique

# hvac's patch() reads without raise_on_deleted_version, which hvac 2.x warns about.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter")]


def test_write_read_versions_and_metadata(hvac_client):
    path = unique("hvac/app")
    first = hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "one"})
    assert first["data"]["version"] == 1 and first["data"]["deletion_time"] == ""
    assert first["mount_type"] == "kv" and first["lease_id"] == "" and first["auth"] is None
    hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "two"}, cas=1)

    current = hvac_client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert current["data"]["data"] == {"password": "two"}
    assert current["data"]["metadata"]["version"] == 2
    assert current["data"]["metadata"]["created_time"].endswith("Z")
    assert hvac_client.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=True)[
        "data"]["data"] == {"password": "one"}
    assert hvac_client.secrets.kv.v2.read_secret(path=path, raise_on_deleted_version=True)["data"]["data"] == {"password": "two"}

    metadata = hvac_client.secrets.kv.v2.read_secret_metadata(path=path)["data"]
    assert metadata["current_version"] == 2 and metadata["max_versions"] == 10
    assert set(metadata["versions"]) == {"1", "2"}  # keyed by strings
    assert metadata["versions"]["1"]["deletion_time"] == "" and metadata["custom_metadata"] is None


def test_check_and_set(hvac_client):
    path = unique("hvac/cas")
    hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1}, cas=0)
    with pytest.raises(exceptions.InvalidRequest) as mismatch:
        hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2}, cas=0)
    assert mismatch.value.errors == ["check-and-set parameter did not match the current version"]
    with pytest.raises(exceptions.InvalidRequest):
        hvac_client.secrets.kv.v2.create_or_update_secret(path=unique("hvac/cas"), secret={"v": 1}, cas=3)

    hvac_client.secrets.kv.v2.update_metadata(path=path, cas_required=True)
    with pytest.raises(exceptions.InvalidRequest) as required:
        hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2})
    assert required.value.errors == ["check-and-set parameter required for this call"]
    assert hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2}, cas=1)["data"]["version"] == 2


def test_patch_is_a_read_then_a_cas_write(hvac_client):
    path = unique("hvac/patch")
    hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"user": "app", "password": "old"})
    patched = hvac_client.secrets.kv.v2.patch(path=path, secret={"password": "new"})
    assert patched["data"]["version"] == 2
    assert hvac_client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"] == {
        "user": "app", "password": "new"}
    with pytest.raises(exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.patch(path=unique("hvac/missing"), secret={"a": 1})


def test_delete_undelete_destroy(hvac_client):
    path = unique("hvac/lifecycle")
    for value in ("a", "b", "c"):
        hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value})

    assert hvac_client.secrets.kv.v2.delete_latest_version_of_secret(path=path).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    # raise_on_deleted_version=False hands back the 404's body: data null, metadata with the time
    deleted = hvac_client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"] != ""
    assert deleted["data"]["metadata"]["version"] == 3

    assert hvac_client.secrets.kv.v2.undelete_secret_versions(path=path, versions=[3]).status_code == 204
    assert hvac_client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"] == {"v": "c"}

    assert hvac_client.secrets.kv.v2.delete_secret_versions(path=path, versions=[1, 2]).status_code == 204
    assert hvac_client.secrets.kv.v2.destroy_secret_versions(path=path, versions=[1]).status_code == 204
    versions = hvac_client.secrets.kv.v2.read_secret_metadata(path=path)["data"]["versions"]
    assert versions["1"]["destroyed"] is True and versions["2"]["deletion_time"] != ""
    assert hvac_client.secrets.kv.v2.undelete_secret_versions(path=path, versions=[1, 2]).status_code == 204
    # Destroyed stays destroyed. It was deleted first, so it keeps its deletion_time and hvac
    # hands back the body; a version destroyed without a delete has "" and hvac raises.
    destroyed = hvac_client.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=False)
    assert destroyed["data"]["data"] is None and destroyed["data"]["metadata"]["destroyed"] is True
    hvac_client.secrets.kv.v2.destroy_secret_versions(path=path, versions=[3])
    with pytest.raises(exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.read_secret_version(path=path, version=3, raise_on_deleted_version=False)
    assert hvac_client.secrets.kv.v2.read_secret_version(path=path, version=2, raise_on_deleted_version=True)[
        "data"]["data"] == {"v": "b"}

    # Deleting what is missing is not an error in Vault.
    missing = unique("hvac/missing")
    assert hvac_client.secrets.kv.v2.delete_latest_version_of_secret(path=missing).status_code == 204
    assert hvac_client.secrets.kv.v2.destroy_secret_versions(path=missing, versions=[1]).status_code == 204


def test_list_secrets(hvac_client):
    root = unique("hvac-list")
    for name in ("b", "a", "dir/x", "dir/y/z"):
        hvac_client.secrets.kv.v2.create_or_update_secret(path=f"{root}/{name}", secret={"n": name})
    assert hvac_client.secrets.kv.v2.list_secrets(path=root)["data"]["keys"] == ["a", "b", "dir/"]
    assert hvac_client.secrets.kv.v2.list_secrets(path=f"{root}/dir/")["data"]["keys"] == ["x", "y/"]
    assert f"{root}/" in hvac_client.secrets.kv.v2.list_secrets(path="")["data"]["keys"]
    with pytest.raises(exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.list_secrets(path=unique("hvac-list-none"))


def test_list_secrets_with_strict_http(kv_base, service_token):
    """strict_http=True turns LIST into GET ?list=true."""
    path = unique("hvac-strict")
    client = hvac.Client(url=kv_base, token=service_token, strict_http=True)
    client.secrets.kv.v2.create_or_update_secret(path=f"{path}/one", secret={"x": 1})
    assert client.secrets.kv.v2.list_secrets(path=path)["data"]["keys"] == ["one"]


def test_update_metadata_and_delete_everything(hvac_client):
    path = unique("hvac/meta")
    hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1})
    response = hvac_client.secrets.kv.v2.update_metadata(path=path, max_versions=3, custom_metadata={"owner": "team-a"},
                                                    delete_version_after="1h")
    assert response.status_code == 204
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata(path=path)["data"]
    assert metadata["max_versions"] == 3 and metadata["custom_metadata"] == {"owner": "team-a"}
    assert metadata["delete_version_after"] == "1h0m0s"
    written = hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2})["data"]
    assert written["custom_metadata"] == {"owner": "team-a"} and written["deletion_time"] != ""

    for value in range(3, 6):
        hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value})
    assert sorted(hvac_client.secrets.kv.v2.read_secret_metadata(path=path)["data"]["versions"], key=int) == ["3", "4", "5"]
    with pytest.raises(exceptions.InvalidPath):  # pruned
        hvac_client.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=False)

    with pytest.raises(exceptions.InvalidRequest):
        hvac_client.secrets.kv.v2.update_metadata(path=path, custom_metadata={"k": "x" * 513})

    assert hvac_client.secrets.kv.v2.delete_metadata_and_all_versions(path=path).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.read_secret_metadata(path=path)
    assert hvac_client.secrets.kv.v2.delete_metadata_and_all_versions(path=path).status_code == 204


def test_configure_and_read_configuration(hvac_client, tokens, kv_base, mount_defaults):
    assert hvac_client.secrets.kv.v2.read_configuration()["data"] == {
        "cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    with pytest.raises(exceptions.Forbidden):  # config writes are admin's
        hvac_client.secrets.kv.v2.configure(max_versions=5)

    admin = hvac.Client(url=kv_base, token=tokens("admin"))
    assert admin.secrets.kv.v2.configure(max_versions=5, cas_required=True, delete_version_after="2h").status_code == 204
    assert admin.secrets.kv.v2.read_configuration()["data"] == {
        "cas_required": True, "delete_version_after": "2h0m0s", "max_versions": 5}

    path = unique("hvac/configured")
    with pytest.raises(exceptions.InvalidRequest):  # the mount requires cas now
        hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1})
    written = hvac_client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1}, cas=0)["data"]
    assert written["deletion_time"] != ""  # the mount's delete_version_after
    assert hvac_client.secrets.kv.v2.read_secret_metadata(path=path)["data"]["max_versions"] == 5  # the mount's default
    admin.adapter.close()


def test_health_status(hvac_client):
    head = hvac_client.sys.read_health_status()  # HEAD, hvac's default
    assert head.status_code == 200 and head.content == b""
    body = hvac_client.sys.read_health_status(method="GET")
    assert body["initialized"] is True and body["sealed"] is False and body["cluster_name"] == "privx-vault"
    assert body == {**body, "standby": False, "enterprise": False}
    assert hvac_client.sys.read_health_status(method="GET", active_code=299).status_code == 299


def test_is_authenticated(kv_base, tokens, service_token):
    assert hvac.Client(url=kv_base, token=service_token).is_authenticated() is True
    assert hvac.Client(url=kv_base, token=tokens("user")).is_authenticated() is True  # any valid token
    assert hvac.Client(url=kv_base, token="not-a-jwt").is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", exp=int(time.time()) - 3600)).is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", audience="someone-else")).is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", ttl=10 * 86400)).is_authenticated() is False  # lifetime cap


def test_lookup_self(hvac_client, service_token):
    info = hvac_client.auth.token.lookup_self()
    assert info["mount_type"] == "token"
    data = info["data"]
    assert data["id"] == service_token and data["policies"] == ["service"]
    assert data["display_name"] == "KV test client" and data["meta"] == {"email": "kv@example.com", "name": "KV test client"}
    assert data["renewable"] is False and data["orphan"] is True and data["type"] == "service"
    assert 0 < data["ttl"] <= data["creation_ttl"] and data["expire_time"].endswith("Z")
    assert data["accessor"] and data["entity_id"]


def test_scopes_and_errors(kv_base, tokens):
    path = unique("hvac/scopes")
    admin = hvac.Client(url=kv_base, token=tokens("admin"))
    with pytest.raises(exceptions.Forbidden) as denied:  # admin never reads data
        admin.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert denied.value.errors == ["permission denied"]
    with pytest.raises(exceptions.Forbidden):  # a bad token is a 403 too, never a 401
        hvac.Client(url=kv_base, token="nope").secrets.kv.v2.read_secret_metadata(path=path)
    with pytest.raises(exceptions.InvalidPath):  # admin may see metadata: it just does not exist
        admin.secrets.kv.v2.read_secret_metadata(path=path)
    with pytest.raises(exceptions.InvalidRequest) as bad_path:
        admin.secrets.kv.v2.read_secret_metadata(path="bad!name")
    assert bad_path.value.errors[0].startswith("invalid path: ")
    admin.adapter.close()
