"""What reaches the database: only ciphertext, bound to its secret and version."""
from __future__ import annotations

import io


from tests import support
from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


def _secret_id(sql, name):
    return sql.execute("SELECT id FROM vault_secrets WHERE owner_id = '' AND name = %s", (name,)).fetchone()[0]


def test_database_holds_only_ciphertext(client, tokens, sql):
    marker = "plaintext-marker-" + unique("m")
    name = create_shared(client, tokens, data={"password": marker})
    client.post(f"{V1}/secret/data/{name}", headers=tokens.headers("service"), json={"data": {"pw": marker + "-v2"}})
    secret_id = _secret_id(sql, name)
    rows = sql.execute("SELECT t::text FROM vault_secret_versions t WHERE secret_id = %s", (secret_id,)).fetchall()
    rows += sql.execute("SELECT t::text FROM vault_secrets t WHERE id = %s", (secret_id,)).fetchall()
    assert len(rows) == 3
    for (text,) in rows:
        assert marker not in text and marker.encode().hex() not in text
    ciphertexts = sql.execute("SELECT ciphertext FROM vault_secret_versions WHERE secret_id = %s", (secret_id,)).fetchall()
    assert all(marker.encode() not in bytes(c) for (c,) in ciphertexts)


def test_ciphertext_copied_onto_another_secret_does_not_decrypt(client, tokens, sql):
    role = new_role()
    source = create_shared(client, tokens, data={"password": "source-secret"}, read_roles=[role])
    target = create_shared(client, tokens, data={"password": "target-secret"}, read_roles=[role])
    sql.execute(
        """UPDATE vault_secret_versions SET ciphertext = (SELECT ciphertext FROM vault_secret_versions WHERE secret_id = %s AND version = 1)
            WHERE secret_id = %s AND version = 1""",
        (_secret_id(sql, source), _secret_id(sql, target)))
    response = client.get(f"{V1}/secrets/{target}", headers=tokens.headers("user", roles=[role]))
    body = assert_error(response, 500, "GENERAL_ERROR")
    text = response.get_data(as_text=True)
    assert "source-secret" not in text and "Traceback" not in text
    assert "decrypt" in body["error_message"]


def test_ciphertext_moved_to_another_version_does_not_decrypt(client, tokens, sql):
    name = create_shared(client, tokens, data={"v": 1})
    svc = tokens.headers("service")
    client.post(f"{V1}/secret/data/{name}", headers=svc, json={"data": {"v": 2}})
    secret_id = _secret_id(sql, name)
    sql.execute(
        """UPDATE vault_secret_versions SET ciphertext = (SELECT ciphertext FROM vault_secret_versions WHERE secret_id = %(id)s AND version = 1)
            WHERE secret_id = %(id)s AND version = 2""", {"id": secret_id})
    assert_error(client.get(f"{V1}/secret/data/{name}", headers=svc), 500, "GENERAL_ERROR")
    assert client.get(f"{V1}/secret/data/{name}?version=1", headers=svc).json["data"] == {"v": 1}


def test_swapped_data_keys_do_not_decrypt(client, tokens, sql):
    a = create_shared(client, tokens, data={"v": "a"})
    b = create_shared(client, tokens, data={"v": "b"})
    sql.execute("UPDATE vault_secrets SET dek_wrapped = (SELECT dek_wrapped FROM vault_secrets WHERE id = %s) WHERE id = %s",
                (_secret_id(sql, a), _secret_id(sql, b)))
    assert_error(client.get(f"{V1}/secret/data/{b}", headers=tokens.headers("service")), 500, "GENERAL_ERROR")


def test_master_key_rotation_rewraps_every_data_key(db_server, data_dir, tokens, master_keys):
    from vault_service.app import create_app
    from vault_service.rewrap import rewrap

    with support.fresh_database(db_server, "vault_rotation") as url:
        base = support.service_settings(data_dir, url)
        k1, k2 = master_keys.split(",")
        apps = []
        try:
            old = create_app({**base, "VAULT_MASTER_KEYS": k1})
            apps.append(old)
            svc = tokens.headers("service")
            paths = [unique("rot") for _ in range(3)]
            for path in paths:
                old.test_client().post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"p": path}})
            both = create_app({**base, "VAULT_MASTER_KEYS": f"{k2},{k1}"})  # k2 active, k1 still known
            apps.append(both)
            moved = rewrap(both.extensions["db"], both.extensions["keyring"], stream=io.StringIO())
            assert moved["rewrapped"] == 3 and moved["remaining"] == 0
            assert rewrap(both.extensions["db"], both.extensions["keyring"], stream=io.StringIO())["rewrapped"] == 0
            only_new = create_app({**base, "VAULT_MASTER_KEYS": k2})
            apps.append(only_new)
            for path in paths:
                assert only_new.test_client().get(f"{V1}/secret/data/{path}", headers=svc).json["data"] == {"p": path}
            # The old key alone can no longer open them.
            assert old.test_client().get(f"{V1}/secret/data/{paths[0]}", headers=svc).status_code == 500
        finally:
            for app in apps:
                app.extensions["db"].close()
