"""The Secrets Manager's reserved part (`hosts/...`, `targetdomains/...`, `workflow-engine/...`): only the `service`
scope reaches it, through the versioned API; to every other caller it does not exist (404 on
reads, absent from lists, keys, search and versions) and cannot be created or changed (403)."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique

RESERVED_MESSAGE = "this name is reserved for the Secrets Manager"


@pytest.fixture()
def managed(client, tokens):
    """A managed password written by the Secrets Manager (service scope), with two versions."""
    name = f"hosts/{uuid.uuid4()}/root"
    service = tokens.headers("service")
    for password in ("managed-v1", "managed-v2"):
        response = client.post(f"{V1}/secret/data/{name}", headers=service, json={"data": {"password": password}})
        assert response.status_code == 200, response.json
    return name


def _callers(tokens, role):
    """Every caller kind but the service: a user holding a role, vaultAdd, vaultManage, hostsManage, admin."""
    return {
        "user with role": tokens.headers("user", roles=[role]),
        "vaultAdd": tokens.headers("vaultAdd", roles=[role]),
        "vaultManage": tokens.headers("vaultManage", roles=[role]),
        "hostsManage": tokens.headers("hostsManage", roles=[role]),
        "admin": tokens.headers("admin", roles=[role]),
        "every scope but service": tokens.headers("admin user vaultAdd vaultManage hostsManage", roles=[role]),
    }


def _scope_refusal(response) -> bool:
    """The route's own scope check answered (before any name is looked at)."""
    return response.status_code == 403 and response.json["error_message"].startswith("the token lacks a required scope")


def test_only_the_service_reaches_it(client, tokens, managed):
    service = tokens.headers("service")
    read = client.get(f"{V1}/secret/data/{managed}", headers=service)
    assert read.status_code == 200 and read.json["data"] == {"password": "managed-v2"}
    assert client.get(f"{V1}/secret/data/{managed}?version=1", headers=service).json["data"]["password"] == "managed-v1"
    meta = client.get(f"{V1}/secret/metadata/{managed}", headers=service)
    assert meta.status_code == 200 and meta.json["metadata"]["current_version"] == 2
    assert [v["version"] for v in client.get(f"{V1}/secret/versions/{managed}", headers=service).json["versions"]] == [2, 1]
    host = managed.split("/")[1]
    assert "hosts/" in client.get(f"{V1}/secret/keys", headers=service).json["keys"]
    assert f"{host}/" in client.get(f"{V1}/secret/keys/hosts", headers=service).json["keys"]
    assert client.get(f"{V1}/secret/keys/hosts/{host}", headers=service).json["keys"] == ["root"]


def test_invisible_and_untouchable_to_every_other_caller(client, tokens, managed):
    role = new_role()
    host = managed.split("/")[1]
    # A shared secret under a look-alike name, readable by the role, so lists are not empty.
    neighbour = create_shared(client, tokens, name=f"hostsx/{host}/root", read_roles=[role], write_roles=[role])
    for kind, headers in _callers(tokens, role).items():
        # Reads: 404 (or the route's own scope refusal), never the data.
        for path in (f"/secrets/{managed}", f"/metadata/secrets/{managed}", f"/secret/data/{managed}",
                     f"/secret/metadata/{managed}", f"/secret/versions/{managed}", "/secret/keys/hosts",
                     f"/secret/keys/hosts/{host}"):
            response = client.get(V1 + path, headers=headers)
            assert response.status_code == 404 or _scope_refusal(response), (kind, path, response.status_code)
            assert "managed-v" not in response.get_data(as_text=True), (kind, path)
        # Lists, keys and search: absent.
        for response in (client.get(f"{V1}/secrets", headers=headers),
                         client.post(f"{V1}/search/secrets", headers=headers, json={"keywords": host}),
                         client.post(f"{V1}/search/secrets", headers=headers, json={"keywords": "hosts"}),
                         client.post(f"{V1}/search/secrets", headers=headers,
                                     json={"owner_id": ["/secrets-manager"]}),
                         client.get(f"{V1}/secret/keys", headers=headers)):
            text = response.get_data(as_text=True)
            if response.status_code == 200:
                names = [item["name"] for item in response.json.get("items", [])] + response.json.get("keys", [])
                assert managed not in names and "hosts/" not in names, (kind, names)
            else:
                assert _scope_refusal(response), (kind, response.status_code)
            assert "managed-v" not in text
        # Changes: 403 "reserved for the Secrets Manager" (or the route's own scope refusal).
        changes = [
            ("PUT", f"/secrets/{managed}", {"read_roles": [role]}),
            ("PUT", f"/secrets/{managed}", {"data": {"password": "overwritten"}}),
            ("DELETE", f"/secrets/{managed}", None),
            ("POST", f"/secret/data/{managed}", {"data": {"password": "overwritten"}}),
            ("DELETE", f"/secret/data/{managed}", None),
            ("POST", f"/secret/delete/{managed}", {"versions": [1, 2]}),
            ("POST", f"/secret/undelete/{managed}", {"versions": [1]}),
            ("POST", f"/secret/destroy/{managed}", {"versions": [1, 2]}),
            ("POST", f"/secret/metadata/{managed}", {"max_versions": 1}),
            ("DELETE", f"/secret/metadata/{managed}", None),
        ]
        for method, path, body in changes:
            response = client.open(V1 + path, method=method, headers=headers, json=body)
            assert response.status_code == 403, (kind, method, path, response.status_code)
            assert response.json["error_message"] == RESERVED_MESSAGE or _scope_refusal(response), (kind, method, path)
        # The neighbour is still reachable as usual: the rule is the first segment, not a prefix.
        if kind == "user with role":
            assert client.get(f"{V1}/secrets/{neighbour}", headers=headers).status_code == 200
    # Nothing changed: both versions are there, the newest is the service's.
    service = tokens.headers("service")
    assert client.get(f"{V1}/secret/data/{managed}", headers=service).json["data"] == {"password": "managed-v2"}
    meta = client.get(f"{V1}/secret/metadata/{managed}", headers=service).json
    assert [(v["version"], v["destroyed"], v["deletion_time"]) for v in meta["versions"]] == [(1, False, None),
                                                                                                (2, False, None)]
    assert meta["metadata"]["max_versions"] == 10


