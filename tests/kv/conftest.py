"""The Vault under gunicorn on a database of its own (the KV mount's settings are global:
tests that change them must not reach other packages' secrets), and HashiCorp clients for it."""
from __future__ import annotations

import pytest
import requests

from tests import support
from tests.kv.servers import vault_under_gunicorn


@pytest.fixture(scope="session")
def kv_db(db_server):
    with support.fresh_database(db_server, "vault_kv_test") as url:
        yield url


@pytest.fixture(scope="session")
def kv_env(kv_db, data_dir, master_keys):
    settings = support.service_settings(data_dir, kv_db, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING")
    return {key: str(value) for key, value in settings.items()}


@pytest.fixture(scope="session")
def kv_base(kv_env):
    with vault_under_gunicorn(kv_env, workers=2) as base:
        yield base


@pytest.fixture(scope="session")
def service_token(tokens):
    return tokens("service", name="KV test client", email="kv@example.com")


@pytest.fixture()
def hvac_client(kv_base, service_token):
    """An hvac client with a `service` token, as a HashiCorp user would make it."""
    import hvac

    client = hvac.Client(url=kv_base, token=service_token)
    yield client
    client.adapter.close()


@pytest.fixture()
def http(kv_base):
    """Raw HTTP to the same server: `http("LIST", "/v1/secret/metadata", token=...)`."""
    session = requests.Session()

    def call(method, path, *, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers.setdefault("X-Vault-Token", token)
        return session.request(method, kv_base + path, headers=headers, timeout=15, **kwargs)

    yield call
    session.close()


@pytest.fixture()
def mount_defaults(http, tokens):
    """Tests that change the mount's settings put the defaults back afterwards."""
    yield
    response = http("POST", "/v1/secret/config", token=tokens("admin"),
                     json={"max_versions": 0, "cas_required": False, "delete_version_after": "0s"})
    assert response.status_code == 204, response.text
