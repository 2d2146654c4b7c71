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


def test_write_read_versions_and_metadata(vault):
    path = unique("hvac/app")
    first = vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "one"})
    assert first["data"]["version"] == 1 and first["data"]["deletion_time"] == ""
    assert first["mount_type"] == "kv" and first["lease_id"] == "" and first["auth"] is None
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "two"}, cas=1)

    current = vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert current["data"]["data"] == {"password": "two"}
    assert current["data"]["metadata"]["version"] == 2
    assert current["data"]["metadata"]["created_time"].endswith("Z")
    assert vault.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=True)[
        "data"]["data"] == {"password": "one"}
    assert vault.secrets.kv.v2.read_secret(path=path, raise_on_deleted_version=True)["data"]["data"] == {"password": "two"}

    metadata = vault.secrets.kv.v2.read_secret_metadata(path=path)["data"]
    assert metadata["current_version"] == 2 and metadata["max_versions"] == 10
    assert set(metadata["versions"]) == {"1", "2"}  # keyed by strings
    assert metadata["versions"]["1"]["deletion_time"] == "" and metadata["custom_metadata"] is None


def test_check_and_set(vault):
    path = unique("hvac/cas")
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1}, cas=0)
    with pytest.raises(exceptions.InvalidRequest) as mismatch:
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2}, cas=0)
    assert mismatch.value.errors == ["check-and-set parameter did not match the current version"]
    with pytest.raises(exceptions.InvalidRequest):
        vault.secrets.kv.v2.create_or_update_secret(path=unique("hvac/cas"), secret={"v": 1}, cas=3)

    vault.secrets.kv.v2.update_metadata(path=path, cas_required=True)
    with pytest.raises(exceptions.InvalidRequest) as required:
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2})
    assert required.value.errors == ["check-and-set parameter required for this call"]
    assert vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2}, cas=1)["data"]["version"] == 2


def test_patch_is_a_read_then_a_cas_write(vault):
    path = unique("hvac/patch")
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"user": "app", "password": "old"})
    patched = vault.secrets.kv.v2.patch(path=path, secret={"password": "new"})
    assert patched["data"]["version"] == 2
    assert vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"] == {
        "user": "app", "password": "new"}
    with pytest.raises(exceptions.InvalidPath):
        vault.secrets.kv.v2.patch(path=unique("hvac/missing"), secret={"a": 1})


def test_delete_undelete_destroy(vault):
    path = unique("hvac/lifecycle")
    for value in ("a", "b", "c"):
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value})

    assert vault.secrets.kv.v2.delete_latest_version_of_secret(path=path).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    # raise_on_deleted_version=False hands back the 404's body: data null, metadata with the time
    deleted = vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"] != ""
    assert deleted["data"]["metadata"]["version"] == 3

    assert vault.secrets.kv.v2.undelete_secret_versions(path=path, versions=[3]).status_code == 204
    assert vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"] == {"v": "c"}

    assert vault.secrets.kv.v2.delete_secret_versions(path=path, versions=[1, 2]).status_code == 204
    assert vault.secrets.kv.v2.destroy_secret_versions(path=path, versions=[1]).status_code == 204
    versions = vault.secrets.kv.v2.read_secret_metadata(path=path)["data"]["versions"]
    assert versions["1"]["destroyed"] is True and versions["2"]["deletion_time"] != ""
    assert vault.secrets.kv.v2.undelete_secret_versions(path=path, versions=[1, 2]).status_code == 204
    # Destroyed stays destroyed. It was deleted first, so it keeps its deletion_time and hvac
    # hands back the body; a version destroyed without a delete has "" and hvac raises.
    destroyed = vault.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=False)
    assert destroyed["data"]["data"] is None and destroyed["data"]["metadata"]["destroyed"] is True
    vault.secrets.kv.v2.destroy_secret_versions(path=path, versions=[3])
    with pytest.raises(exceptions.InvalidPath):
        vault.secrets.kv.v2.read_secret_version(path=path, version=3, raise_on_deleted_version=False)
    assert vault.secrets.kv.v2.read_secret_version(path=path, version=2, raise_on_deleted_version=True)[
        "data"]["data"] == {"v": "b"}

    # Deleting what is missing is not an error in Vault.
    missing = unique("hvac/missing")
    assert vault.secrets.kv.v2.delete_latest_version_of_secret(path=missing).status_code == 204
    assert vault.secrets.kv.v2.destroy_secret_versions(path=missing, versions=[1]).status_code == 204


