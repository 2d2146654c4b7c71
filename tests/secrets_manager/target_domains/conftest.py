"""Fixtures of the target-domain tests: a private slapd with users (skipped with the reason where
slapd cannot run); the Secrets Manager's (real issuer, real Vault under gunicorn) come from the
plugin tests.secrets_manager.fixtures, so this package shares them instead of starting its own."""
from __future__ import annotations

import pytest
from common.devtools import slapd


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
