"""Account search by the segments and infixes of `search_text` (migration 0014,
common/search_tokens.py): the same accounts in the same order as the substring query alone, for
keywords that are whole accounts, infixes, prefixes, parts across the path's '/', of any case,
with LIKE's wildcards; the index is what `acct042` uses among 10,000 accounts; and the
migration indexes the accounts already there."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from common.db import Database, like_escaped
from secrets_manager_service.account_secrets import store
from tests import query_plans, support


def _search(db, keywords: list[str], *, role_ids=None, sortkey="path", sortdir="ASC", offset=0, limit=1000):
    total, rows = store.list_accounts(db, role_ids=role_ids, keywords=keywords, sortkey=sortkey, sortdir=sortdir,
                                      offset=offset, limit=limit)
    return total, [(r["account"], r["host_id"], r["address"]) for r in rows]


_ORDER = {"path": "h.id {dir}, a.account {dir}", "username": "a.account {dir}, h.id {dir}",
          "created": "a.created {dir}, a.id", "updated": "a.updated {dir}, a.id"}


def _substring_search(url, keywords: list[str], *, role_ids=None, sortkey="path", sortdir="ASC", offset=0, limit=1000):
    """What the search answered before tokens: every keyword a substring of `search_text`."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"""SELECT a.account, h.id::text, h.address FROM sm_accounts a JOIN sm_hosts h ON h.id = a.host_id
                                 WHERE a.search_text LIKE ALL (%(patterns)s)
                                   AND (%(roles)s::text[] IS NULL OR h.access_role_ids && %(roles)s::text[])
                                 ORDER BY {_ORDER[sortkey].format(dir=sortdir)}""",
                            {"patterns": [f"%{like_escaped(k.lower())}%" for k in keywords], "roles": role_ids}).fetchall()
    return len(rows), [tuple(r) for r in rows[offset:offset + limit]]


def test_a_search_finds_what_the_substring_query_finds_in_its_order(sm, sm_app, sm_db):
    tag = uuid.uuid4().hex[:8]
    role = support.new_role("tokens")
    policy = sm.policy()
    accounts = ["acct042", "xacct042y", "acct0420", "svc-acct042", "db_admin", "dbxadmin", "o.neil", "Admin.User",
                "domain@user", "a+b=c"]
    hosts = [sm.host(policy, accounts={a: "pw" for a in accounts}, roles=[role], address=f"h-{tag}.example"),
             sm.host(policy, accounts={"acct042": "pw", f"only-{tag}": "pw"}, address=f"10.{tag[:2]}.0.42")]
    keywords = [["acct042"], ["cct04"], ["acct042y"], ["-acct042"], ["db_admin"], ["_admin"], ["%"], ["a%b"], ["o'neil"], ["o.neil"],
                ["admin.user"], ["ADMIN.USER"], ["\\user"], ["n@u"], ["+b=c"], ["b=c h-"], [hosts[0][:8]], [f"{hosts[0][-6:]}/acct"],
                [f"{hosts[0][-6:]}/acct042 h-{tag}"], [f"h-{tag}"], [f"{tag}.example"], ["example", "acct042"],
                [f"only-{tag}"], [f"y h-{tag}.ex"], ["/", "-"], ["ac"], [".0.42"], [tag]]
    db = sm_app.extensions["db"]
    for words in keywords:
        assert _search(db, words) == _substring_search(sm_db, words), words
        assert _search(db, words, role_ids=[role["id"]]) == _substring_search(sm_db, words, role_ids=[role["id"]]), words
    for sortkey in _ORDER:
        for sortdir in ("ASC", "DESC"):
            arguments = {"sortkey": sortkey, "sortdir": sortdir, "offset": 1, "limit": 2}
            assert _search(db, ["acct042"], **arguments) == _substring_search(sm_db, ["acct042"], **arguments)
    past_the_end = _search(db, [f"h-{tag}"], offset=100)
    assert past_the_end == (len(accounts), [])


UNDO_0014 = """
    DROP FUNCTION search_segments(text), search_infixes(text) CASCADE;
    DELETE FROM schema_migrations WHERE (service, version) IN (('common', 4), ('secrets-manager', 14));
"""
HOSTS = 100
PER_HOST = 100


@pytest.mark.slow
def test_the_migration_indexes_existing_accounts_and_acct042_uses_the_index(db_server, monkeypatch):
    with support.fresh_database(db_server, "sm_tokens") as url:
        db = Database(url, service="secrets-manager", migrations_package="secrets_manager_service")
        try:
            db.migrate()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(UNDO_0014)  # the schema as 0013 left it
                # As bench-scale makes them: 100 accounts `acct000`..`acct099` on each of 100 hosts.
                policy = uuid.uuid4()
                conn.execute("""INSERT INTO sm_password_policies VALUES (%s, 'p', 0, 8, 8, true, true, true, true, 3,
                                0, 0, 0, 3600, false, false, now(), now(), 'me', 'me')""", (policy,))
                conn.execute("""INSERT INTO sm_hosts (id, address, port, operating_system, protocol, password_policy_id,
                                                      created_by, updated_by)
                                SELECT md5('host' || h)::uuid, '10.0.' || (h / 256) || '.' || (h %% 256), 22, 'LINUX', 'NONE',
                                       %s, 'me', 'me' FROM generate_series(0, %s - 1) AS h""", (policy, HOSTS))
                conn.execute("""INSERT INTO sm_accounts (id, host_id, account, created_by)
                                SELECT gen_random_uuid(), md5('host' || h)::uuid, 'acct' || lpad(a::text, 3, '0'), 'me'
                                  FROM generate_series(0, %s - 1) AS h, generate_series(0, %s - 1) AS a""", (HOSTS, PER_HOST))
                conn.execute("ANALYZE")
            assert db.migrate() == ["common/0004_search_tokens.sql", "secrets-manager/0014_account_search_tokens.sql"]
            plans = query_plans.explained(monkeypatch, store, url)
            for words in (["acct042"], ["ACCT04"], ["/acct042"], ["acct042 10.0.0"]):
                assert _search(db, words, limit=50) == _substring_search(url, words, limit=50), words
                assert "sm_accounts_search_tokens" in plans[-1], plans[-1]
            assert _search(db, ["acct042"])[0] == HOSTS
            # Parts all under 3 characters: the trigram index, or every account where pg_trgm is missing.
            assert _search(db, ["42"], limit=50) == _substring_search(url, ["42"], limit=50)
            assert "sm_accounts_search_tokens" not in plans[-1]
            # New accounts are indexed as they come.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("INSERT INTO sm_accounts (id, host_id, account, created_by) VALUES (%s, md5('host0')::uuid, "
                             "'late-acct042', 'me')", (uuid.uuid4(),))
            assert _search(db, ["te-acct04"])[0] == 1
        finally:
            db.close()
