"""Fixtures of the target-domain tests: a private slapd with users (skipped with the reason where
slapd cannot run); the Secrets Manager's (real issuer, real Vault under gunicorn) come from the
parent conftest, so this package shares them instead of starting its own."""
from __future__ import annotations

import pytest
import requests

from tests.secrets_manager.helpers import VaultReader
from common.devtools import slapd


class DirectVault(VaultReader):
    def raw(self, path: str) -> dict | None:
        """The newest data of a Vault secret, read with a service token; None if there is none."""
        response = requests.get(f"{self.base}/secret/data/{path}", headers=self.headers, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["data"]


@pytest.fixture(scope="session")
def vault(vault_url, tokens):
    return DirectVault(vault_url, tokens)


def _require_slapd():
    reason = slapd.available()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def directory(tmp_path_factory):
    """A slapd with users user1..user30 (passwords set by Password Modify), shared by the session."""
    _require_slapd()
    with slapd.Slapd(tmp_path_factory.mktemp("slapd"), users=30) as server:
        yield server


@pytest.fixture()
def own_directory(tmp_path):
    """A slapd of the test's own, for tests that change its users or take it down."""
    _require_slapd()
    with slapd.Slapd(tmp_path / "slapd", users=5) as server:
        yield server
