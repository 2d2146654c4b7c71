"""Migration 0006 on versions written before it: each gets its status from its state, its entry
keys from its data (decrypted once, on the first list that shows them) and the description ""."""
from __future__ import annotations

import psycopg

from tests import support
from tests.vault.helpers import V1, unique

UNDO_0006 = """
    DROP INDEX vault_secret_versions_destroy_at;
    ALTER TABLE vault_secret_versions
        DROP CONSTRAINT vault_secret_versions_destroyed_has_no_ciphertext,
        DROP CONSTRAINT vault_secret_versions_scheduled_is_deleted,
        DROP CONSTRAINT vault_secret_versions_cancel_needs_schedule,
        DROP COLUMN description, DROP COLUMN payload_entry_keys, DROP COLUMN password_spec,
        DROP COLUMN destroy_at, DROP COLUMN deletion_time_on_cancel;
    DELETE FROM schema_migrations WHERE service = 'vault' AND version = 6;
"""


def _app(url, data_dir, master_keys):
    from vault_service.app import create_app

    return create_app(support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING"))


def test_versions_written_before_get_status_keys_and_description(db_server, data_dir, master_keys, tokens):
    svc = tokens.headers("service")
    path = unique("before/0006")
    with support.fresh_database(db_server, "vault_migrate_0006") as url:
        app = _app(url, data_dir, master_keys)
        try:
            client = app.test_client()
            for data in ({"user": "u", "password": "p1"}, {"password": "p2"}, {"api_key": "k"}, {"z": 1, "a": 2}):
                assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": data}).status_code == 200
            assert client.post(f"{V1}/secret/delete/{path}", headers=svc, json={"versions": [2]}).status_code == 200
            assert client.post(f"{V1}/secret/destroy/{path}", headers=svc, json={"versions": [3]}).status_code == 200
        finally:
            app.extensions["db"].close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(UNDO_0006)  # the table as 0005 left it, with the rows it held

        app = _app(url, data_dir, master_keys)
        try:
            assert app.extensions["db"].migrate() == ["vault/0006_version_lifecycle.sql"]
            client = app.test_client()
            with psycopg.connect(url, autocommit=True) as conn:
                stored = dict(conn.execute("SELECT version, payload_entry_keys FROM vault_secret_versions ORDER BY 1").fetchall())
                assert stored == {1: None, 2: None, 3: [], 4: None}  # SQL cannot decrypt: destroyed ones only
            listing = client.get(f"{V1}/secret/versions/{path}", headers=svc).json["versions"]
            assert [(v["version"], v["status"], v["payload_entry_keys"], v["description"], v["destroy_at"],
                     v["password_payload_specification"]) for v in listing] == [
                (4, "ACTIVE", ["a", "z"], "", None, None),
                (3, "DESTROYED", [], "", None, None),
                (2, "DELETED", ["password"], "", None, None),
                (1, "ACTIVE", ["password", "user"], "", None, None)]
            with psycopg.connect(url, autocommit=True) as conn:
                stored = dict(conn.execute("SELECT version, payload_entry_keys FROM vault_secret_versions ORDER BY 1").fetchall())
                assert stored == {1: ["password", "user"], 2: ["password"], 3: [], 4: ["a", "z"]}
                # Decrypted once: a ciphertext that no longer decrypts does not matter to a list now.
                conn.execute("UPDATE vault_secret_versions SET ciphertext = '\\x00'::bytea WHERE version = 1")
            again = client.get(f"{V1}/secret/metadata/{path}", headers=svc)
            assert again.status_code == 200
            assert [v["payload_entry_keys"] for v in again.json["versions"]] == [["password", "user"], ["password"], [],
                                                                                  ["a", "z"]]
            assert client.get(f"{V1}/secret/data/{path}", headers=svc).json["data"] == {"z": 1, "a": 2}
        finally:
            app.extensions["db"].close()