def test_changes_that_reach_the_rule_say_it_is_reserved(client, tokens, managed):
    """Callers holding the route's scope get the reserved 403, whether or not the secret exists."""
    role = new_role()
    fresh = f"hosts/{uuid.uuid4()}/root"  # not created: the answer must be the same
    for name in (managed, fresh, f"targetdomains/{uuid.uuid4()}/bind", "hosts", "workflow-engine/smtp"):
        cases = [
            ("POST", "/secrets", {"name": name, "data": {}, "read_roles": [role]}, "vaultAdd"),
            ("POST", "/secrets", {"name": name, "data": {}, "read_roles": [role]}, "admin"),
            ("PUT", f"/secrets/{name}", {"read_roles": [role]}, "vaultManage"),
            ("DELETE", f"/secrets/{name}", None, "admin"),
            ("DELETE", f"/secrets/{name}", None, "user"),
            ("POST", f"/secret/metadata/{name}", {"max_versions": 1}, "hostsManage"),
            ("DELETE", f"/secret/metadata/{name}", None, "admin"),
            ("DELETE", f"/secret/data/{name}", None, "hostsManage"),
            ("POST", f"/secret/destroy/{name}", {"versions": [1]}, "admin"),
            ("POST", f"/secret/delete/{name}", {"versions": [1]}, "hostsManage"),
            ("POST", f"/secret/undelete/{name}", {"versions": [1]}, "admin"),
        ]
        for method, path, body, scope in cases:
            response = client.open(V1 + path, method=method, headers=tokens.headers(scope, roles=[role]), json=body)
            assert_error(response, 403, "PERMISSION_DENIED")
            assert response.json["error_message"] == RESERVED_MESSAGE, (method, path, scope)
        for path, scope in ((f"/secrets/{name}", "admin"), (f"/metadata/secrets/{name}", "vaultManage"),
                            (f"/secret/metadata/{name}", "admin"), (f"/secret/versions/{name}", "hostsManage")):
            assert_error(client.get(V1 + path, headers=tokens.headers(scope, roles=[role])), 404, "OBJECT_NOT_FOUND")
    # The squat of the issue did not happen: the service still finds no secret at the fresh name.
    assert client.get(f"{V1}/secret/data/{fresh}", headers=tokens.headers("service")).status_code == 404


def test_refusals_are_audited(client, tokens, vault_db):
    name = f"hosts/{uuid.uuid4()}/root"
    client.post(f"{V1}/secrets", headers=tokens.headers("vaultAdd"), json={"name": name, "data": {}})
    client.get(f"{V1}/secrets/{name}", headers=tokens.headers("admin"))
    with psycopg.connect(vault_db) as conn:
        rows = conn.execute("SELECT action, outcome FROM audit_events WHERE target = %s ORDER BY id",
                            (f"secret:{name}",)).fetchall()
    assert rows == [("secret.create", "denied"), ("secret.read", "not_found")]


def test_personal_secrets_keep_their_names(client, tokens):
    """The rule is the shared namespace's: a personal secret may be called `hosts/...`."""
    sub = str(uuid.uuid4())
    owner = tokens.headers("user", sub=sub)
    name = f"hosts/{unique('mine')}"
    assert client.post(f"{V1}/user/{sub}/secrets", headers=owner, json={"name": name, "data": {"a": 1}}).status_code == 201
    assert client.get(f"{V1}/user/{sub}/secrets/{name}", headers=owner).json["data"] == {"a": 1}


@pytest.mark.parametrize(("prefix", "version", "migration"), [
    ("hosts", 2, "vault/0002_reserved_namespace.sql"),
    ("workflow-engine", 8, "vault/0008_workflow_engine_reserved.sql"),
])
def test_migration_moves_existing_managed_secrets(client, tokens, vault_app, vault_db, prefix, version, migration):
    """A managed secret stored in the shared namespace before its prefix was reserved (squatted,
    with a read role) moves there by the migration that reserved it, keeps its versions and loses
    its roles."""
    role = new_role()
    name = f"{prefix}/{uuid.uuid4()}/root"
    service = tokens.headers("service")
    client.post(f"{V1}/secret/data/{name}", headers=service, json={"data": {"password": "legacy"}})
    with psycopg.connect(vault_db, autocommit=True) as conn:
        # Put it back where the old code kept it, as the squatter left it, and forget the migration.
        conn.execute("UPDATE vault_secrets SET owner_id = '', read_roles = %s WHERE name = %s", ([role["id"]], name))
        conn.execute("DELETE FROM schema_migrations WHERE service = 'vault' AND version = %s", (version,))
    assert client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role])).status_code == 404
    assert vault_app.extensions["db"].migrate() == [migration]
    with psycopg.connect(vault_db) as conn:
        owner, roles = conn.execute("SELECT owner_id, read_roles FROM vault_secrets WHERE name = %s", (name,)).fetchone()
    assert (owner, roles) == ("/secrets-manager", [])
    assert client.get(f"{V1}/secret/data/{name}", headers=service).json["data"] == {"password": "legacy"}
