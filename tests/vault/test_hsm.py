"""The master key in an HSM: a real SoftHSM2 token made by the test, reached through PKCS#11."""
from __future__ import annotations

import contextlib

import psycopg
import pytest

from common import crypto, hsm
from tests import softhsm, support
from tests.vault.helpers import V1, unique


@contextlib.contextmanager
def _vault(db_server, data_dir, token, *labels, **extra):
    """A Vault app on a fresh database whose master keys are `labels` in the token."""
    from vault_service.app import create_app

    with support.fresh_database(db_server, "vault_hsm") as url:
        app = create_app(support.service_settings(data_dir, url, LOG_LEVEL="WARNING", **{**token.settings(*labels), **extra}))
        try:
            yield app, url
        finally:
            app.extensions["keyring"].close()
            app.extensions["db"].close()


@pytest.fixture(scope="module")
def hsm_key(softhsm_token, vault_config):
    """A master key made in the token by the operator's command."""
    label = unique("master")
    assert softhsm_token.create_key(label, {k: str(v) for k, v in vault_config.items()}) == hsm.key_id(label)
    return label


def _write(client, headers, path, data):
    return client.post(f"{V1}/secret/data/{path}", json={"data": data}, headers=headers)


def _stored_key_ids(url) -> dict:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT dek_key_id, count(*) FROM vault_secrets GROUP BY 1").fetchall())


