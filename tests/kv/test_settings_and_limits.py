"""VAULT_KV_MOUNT and the 8 KiB limits of tokens and URLs (through gunicorn too, in test_wire)."""
from __future__ import annotations

import pytest

from common import config
from tests.support import unique
from vault_service.app import create_app


@pytest.fixture(scope="module")
def kv_app(kv_env):
    app = create_app(dict(kv_env))
    yield app
    app.extensions["db"].close()


def test_a_token_over_8_kib_is_403(kv_app, tokens):
    token = tokens("service", padding="x" * 9000)
    assert len(token) > 8192
    response = kv_app.test_client().get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert response.status_code == 403 and response.json == {"errors": ["permission denied"]}


def test_a_url_over_8_kib_is_414(kv_app, tokens):
    response = kv_app.test_client().get(f"/v1/secret/data/{'a' * 9000}", headers={"X-Vault-Token": tokens("service")})
    assert response.status_code == 414 and response.json == {"errors": ["URI too long"]}


def test_another_mount_name(kv_env, tokens):
    app = create_app({**kv_env, "VAULT_KV_MOUNT": "kv"})
    client, headers = app.test_client(), {"X-Vault-Token": tokens("service")}
    path = unique("mount")
    assert client.post(f"/v1/kv/data/{path}", headers=headers, json={"data": {"a": 1}}).status_code == 200
    assert client.get(f"/v1/kv/data/{path}", headers=headers).json["data"]["data"] == {"a": 1}
    assert client.get("/v1/sys/internal/ui/mounts/kv/x", headers=headers).json["data"]["path"] == "kv/"
    assert client.get(f"/v1/secret/data/{path}", headers=headers).status_code == 404
    app.extensions["db"].close()


def test_an_empty_mount_turns_v1_off(kv_env, tokens):
    app = create_app({**kv_env, "VAULT_KV_MOUNT": ""})
    client = app.test_client()
    for path in ("/v1/sys/health", "/v1/secret/data/x", "/v1/", "/v1"):
        response = client.get(path, headers={"X-Vault-Token": tokens("service")})
        assert response.status_code == 404 and response.json == {"errors": []}, path
    assert client.get("/vault/api/v1/status").status_code == 200
    app.extensions["db"].close()


@pytest.mark.parametrize("mount", ["sys", "auth", "identity", "cubbyhole", "a/b", "x" * 65, "bad name"])
def test_a_mount_vault_would_refuse_stops_the_app(kv_env, mount):
    with pytest.raises(config.ConfigError, match="VAULT_KV_MOUNT"):
        create_app({**kv_env, "VAULT_KV_MOUNT": mount})


def test_rate_limits_count_vault_tokens(kv_env, tokens):
    app = create_app({**kv_env, "RATE_LIMIT_READS": 2, "REDIS_URL": ""})
    client, headers = app.test_client(), {"X-Vault-Token": tokens("admin")}
    statuses = [client.open("/v1/secret/metadata", method="LIST", headers=headers).status_code for _ in range(3)]
    assert 429 not in statuses[:2] and statuses[2] == 429
    limited = client.get("/v1/secret/config", headers=headers)
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert limited.json["errors"][0].startswith("rate limit reached")
    app.extensions["db"].close()
