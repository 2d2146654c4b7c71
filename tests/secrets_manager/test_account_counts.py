"""The counts kept by triggers for the `count` of an admin's account list without a filter: host
accounts (migration 0015) and managed directory accounts that may be checked out (0016). Each
equals count(*) after concurrent inserts, updates and deletes, rolled back or committed, cascades
and truncates; a list's snapshot sees a count that agrees with its rows; the migrations count the
accounts already there; and filtered lists still count their matches."""
from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from common.db import Database
from secrets_manager_service.account_secrets import store
from secrets_manager_service.target_domains import checkout_store
from tests import support

pytestmark = pytest.mark.slow

UNDO_0016 = """
    DROP TABLE sm_td_checkout_counts;
    DROP FUNCTION sm_td_checkout_counts_add, sm_td_checkout_counts_clear CASCADE;
    DROP INDEX sm_td_accounts_removed;
    DELETE FROM schema_migrations WHERE service = 'secrets-manager' AND version = 16;
"""
UNDO_0015 = UNDO_0016 + """
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
    assert db.migrate() == ["secrets-manager/0015_account_counts.sql", "secrets-manager/0016_managed_account_counts.sql"]
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


# --- managed directory accounts (0016) ------------------------------------------------------------

STATES = ("PENDING", "ACTIVE", "FAILED")


def _domains(conn, n: int) -> list[uuid.UUID]:
    domains = [uuid.uuid4() for _ in range(n)]
    for domain in domains:
        conn.execute("""INSERT INTO sm_target_domains (id, name, endpoints, author, updated_by)
                        VALUES (%s, %s, '[]', 'me', 'me')""", (domain, f"d-{domain}"))
    return domains


def _managed(conn, policy, domain, n: int, *, seed: int = 0) -> None:
    """`n` scanned accounts of `domain`, each managed, with every mix of the fields USABLE reads."""
    rng = random.Random(seed)
    for _ in range(n):
        account = uuid.uuid4()
        conn.execute("""INSERT INTO sm_td_accounts (id, domain_id, identity, dn, username, removed)
                        VALUES (%s, %s, %s, %s, %s, %s)""",
                     (account, domain, str(account), f"cn={account}", f"u-{account.hex[:8]}", rng.random() < 0.2))
        conn.execute("""INSERT INTO sm_td_managed_accounts (id, domain_id, account_id, password_policy_id, enabled,
                                                            explicit_checkout, state, author, updated_by)
                        VALUES (%s, %s, %s, %s, %s, %s, %s, 'me', 'me')""",
                     (uuid.uuid4(), domain, account, policy, rng.random() < 0.8, rng.random() < 0.8, rng.choice(STATES)))


def _directory(conn, n_domains: int, per_domain: int, *, seed: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """(policy, domains), each domain with `per_domain` managed accounts."""
    policy, domains = _policy(conn), _domains(conn, n_domains)
    for i, domain in enumerate(domains):
        _managed(conn, policy, domain, per_domain, seed=seed + i)
    return policy, domains


def _usable_total(db, **filters) -> int:
    arguments = {"role_ids": None, "keywords": [], "username": None, "domain_id": None, "sortkey": "path",
                 "sortdir": "ASC", "offset": 0, "limit": 5, **filters}
    return checkout_store.list_usable(db, **arguments)[0]


def _usable_counted(url) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {checkout_store.ACCOUNTS} WHERE {checkout_store.USABLE}").fetchone()[0]


def _kept_usable(url) -> int:
    """What the list answers, from the kept counts."""
    with psycopg.connect(url) as conn:
        return conn.execute(checkout_store._USABLE_TOTAL).fetchone()[0]


def _random_change(conn, rng, domains, accounts) -> None:
    """One statement that may change whether some managed accounts may be checked out."""
    managed = rng.sample(accounts, rng.randint(1, 3))
    change = rng.randrange(6)
    if change == 0:
        conn.execute("UPDATE sm_td_managed_accounts SET enabled = NOT enabled WHERE account_id = ANY (%s)", (managed,))
    elif change == 1:
        conn.execute("UPDATE sm_td_managed_accounts SET explicit_checkout = NOT explicit_checkout WHERE account_id = ANY (%s)",
                     (managed,))
    elif change == 2:
        conn.execute("UPDATE sm_td_managed_accounts SET state = %s, updated = now() WHERE account_id = ANY (%s)",
                     (rng.choice(STATES), managed))
    elif change == 3:
        conn.execute("UPDATE sm_td_accounts SET removed = NOT removed WHERE id = ANY (%s)", (managed,))
    elif change == 4:
        conn.execute("UPDATE sm_target_domains SET enabled = NOT enabled WHERE id = %s", (rng.choice(domains),))
    else:
        conn.execute("UPDATE sm_td_managed_accounts SET comment = md5(random()::text) WHERE account_id = ANY (%s)",
                     (managed,))


def test_the_directory_count_agrees_after_concurrent_changes_committed_or_rolled_back(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        domains = _directory(conn, 3, 30, seed=0)[1]
        accounts = [row[0] for row in conn.execute("SELECT account_id FROM sm_td_managed_accounts")]
    assert _usable_total(db) == _usable_counted(url) > 0

    def writer(seed: int):
        def run():
            rng = random.Random(seed)
            with psycopg.connect(url, autocommit=True) as conn:
                for _ in range(25):
                    try:
                        with conn.transaction(force_rollback=rng.random() < 0.3):
                            for _ in range(rng.randint(1, 3)):
                                _random_change(conn, rng, domains, accounts)
                    except psycopg.errors.DeadlockDetected:
                        pass  # two writers updating the same rows in other orders: one gives way
        return run

    support.all_at_once([writer(seed) for seed in range(6)])
    assert _kept_usable(url) == _usable_counted(url)
    assert _usable_total(db) == _usable_total(db, offset=1000) == _usable_counted(url)


def test_directory_accounts_removed_moved_deleted_and_truncated_keep_the_count(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        policy, domains = _directory(conn, 3, 20, seed=10)
        steps = [
            "UPDATE sm_td_managed_accounts SET enabled = true, explicit_checkout = true, state = 'ACTIVE'",
            "UPDATE sm_td_accounts SET removed = true WHERE id IN (SELECT id FROM sm_td_accounts LIMIT 7)",
            "UPDATE sm_target_domains SET enabled = false WHERE id = %(d0)s",
            "UPDATE sm_td_managed_accounts SET domain_id = %(d2)s WHERE domain_id = %(d1)s",  # (not done by the API)
            "DELETE FROM sm_td_accounts WHERE id IN (SELECT account_id FROM sm_td_managed_accounts WHERE domain_id = %(d2)s LIMIT 5)",
            "DELETE FROM sm_target_domains WHERE id = %(d2)s",  # its scanned and managed accounts by cascade
            "UPDATE sm_target_domains SET enabled = true",
        ]
        for step in steps:
            conn.execute(step, {f"d{i}": domain for i, domain in enumerate(domains)})
            assert _kept_usable(url) == _usable_counted(url), step
        assert _usable_counted(url) > 0
        conn.execute("TRUNCATE sm_td_managed_accounts CASCADE")
        assert _kept_usable(url) == _usable_counted(url) == 0
        _managed(conn, policy, domains[0], 10, seed=20)
        conn.execute("TRUNCATE sm_target_domains CASCADE")
        assert _kept_usable(url) == _usable_counted(url) == 0
        _managed(conn, policy, _domains(conn, 1)[0], 10, seed=21)
    assert _usable_total(db) == _usable_counted(url)


def test_the_migration_counts_the_managed_accounts_already_there(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UNDO_0016)  # the schema as 0015 left it
        _directory(conn, 2, 25, seed=30)
    assert db.migrate() == ["secrets-manager/0016_managed_account_counts.sql"]
    assert _usable_total(db) == _kept_usable(url) == _usable_counted(url) > 0


def test_filtered_directory_lists_count_their_matches(migrated):
    url, db = migrated
    with psycopg.connect(url, autocommit=True) as conn:
        policy = _policy(conn)
        domains = _domains(conn, 2)
        _managed(conn, policy, domains[0], 10)
        _managed(conn, policy, domains[1], 6)
        conn.execute("UPDATE sm_td_managed_accounts SET enabled = true, explicit_checkout = true, state = 'ACTIVE'")
        conn.execute("UPDATE sm_td_accounts SET removed = false")
        conn.execute("UPDATE sm_td_managed_accounts SET access_role_ids = %s WHERE domain_id = %s", ([ROLE], domains[1]))
    assert _usable_total(db) == 16
    assert _usable_total(db, domain_id=domains[0]) == 10
    assert _usable_total(db, role_ids=[ROLE]) == 6
    assert _usable_total(db, keywords=["u-"]) == 16
