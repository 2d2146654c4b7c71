"""Migrations on rows written before them: 0002's last_error (a message then) becomes a time, and
the message moves into last_error_details, so the PrivX Go SDK can decode every stored account;
0007 binds every stored password to the endpoint it has now (credential binding)."""
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


UNDO_0007 = """
    ALTER TABLE sm_accounts DROP COLUMN bound_endpoint;
    ALTER TABLE sm_td_managed_accounts DROP COLUMN bound_endpoints;
    ALTER TABLE sm_target_domains DROP COLUMN bind_account_dns;
    DELETE FROM schema_migrations WHERE service = 'secrets-manager' AND version = 7;
"""


def test_stored_passwords_are_bound_to_the_endpoints_they_have_now(db_server):
    """Migration 0007 binds every stored password to its endpoint as it is (credential binding),
    with the very fingerprint the drivers compute (drivers.binding)."""
    from psycopg.types.json import Jsonb

    from secrets_manager_service.drivers import binding

    endpoints = [
        {"type": "LDAP", "ldap_protocol": "STARTTLS", "ldap_address": "dir1.example.test", "ldap_port": 389,
         "ldap_bind_dn": "cn=binder,dc=example,dc=test", "ldap_root_certificates": "-----BEGIN CERTIFICATE-----\nx\n",
         "ldap_skip_strict_cert_check": False, "ldap_base_dn": "dc=example,dc=test"},
        {"type": "AD", "ldap_protocol": "LDAPS", "ldap_address": "10.0.0.2", "ldap_port": 636,
         "ldap_bind_dn": "CORP\\binder ✓", "ldap_root_certificates": "", "ldap_skip_strict_cert_check": True,
         "ldap_base_dn": "dc=example,dc=test"},
    ]
    with support.fresh_database(db_server, "sm_migrate") as url:
        db = Database(url, service="secrets-manager", migrations_package="secrets_manager_service")
        try:
            db.migrate()
            host, account, domain, scanned, managed, policy = (uuid.uuid4() for _ in range(6))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(UNDO_0007)  # the schema as 0006 left it
                conn.execute("""INSERT INTO sm_password_policies VALUES (%s, 'p', 0, 8, 8, true, true, true, true, 3,
                                0, 0, 0, 3600, false, false, now(), now(), 'me', 'me')""", (policy,))
                conn.execute("""INSERT INTO sm_hosts (id, address, port, operating_system, protocol, password_policy_id,
                                certificate_validation_options, created_by, updated_by)
                                VALUES (%s, 'db.example.test', 6432, 'LINUX', 'POSTGRESQL', %s, 'verify-full', 'me', 'me')""",
                             (host, policy))
                conn.execute("INSERT INTO sm_accounts (id, host_id, account, created_by) VALUES (%s, %s, 'app', 'me')",
                             (account, host))
                conn.execute("""INSERT INTO sm_target_domains (id, name, endpoints, author, updated_by)
                                VALUES (%s, 'd', %s, 'me', 'me')""", (domain, Jsonb(endpoints)))
                conn.execute("""INSERT INTO sm_td_accounts (id, domain_id, identity, dn, username)
                                VALUES (%s, %s, 'x', 'uid=u,dc=example,dc=test', 'u')""", (scanned, domain))
                conn.execute("""INSERT INTO sm_td_managed_accounts (id, domain_id, account_id, password_policy_id,
                                author, updated_by) VALUES (%s, %s, %s, %s, 'me', 'me')""",
                             (managed, domain, scanned, policy))
            assert db.migrate() == ["secrets-manager/0007_credential_binding.sql"]
            with psycopg.connect(url) as conn:
                (bound_endpoint,), = conn.execute("SELECT bound_endpoint FROM sm_accounts").fetchall()
                (bound_endpoints,), = conn.execute("SELECT bound_endpoints FROM sm_td_managed_accounts").fetchall()
                (said,), = conn.execute("SELECT bind_account_dns FROM sm_target_domains").fetchall()
            assert bound_endpoint == binding.host_fingerprint("POSTGRESQL", "db.example.test", 6432, "verify-full")
            assert bound_endpoints == [binding.saved_endpoint_fingerprint(e) for e in endpoints]
            assert said == []
        finally:
            db.close()
