"""Fixtures of the Secrets Manager tests: a real token issuer and a real Vault under gunicorn,
a Secrets Manager app on its own database, and helpers to look into the Vault directly.

A plugin (tests/conftest.py names it in pytest_plugins), not a conftest: tests/authz and
tests/secrets_manager/target_domains use the same session's servers without importing a
conftest, and each fixture has a name no other fixture has."""
from __future__ import annotations

import secrets
import uuid

import pytest
from psycopg import sql

from tests import support
from tests.sm_rotation import pg_target
from tests.secrets_manager.helpers import SmApi, VaultReader


@pytest.fixture(scope="session")
def sm_client_secret():
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def issuer_url(tmp_path_factory, data_dir, sm_client_secret):
    clients_file = support.write_issuer_clients(tmp_path_factory.mktemp("issuer") / "clients.json",
                                                sm_client_secret=sm_client_secret, name="Secrets Manager (tests)")
    env = support.service_settings(data_dir, ISSUER_CLIENTS_FILE=clients_file)
    with support.gunicorn("common.devtools.issuer.wsgi:app", env, health_path="/auth/api/v1/status") as base:
        yield base


@pytest.fixture(scope="session")
def token_url(issuer_url):
    return issuer_url + "/auth/api/v1/oauth/token"


@pytest.fixture(scope="session")
def sm_vault_db(db_server):
    with support.fresh_database(db_server, "sm_vault_test") as url:
        yield url


@pytest.fixture(scope="session")
def vault_url(sm_vault_db, data_dir, master_keys):
    env = support.service_settings(data_dir, sm_vault_db, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING")
    with support.gunicorn("vault_service.wsgi:app", env, workers=2, health_path="/vault/api/v1/status") as base:
        yield base


@pytest.fixture(scope="session")
def sm_db(db_server):
    with support.fresh_database(db_server, "sm_test") as url:
        yield url


@pytest.fixture(scope="session")
def sm_config(sm_db, data_dir, vault_url, token_url, sm_client_secret):
    return support.service_settings(data_dir, sm_db, VAULT_URL=vault_url, SM_TOKEN_URL=token_url,
                                    SM_CLIENT_SECRET=sm_client_secret, LOG_LEVEL="WARNING")


@pytest.fixture(scope="session")
def sm_app(sm_config):
    from secrets_manager_service.app import create_app

    app = create_app(sm_config)
    yield app
    app.extensions["db"].close()


@pytest.fixture()
def sm(sm_app, tokens):
    return SmApi(sm_app.test_client(), tokens)


@pytest.fixture(scope="session")
def vault_reader(vault_url, tokens):
    return VaultReader(vault_url, tokens)


@pytest.fixture(scope="session")
def target(tmp_path_factory):
    """A PostgreSQL that checks passwords, and a factory of login roles on it."""
    with pg_target.password_auth_postgres(tmp_path_factory.mktemp("target")) as (host, port, superuser, superpw):
        def new_role(password: str) -> str:
            name = f"app_{uuid.uuid4().hex[:10]}"
            with pg_target.connect(host, port, superuser, superpw) as conn:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
            return name

        yield {"host": host, "port": port, "superuser": superuser, "superpassword": superpw, "new_role": new_role}