def test_list_secrets(vault):
    root = unique("hvac-list")
    for name in ("b", "a", "dir/x", "dir/y/z"):
        vault.secrets.kv.v2.create_or_update_secret(path=f"{root}/{name}", secret={"n": name})
    assert vault.secrets.kv.v2.list_secrets(path=root)["data"]["keys"] == ["a", "b", "dir/"]
    assert vault.secrets.kv.v2.list_secrets(path=f"{root}/dir/")["data"]["keys"] == ["x", "y/"]
    assert f"{root}/" in vault.secrets.kv.v2.list_secrets(path="")["data"]["keys"]
    with pytest.raises(exceptions.InvalidPath):
        vault.secrets.kv.v2.list_secrets(path=unique("hvac-list-none"))


def test_list_secrets_with_strict_http(kv_base, service_token):
    """strict_http=True turns LIST into GET ?list=true."""
    path = unique("hvac-strict")
    client = hvac.Client(url=kv_base, token=service_token, strict_http=True)
    client.secrets.kv.v2.create_or_update_secret(path=f"{path}/one", secret={"x": 1})
    assert client.secrets.kv.v2.list_secrets(path=path)["data"]["keys"] == ["one"]


def test_update_metadata_and_delete_everything(vault):
    path = unique("hvac/meta")
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1})
    response = vault.secrets.kv.v2.update_metadata(path=path, max_versions=3, custom_metadata={"owner": "team-a"},
                                                    delete_version_after="1h")
    assert response.status_code == 204
    metadata = vault.secrets.kv.v2.read_secret_metadata(path=path)["data"]
    assert metadata["max_versions"] == 3 and metadata["custom_metadata"] == {"owner": "team-a"}
    assert metadata["delete_version_after"] == "1h0m0s"
    written = vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 2})["data"]
    assert written["custom_metadata"] == {"owner": "team-a"} and written["deletion_time"] != ""

    for value in range(3, 6):
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value})
    assert sorted(vault.secrets.kv.v2.read_secret_metadata(path=path)["data"]["versions"], key=int) == ["3", "4", "5"]
    with pytest.raises(exceptions.InvalidPath):  # pruned
        vault.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=False)

    with pytest.raises(exceptions.InvalidRequest):
        vault.secrets.kv.v2.update_metadata(path=path, custom_metadata={"k": "x" * 513})

    assert vault.secrets.kv.v2.delete_metadata_and_all_versions(path=path).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        vault.secrets.kv.v2.read_secret_metadata(path=path)
    assert vault.secrets.kv.v2.delete_metadata_and_all_versions(path=path).status_code == 204


def test_configure_and_read_configuration(vault, tokens, kv_base, mount_defaults):
    assert vault.secrets.kv.v2.read_configuration()["data"] == {
        "cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    with pytest.raises(exceptions.Forbidden):  # config writes are admin's
        vault.secrets.kv.v2.configure(max_versions=5)

    admin = hvac.Client(url=kv_base, token=tokens("admin"))
    assert admin.secrets.kv.v2.configure(max_versions=5, cas_required=True, delete_version_after="2h").status_code == 204
    assert admin.secrets.kv.v2.read_configuration()["data"] == {
        "cas_required": True, "delete_version_after": "2h0m0s", "max_versions": 5}

    path = unique("hvac/configured")
    with pytest.raises(exceptions.InvalidRequest):  # the mount requires cas now
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1})
    written = vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": 1}, cas=0)["data"]
    assert written["deletion_time"] != ""  # the mount's delete_version_after
    assert vault.secrets.kv.v2.read_secret_metadata(path=path)["data"]["max_versions"] == 5  # the mount's default
    admin.adapter.close()


def test_health_status(vault):
    head = vault.sys.read_health_status()  # HEAD, hvac's default
    assert head.status_code == 200 and head.content == b""
    body = vault.sys.read_health_status(method="GET")
    assert body["initialized"] is True and body["sealed"] is False and body["cluster_name"] == "privx-vault"
    assert body == {**body, "standby": False, "enterprise": False}
    assert vault.sys.read_health_status(method="GET", active_code=299).status_code == 299


def test_is_authenticated(kv_base, tokens, service_token):
    assert hvac.Client(url=kv_base, token=service_token).is_authenticated() is True
    assert hvac.Client(url=kv_base, token=tokens("user")).is_authenticated() is True  # any valid token
    assert hvac.Client(url=kv_base, token="not-a-jwt").is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", exp=int(time.time()) - 3600)).is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", audience="someone-else")).is_authenticated() is False
    assert hvac.Client(url=kv_base, token=tokens("service", ttl=10 * 86400)).is_authenticated() is False  # lifetime cap


def test_lookup_self(vault, service_token):
    info = vault.auth.token.lookup_self()
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
