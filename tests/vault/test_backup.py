"""`vault-admin backup FILE` and `vault-admin restore FILE`, proved by restoring."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid

import psycopg
import pytest

from common import crypto
from common.db import _migration_files
from tests import support
from tests.vault.helpers import V1, unique

pytestmark = pytest.mark.skipif(not shutil.which("pg_dump") or not shutil.which("pg_restore"),
                                reason="needs PostgreSQL's client programs (apt-get install postgresql-client)")


def vault_admin(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vault_service.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def manifest_of(path) -> dict:
    with tarfile.open(path) as archive:
        return json.load(archive.extractfile("manifest.json"))


@pytest.fixture()
def databases(db_server):
    """(source, target) fresh databases."""
    with support.fresh_database(db_server, "vault_src") as source, support.fresh_database(db_server, "vault_dst") as target:
        yield source, target


def _env(data_dir, url, master_keys) -> dict:
    return {k: str(v) for k, v in support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys,
                                                           LOG_LEVEL="WARNING").items()}


def test_a_backup_restores_into_an_empty_database_only_and_every_version_decrypts(
        databases, data_dir, tokens, master_keys, tmp_path):
    from vault_service.app import create_app

    source, target = databases
    svc = tokens.headers("service")
    app = create_app(_env(data_dir, source, master_keys))
    client, paths = app.test_client(), [unique("bk") for _ in range(12)]
    for path in paths:
        for n in (1, 2, 3):
            assert client.post(f"{V1}/secret/data/{path}", json={"data": {"password": f"plain-{path}-{n}"}},
                               headers=svc).status_code == 200
    assert client.post(f"{V1}/secret/destroy/{paths[0]}", json={"versions": [1]},
                       headers=tokens.headers("admin service")).status_code == 200
    app.extensions["db"].close()

    file = tmp_path / "vault.backup"
    made = vault_admin("backup", str(file), env=_env(data_dir, source, master_keys))
    assert made.returncode == 0, made.stderr
    manifest = manifest_of(file)
    assert manifest["service"] == "vault" and manifest["encrypted"] is False
    assert manifest["counts"]["vault_secrets"] == 12 and manifest["counts"]["vault_secret_versions"] == 36
    assert manifest["master_key_ids"] == {master_keys.split(":")[0]: 12}
    assert manifest["schema_versions"]["vault"] == [v for v, _, _ in _migration_files("vault_service")]
    assert len(manifest["dump"]["sha256"]) == 64 and oct(file.stat().st_mode & 0o777) == "0o600"
    # Nothing in it is a secret value in clear: the dump, as SQL, holds no plaintext.
    with tarfile.open(file) as archive:
        (tmp_path / "dump").write_bytes(archive.extractfile("database.dump").read())
    as_sql = subprocess.run(["pg_restore", "-f", "-", str(tmp_path / "dump")], capture_output=True, check=True).stdout
    assert b"vault_secret_versions" in as_sql and b"plain-" not in as_sql

    restored = vault_admin("restore", str(file), env=_env(data_dir, target, master_keys))
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["verified"] is True and report["versions_decrypted"] == 35 and report["versions_failed"] == 0
    assert report["migrated"] == []  # same release: nothing to migrate

    again = vault_admin("restore", str(file), env=_env(data_dir, target, master_keys))
    assert again.returncode == 1 and "not empty" in again.stderr

    app = create_app(_env(data_dir, target, master_keys))
    try:
        read = app.test_client().get(f"{V1}/secret/data/{paths[5]}", headers=svc)
        assert read.status_code == 200 and read.json["data"] == {"password": f"plain-{paths[5]}-3"}
    finally:
        app.extensions["db"].close()


def test_a_damaged_file_or_a_missing_master_key_is_refused_before_anything_is_written(
        databases, data_dir, tokens, master_keys, tmp_path):
    from vault_service.app import create_app

    source, target = databases
    app = create_app(_env(data_dir, source, master_keys))
    assert app.test_client().post(f"{V1}/secret/data/{unique('x')}", json={"data": {"a": 1}},
                                  headers=tokens.headers("service")).status_code == 200
    app.extensions["db"].close()
    file = tmp_path / "vault.backup"
    assert vault_admin("backup", str(file), env=_env(data_dir, source, master_keys)).returncode == 0

    other_key = crypto.generate_master_key_spec("other")
    refused = vault_admin("restore", str(file), env=_env(data_dir, target, other_key))
    assert refused.returncode == 1 and "not configured" in refused.stderr and master_keys.split(":")[0] in refused.stderr

    damaged = tmp_path / "damaged.backup"
    with tarfile.open(file) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            body = bytearray(src.extractfile(member).read())
            if member.name == "database.dump":
                body[len(body) // 2] ^= 0xFF
            dst.addfile(member, __import__("io").BytesIO(bytes(body)))
    refused = vault_admin("restore", str(damaged), env=_env(data_dir, target, master_keys))
    assert refused.returncode == 1 and "checksum" in refused.stderr

    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_a_backup_of_an_older_release_is_migrated_forward_and_verified(databases, data_dir, tokens, master_keys, tmp_path):
    """An 'older release': the audit trail's first migration and the Vault's first two only, with
    a secret written as that release wrote it."""
    source, target = databases
    keyring = crypto.Keyring.from_spec(master_keys)
    secret_id = str(uuid.uuid4())
    data_key, wrapped = keyring.new_data_key(secret_id)
    with psycopg.connect(source) as conn:
        conn.execute("""CREATE TABLE schema_migrations (service text NOT NULL, version int NOT NULL, name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (service, version))""")
        for service, package, upto in (("common", "common", 1), ("vault", "vault_service", 2)):
            for version, name, text in _migration_files(package):
                if version <= upto:
                    conn.execute(text)
                    conn.execute("INSERT INTO schema_migrations (service, version, name) VALUES (%s, %s, %s)",
                                 (service, version, name))
        conn.execute("""INSERT INTO vault_secrets (id, name, author, updated_by, dek_key_id, dek_wrapped, current_version)
                        VALUES (%s, 'old/release', 'someone', 'someone', %s, %s, 1)""", (secret_id, wrapped.key_id, wrapped.wrapped))
        conn.execute("INSERT INTO vault_secret_versions (secret_id, version, ciphertext, created_by) VALUES (%s, 1, %s, 'someone')",
                     (secret_id, crypto.encrypt_version(data_key, secret_id, 1, b'{"from": "the old release"}')))

    file = tmp_path / "old.backup"
    made = vault_admin("backup", str(file), env=_env(data_dir, source, master_keys))
    assert made.returncode == 0, made.stderr
    assert manifest_of(file)["schema_versions"] == {"common": [1], "vault": [1, 2]}
    restored = vault_admin("restore", str(file), env=_env(data_dir, target, master_keys))
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert "common/0002_audit_partitions.sql" in report["migrated"] and "vault/0004_search_indexes.sql" in report["migrated"]
    assert report["verified"] is True and report["versions_decrypted"] == 1

    from vault_service.app import create_app

    app = create_app(_env(data_dir, target, master_keys))
    try:
        read = app.test_client().get(f"{V1}/secret/data/old/release", headers=tokens.headers("service"))
        assert read.status_code == 200 and read.json["data"] == {"from": "the old release"}
    finally:
        app.extensions["db"].close()


def test_a_backup_of_a_newer_release_is_refused(databases, data_dir, master_keys, tmp_path):
    """Migrations only go forward: this release cannot promise to read a schema it does not know."""
    source, target = databases
    assert vault_admin("migrate", env=_env(data_dir, source, master_keys)).returncode == 0
    with psycopg.connect(source) as conn:
        conn.execute("INSERT INTO schema_migrations (service, version, name) VALUES ('vault', 9999, '9999_future.sql')")
    file = tmp_path / "future.backup"
    assert vault_admin("backup", str(file), env=_env(data_dir, source, master_keys)).returncode == 0
    refused = vault_admin("restore", str(file), env=_env(data_dir, target, master_keys))
    assert refused.returncode == 1 and "newer release" in refused.stderr and "vault/9999" in refused.stderr
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
