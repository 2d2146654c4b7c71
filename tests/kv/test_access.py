"""The KV page's access table, every row against every kind of caller: scopes are checked
before the path is looked up, so a refusal is a 403 whether or not the secret exists."""
from __future__ import annotations

import pytest

from tests.support import unique
from vault_service.app import create_app

CALLERS = ("none", "bad", "user", "admin", "hostsManage", "service", "vaultManage", "vaultAdd")
MANAGE = {"admin", "hostsManage", "service"}
ANY_VALID = {"user", "admin", "hostsManage", "service", "vaultManage", "vaultAdd"}
EVERYONE = set(CALLERS)
MERGE = {"Content-Type": "application/merge-patch+json"}

# (method, path, body, headers, who may) — the rows of docs/API-hashicorp-kv.md's Access table.
ROWS = [
    ("GET", "/v1/secret/data/{p}", None, {}, {"service"}),
    ("POST", "/v1/secret/data/{p}", {"data": {"a": 1}}, {}, {"service"}),
    ("PUT", "/v1/secret/data/{p}", {"data": {"a": 1}}, {}, {"service"}),
    ("PATCH", "/v1/secret/data/{p}", {"data": {"a": 1}}, MERGE, {"service"}),
    ("GET", "/v1/secret/subkeys/{p}", None, {}, {"service"}),
    ("DELETE", "/v1/secret/data/{p}", None, {}, MANAGE),
    ("POST", "/v1/secret/delete/{p}", {"versions": [1]}, {}, MANAGE),
    ("POST", "/v1/secret/undelete/{p}", {"versions": [1]}, {}, MANAGE),
    ("POST", "/v1/secret/destroy/{p}", {"versions": [1]}, {}, {"admin", "service"}),
    ("GET", "/v1/secret/metadata/{p}", None, {}, MANAGE),
    ("POST", "/v1/secret/metadata/{p}", {"max_versions": 5}, {}, MANAGE),
    ("PUT", "/v1/secret/metadata/{p}", {"max_versions": 5}, {}, MANAGE),
    ("PATCH", "/v1/secret/metadata/{p}", {"max_versions": 5}, MERGE, MANAGE),
    ("DELETE", "/v1/secret/metadata/{p}", None, {}, MANAGE),
    ("LIST", "/v1/secret/metadata/{p}", None, {}, MANAGE),
    ("GET", "/v1/secret/metadata/{p}?list=true", None, {}, MANAGE),
    ("GET", "/v1/secret/config", None, {}, MANAGE),
    ("POST", "/v1/secret/config", {}, {}, {"admin"}),
    ("GET", "/v1/sys/internal/ui/mounts/secret/{p}", None, {}, ANY_VALID),
    ("GET", "/v1/sys/mounts", None, {}, ANY_VALID),
    ("GET", "/v1/auth/token/lookup-self", None, {}, ANY_VALID),
    ("GET", "/v1/sys/health", None, {}, EVERYONE),
    ("GET", "/v1/sys/seal-status", None, {}, EVERYONE),
    ("GET", "/v1/sys/internal/ui/mounts", None, {}, EVERYONE),
]


@pytest.fixture(scope="module")
def kv_client(kv_env):
    app = create_app(dict(kv_env))
    yield app.test_client()
    app.extensions["db"].close()


def _token(tokens, caller):
    if caller == "none":
        return {}
    if caller == "bad":
        return {"X-Vault-Token": tokens("service", audience="another-audience")}
    return {"X-Vault-Token": tokens(caller)}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]} {r[1]}" for r in ROWS])
@pytest.mark.parametrize("caller", CALLERS)
def test_access(kv_client, tokens, row, caller):
    method, path, body, headers, allowed = row
    name = unique("access")
    response = kv_client.open(path.format(p=name), method=method, json=body,
                              headers={**headers, **_token(tokens, caller)})
    if caller in allowed:
        assert response.status_code != 403, (response.status_code, response.get_data(as_text=True))
        assert response.status_code < 500
    else:
        assert response.status_code == 403 and response.json == {"errors": ["permission denied"]}, response.json