def test_the_key_stays_in_the_token_and_wraps_with_aes_gcm_bound_to_the_secret(softhsm_token, hsm_key):
    import pkcs11

    keys = hsm.Pkcs11Keys(softhsm.MODULE, softhsm_token.label,
                          str(softhsm_token.pin_file), [hsm_key])
    try:
        ring = crypto.Keyring([keys], hsm.key_id(hsm_key))
        data_key, wrapped = ring.new_data_key("s1")
        assert wrapped.key_id == f"pkcs11:{hsm_key}" and len(wrapped.wrapped) == 12 + 32 + 16  # IV, key, GCM tag
        assert data_key not in wrapped.wrapped
        assert ring.unwrap(wrapped, "s1") == data_key
        with pytest.raises(crypto.DecryptionFailed):  # bound to its secret (GCM associated data)
            ring.unwrap(wrapped, "s2")
        with pytest.raises(crypto.DecryptionFailed):
            ring.unwrap(crypto.WrappedKey(wrapped.key_id, wrapped.wrapped[:-1] + bytes([wrapped.wrapped[-1] ^ 1])), "s1")

        key = keys._key(hsm_key, fresh=False)
        assert key[pkcs11.Attribute.SENSITIVE] is True and key[pkcs11.Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            key[pkcs11.Attribute.VALUE]  # the token never hands the master key out
    finally:
        keys.close()


def test_secrets_are_wrapped_by_the_hsm_and_the_unwrapped_key_cache_stays_bounded(db_server, data_dir, tokens,
                                                                                 softhsm_token, hsm_key):
    with _vault(db_server, data_dir, softhsm_token, hsm_key, VAULT_DATA_KEY_CACHE_SIZE="3") as (app, url):
        client, svc = app.test_client(), tokens.headers("service")
        paths = [unique("hsm") for _ in range(6)]
        for i, path in enumerate(paths):
            assert _write(client, svc, path, {"n": i}).status_code == 200
        for _ in range(2):
            for i, path in enumerate(paths):
                read = client.get(f"{V1}/secret/data/{path}", headers=svc)
                assert read.status_code == 200 and read.json["data"] == {"n": i}
        assert _stored_key_ids(url) == {f"pkcs11:{hsm_key}": 6}
        cache = app.extensions["keyring"].cache_info()
        assert cache.maxsize == 3 and cache.currsize == 3 and cache.misses >= 12  # six keys never fit in three


def test_a_token_removed_mid_run_makes_requests_503_with_nothing_written_then_it_comes_back(
        db_server, data_dir, tokens, softhsm_token, hsm_key):
    with _vault(db_server, data_dir, softhsm_token, hsm_key, VAULT_DATA_KEY_CACHE_SIZE="0") as (app, url):
        client, svc = app.test_client(), tokens.headers("service")
        existing = unique("kept")
        assert _write(client, svc, existing, {"v": 1}).status_code == 200

        with softhsm_token.removed():
            new = unique("new")
            for response in (_write(client, svc, new, {"v": 1}),                   # a new secret: wrap
                             _write(client, svc, existing, {"v": 2}),              # a new version: unwrap
                             client.get(f"{V1}/secret/data/{existing}", headers=svc)):  # a read: unwrap
                assert response.status_code == 503, response.get_data(as_text=True)
                assert response.json["error_code"] == "INTRA_SERVICE_COMMUNICATION_ERROR"
                assert "pkcs11" not in response.get_data(as_text=True).lower()
            assert client.get(f"{V1}/secret/metadata/{new}", headers=tokens.headers("admin")).status_code == 404
            with psycopg.connect(url) as conn:
                versions = conn.execute("SELECT count(*) FROM vault_secret_versions").fetchone()[0]
            assert versions == 1  # nothing half-written: no secret without a version, no version 2

        # Put back: the provider re-initialises the library and opens a new session by itself.
        assert _write(client, svc, new, {"v": 1}).status_code == 200
        assert _write(client, svc, existing, {"v": 2}).status_code == 200
        read = client.get(f"{V1}/secret/data/{existing}", headers=svc)
        assert read.status_code == 200 and read.json["data"] == {"v": 2}


def test_an_unreachable_hsm_at_start_or_a_wrong_pin_is_503_not_a_crash(db_server, data_dir, tokens, softhsm_token,
                                                                      hsm_key, tmp_path):
    wrong_pin = tmp_path / "wrong-pin"
    wrong_pin.write_text("not-the-pin\n")
    for extra in ({"VAULT_PKCS11_TOKEN_LABEL": "no-such-token"}, {"VAULT_PKCS11_PIN_FILE": str(wrong_pin)}):
        with _vault(db_server, data_dir, softhsm_token, hsm_key, **extra) as (app, _):
            response = _write(app.test_client(), tokens.headers("service"), unique("x"), {"v": 1})
            assert response.status_code == 503 and response.json["error_code"] == "INTRA_SERVICE_COMMUNICATION_ERROR"


def test_pkcs11_settings_are_checked_at_start(softhsm_token):
    from common import config

    with pytest.raises(config.ConfigError) as info:
        config.load(config.KEYRING, {"VAULT_PKCS11_MODULE": softhsm_token.settings("k")["VAULT_PKCS11_MODULE"]}, environ={})
    assert [line.split(" ")[0] for line in info.value.problems] == [
        "VAULT_PKCS11_TOKEN_LABEL", "VAULT_PKCS11_PIN_FILE", "VAULT_PKCS11_KEY_LABELS"]
    settings = config.load(config.KEYRING, softhsm_token.settings("a", "b"), environ={})  # no VAULT_MASTER_KEYS needed
    assert config.master_key_ids(settings) == ["pkcs11:a", "pkcs11:b"]


def test_rewrap_from_one_hsm_key_to_the_next_then_a_backup_restores_with_the_new_key_alone(
        db_server, data_dir, tokens, softhsm_token, vault_config, tmp_path):
    """Rotation inside the HSM (pkcs11:old -> pkcs11:new), then the restore check of a backup
    whose data keys the HSM wraps: it refuses without the key, and decrypts everything with it."""
    import io
    import json
    import os
    import subprocess
    import sys

    from vault_service.app import create_app
    from vault_service.rewrap import rewrap

    base_env = {k: str(v) for k, v in vault_config.items()}
    old, new = unique("old"), unique("new")
    for label in (old, new):
        softhsm_token.create_key(label, base_env)
    svc = tokens.headers("service")
    with _vault(db_server, data_dir, softhsm_token, old) as (app, url):
        for i in range(5):
            assert _write(app.test_client(), svc, f"rot/{i}", {"i": i}).status_code == 200
        both = create_app(support.service_settings(data_dir, url, LOG_LEVEL="WARNING", **softhsm_token.settings(new, old)))
        try:
            moved = rewrap(both.extensions["db"], both.extensions["keyring"], stream=io.StringIO())
        finally:
            both.extensions["keyring"].close()
            both.extensions["db"].close()
        assert moved["remaining"] == 0 and moved["by_master_key"] == {hsm.key_id(new): 5}

        def admin(*args, target, labels):
            env = {**os.environ, **softhsm_token.env(), **support.service_settings(data_dir, target, LOG_LEVEL="WARNING"),
                   **softhsm_token.settings(*labels)}
            return subprocess.run([sys.executable, "-m", "vault_service.cli", *args], env=env, capture_output=True,
                                  text=True, timeout=120)

        file = tmp_path / "hsm.backup"
        made = admin("backup", str(file), target=url, labels=[new])
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["master_key_ids"] == {hsm.key_id(new): 5}
        with support.fresh_database(db_server, "vault_hsm_restore") as target:
            refused = admin("restore", str(file), target=target, labels=[old])
            assert refused.returncode == 1 and hsm.key_id(new) in refused.stderr
            restored = admin("restore", str(file), target=target, labels=[new])
            assert restored.returncode == 0, restored.stderr
            report = json.loads(restored.stdout)
            assert report["verified"] and report["versions_decrypted"] == 5
