"""Migration 0002 on rows written before it: last_error (a message then) becomes a time, and the
message moves into last_error_details, so the PrivX Go SDK can decode every stored account."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from common.db import Database
from tests import support

pytestmark = pytest.mark.slow

UNDO_0002 = """
    DROP TABLE sm_rotation_states;
    ALTER TABLE sm_checkouts DROP COLUMN holder_role_ids, DROP COLUMN holder_admin;
    ALTER TABLE sm_accounts ALTER COLUMN last_error TYPE text USING NULL;
    DELETE FROM schema_migrations WHERE service = 'secrets-manager' AND version = 2;
"""


def test_stored_last_errors_become_times_and_their_messages_details(db_server):
    with support.fresh_database(db_server, "sm_migrate") as url:
        db = Database(url, service="secrets-manager", migrations_package="secrets_manager_service")
        try:
            db.migrate()
            host, failed, clean = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(UNDO_0002)  # the schema as 0001 left it
                policy = uuid.uuid4()
                conn.execute("""INSERT INTO sm_password_policies VALUES (%s, 'p', 0, 8, 8, true, true, true, true, 3,
                                0, 0, 0, 3600, false, false, now(), now(), 'me', 'me')""", (policy,))
                conn.execute("""INSERT INTO sm_hosts (id, address, port, operating_system, protocol, password_policy_id,
                                created_by, updated_by) VALUES (%s, 'h', 0, 'LINUX', 'NONE', %s, 'me', 'me')""",
                             (host, policy))
                conn.execute("""INSERT INTO sm_accounts (id, host_id, account, last_error, last_error_details, created_by,
                                updated) VALUES (%s, %s, 'root', 'the target refused the new password',
                                'connection refused', 'me', '2026-11-23T10:00:00Z'),
                                (%s, %s, 'other', NULL, NULL, 'me', now())""", (failed, host, clean, host))
            assert db.migrate() == ["secrets-manager/0002_write_ahead_rotation.sql"]
            with psycopg.connect(url) as conn:
                rows = dict((r[0], r[1:]) for r in conn.execute(
                    "SELECT id, last_error, last_error_details FROM sm_accounts").fetchall())
                assert conn.execute("SELECT count(*) FROM sm_rotation_states").fetchone()[0] == 0
            when, details = rows[failed]
            assert when == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
            assert details == "the target refused the new password (connection refused)"
            assert rows[clean] == (None, None)
        finally:
            db.close()
