"""Fixtures for the rotation tests: a PostgreSQL that checks passwords, a stand-in SSH host."""
from __future__ import annotations

import pytest

from tests.sm_rotation.pg_target import password_auth_postgres


@pytest.fixture(scope="session")
def password_postgres(tmp_path_factory):
    """(host, port, superuser, superpassword) of a scram-sha-256 PostgreSQL, shared by the session."""
    with password_auth_postgres(tmp_path_factory.mktemp("pg-password-auth")) as server:
        yield server
