"""The count of host accounts kept by triggers (migration 0015), the `count` of an admin's account
list without a filter: it equals count(*) after concurrent inserts and deletes, rolled back or
committed, a host's removal (its accounts go by cascade) and a truncate; a list's snapshot sees a
count that agrees with its rows; the migration counts the accounts already there; and filtered
lists still count their matches."""
from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from common.db import Database
from secrets_manager_service.account_secrets import store
from tests import support

pytestmark = pytest.mark.slow

UNDO_0015 = """
    DROP TABLE sm_account_counts;
    DROP FUNCTION sm_account_counts_add, sm_account_counts_clear CASCADE;
    DELETE FROM schema_migrations WHERE service = 'secrets-manager' AND version = 15;
"""
ROLE = "counted-role"


def _policy(conn) -> uuid.UUID:
    policy = uuid.uuid4()
    conn.execute("""INSERT INTO sm_password_policies VALUES (%s, 'p', 0, 8, 8, true, true, true, true, 3,
                    0, 0, 0, 3600, false, false, now(), now(), 'me', 'me')""", (policy,))
    return policy


def _hosts(conn, policy, n: int) -> list[uuid.UUID]:
    """`n` hosts, every other one with ROLE."""
    hosts = [uuid.uuid4() for _ in range(n)]
    for i, host in enumerate(hosts):
        conn.execute("""INSERT INTO sm_hosts (id, address, port, operating_system, protocol, password_policy_id,
                                              access_role_ids, created_by, updated_by)
                        VALUES (%s, %s, 22, 'LINUX', 'NONE', %s, %s, 'me', 'me')""",
                     (host, f"10.9.0.{i}", policy, [ROLE] if i % 2 == 0 else []))
    return hosts


def _add_accounts(conn, host, n: int) -> None:
    conn.execute("""INSERT INTO sm_accounts (id, host_id, account, created_by)
                    SELECT gen_random_uuid(), %s, 'acct-' || md5(random()::text), 'me' FROM generate_series(1, %s)""",
                 (host, n))


def _kept_and_counted(url) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("""SELECT (SELECT coalesce(sum(n), 0) FROM sm_account_counts),
                                      (SELECT count(*) FROM sm_accounts)""").fetchone()


def _listed_total(db, **filters) -> int:
    arguments = {"role_ids": None, "sortkey": "path", "sortdir": "ASC", "offset": 0, "limit": 5, **filters}
    return store.list_accounts(db, **arguments)[0]


@pytest.fixture()
def migrated(db_server):
    with support.fresh_database(db_server, "sm_counts") as url:
        db = Database(url, service="secrets-manager", migrations_package="secrets_manager_service")
        try:
            db.migrate()
            yield url, db
        finally:
            db.close()


def test_the_migration_counts_the_accounts_already_there(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UNDO_0015)  # the schema as 0014 left it
        hosts = _hosts(conn, _policy(conn), 3)
        for host in hosts:
            _add_accounts(conn, host, 40)
    assert db.migrate() == ["secrets-manager/0015_account_counts.sql"]
    assert _kept_and_counted(url) == (120, 120)
    assert _listed_total(db) == 120
    with psycopg.connect(url, autocommit=True) as conn:
        _add_accounts(conn, hosts[0], 1)
    assert _listed_total(db) == _listed_total(db, offset=1000) == 121  # a page past the end too


def test_an_empty_database_counts_nothing(migrated):
    url, db = migrated
    assert _listed_total(db) == _listed_total(db, offset=10) == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM sm_account_counts").fetchone()[0] == 0


def test_the_count_agrees_after_concurrent_inserts_and_deletes_committed_or_rolled_back(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        hosts = _hosts(conn, _policy(conn), 8)
        for host in hosts:
            _add_accounts(conn, host, 20)

    def writer(seed: int):
        def run():
            rng = random.Random(seed)
            with psycopg.connect(url, autocommit=True) as conn:
                for _ in range(30):
                    with conn.transaction(force_rollback=rng.random() < 0.3):
                        for _ in range(rng.randint(1, 3)):
                            host = rng.choice(hosts)
                            if rng.random() < 0.6:
                                _add_accounts(conn, host, rng.randint(1, 4))
                            else:
                                conn.execute("""DELETE FROM sm_accounts WHERE id IN (
                                                    SELECT id FROM sm_accounts WHERE host_id = %s
                                                     ORDER BY random() LIMIT %s FOR UPDATE SKIP LOCKED)""",
                                             (host, rng.randint(0, 3)))
        return run

    support.all_at_once([writer(seed) for seed in range(8)])
    kept, counted = _kept_and_counted(url)
    assert kept == counted
    assert _listed_total(db) == counted
    with psycopg.connect(url) as conn:
        slots = conn.execute("SELECT count(*) FROM sm_account_counts").fetchone()[0]
    assert 1 <= slots <= 8


def test_a_lists_snapshot_sees_a_count_that_agrees_with_its_rows(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        host = _hosts(conn, _policy(conn), 1)[0]
        _add_accounts(conn, host, 10)
    with psycopg.connect(url) as writing:
        _add_accounts(writing, host, 5)
        writing.execute("DELETE FROM sm_accounts WHERE id IN (SELECT id FROM sm_accounts LIMIT 3)")
        assert _listed_total(db, limit=100) == 10  # not committed yet
        writing.commit()
    assert _listed_total(db, limit=100) == 12
    assert len(store.list_accounts(db, role_ids=None, sortkey="path", sortdir="ASC", offset=0, limit=100)[1]) == 12


def test_a_hosts_removal_and_truncates_keep_the_count(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        policy = _policy(conn)
        hosts = _hosts(conn, policy, 3)
        for host in hosts:
            _add_accounts(conn, host, 7)
        conn.execute("DELETE FROM sm_hosts WHERE id = ANY (%s)", (hosts[:2],))  # their accounts by cascade
        assert _kept_and_counted(url) == (7, 7)
        conn.execute("TRUNCATE sm_accounts CASCADE")
        assert _kept_and_counted(url) == (0, 0)
        _add_accounts(conn, hosts[2], 4)
        assert _kept_and_counted(url) == (4, 4)
        conn.execute("TRUNCATE sm_hosts CASCADE")  # sm_accounts with it
        assert _kept_and_counted(url) == (0, 0)
        _add_accounts(conn, _hosts(conn, policy, 1)[0], 2)
    assert _listed_total(db) == 2


def test_filtered_lists_count_their_matches(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        hosts = _hosts(conn, _policy(conn), 4)  # hosts 0 and 2 with ROLE
        for i, host in enumerate(hosts):
            _add_accounts(conn, host, 3 + i)
        conn.execute("INSERT INTO sm_accounts (id, host_id, account, created_by) VALUES (%s, %s, 'root', 'me')",
                     (uuid.uuid4(), hosts[1]))
    assert _listed_total(db) == 3 + 4 + 5 + 6 + 1
    assert _listed_total(db, role_ids=[ROLE]) == 3 + 5
    assert _listed_total(db, role_ids=["another"]) == 0
    assert _listed_total(db, host_id=hosts[3]) == 6
    assert _listed_total(db, username="root") == 1
    assert _listed_total(db, keywords=["acct-"]) == 18
    assert _listed_total(db, keywords=["acct-"], offset=100) == 18
