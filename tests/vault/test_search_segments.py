"""Keyword search by the name's segments (migration 0009, common/search_tokens.py): the same
secrets in the same order as the substring query alone, for keywords that are segments,
prefixes, infixes, of any case, with LIKE's wildcards; the index is what a segment keyword
uses on a table of realistic names; and the migration indexes the names already there."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from common.db import Database, like_escaped
from tests import query_plans, support
from vault_service.names import RESERVED_OWNER
from vault_service.secrets import store
from tests.vault.helpers import V1, create_shared


def _search(db, keywords: list[str], *, sortkey="name", sortdir="ASC", offset=0, limit=1000, roles=None):
    total, rows = store.search(db, owners=None, shared=None, visible_to_roles=roles, viewer="nobody",
                               readable_roles=None, writable_roles=None, keywords=keywords, sortkey=sortkey,
                               sortdir=sortdir, offset=offset, limit=limit, with_version=False)
    return total, [(row["owner_id"], row["name"]) for row in rows]


def _substring_search(url, keywords: list[str], *, sortkey="name", sortdir="ASC", offset=0, limit=1000):
    """What the search answered before segments: every keyword a substring of the lower-cased name."""
    order = {"name": "name", "created": "created", "updated": "updated"}[sortkey] + (" DESC" if sortdir == "DESC" else "")
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"""SELECT owner_id, name FROM vault_secrets
                                 WHERE owner_id <> %(reserved)s AND lower(name) LIKE ALL (%(patterns)s)
                                 ORDER BY {order}, owner_id, name""",
                            {"reserved": RESERVED_OWNER,
                             "patterns": [f"%{like_escaped(k.lower())}%" for k in keywords]}).fetchall()
    return len(rows), [tuple(r) for r in rows[offset:offset + limit]]


def test_a_search_finds_what_the_substring_query_finds_in_its_order(client, tokens, vault_app, vault_db):
    tag = f"seg{uuid.uuid4().hex[:8]}"
    names = [f"{tag}/team-0003/app/db-password", f"{tag}/myteam-0003x/app", f"{tag}/team-00031/app",
             f"{tag}/TEAM-0003/App", f"{tag}/a_b-0003/x", f"{tag}/axb-0003/x", f"{tag}/x.team-0003.y/z",
             f"{tag}/team-0003", f"{tag}/0003-team", f"{tag}/pre@team-0003+post=1", f"{tag}/tea m-0003",
             f"{tag}/prod/team-0003/prod", f"{tag}-prodx/a"]
    for name in names:
        create_shared(client, tokens, name=name)
    owner = str(uuid.uuid4())
    assert client.post(f"{V1}/user/{owner}/secrets", headers=tokens.headers("user", sub=owner),
                       json={"name": f"{tag}/team-0003/mine", "data": {}}).status_code == 201
    keywords = [[f"{tag}/team-0003"], ["team-0003"], [f"{tag}/team-000"], ["-0003"], ["m-0003x"], ["eam-0003/"],
                [f"{tag.upper()}/TEAM-0003/APP"], ["a_b-0003"], ["_b-0003"], ["%-0003"], ["a%b"], ["\\-0003"],
                ["'-0003"], ["0003/app"], [".team-0003."], ["@team-0003+"], ["m-0003"], ["0003"], [tag], [f"{tag}/"],
                ["/prod/"], ["-prod"], ["team-0003", "app"], [f"{tag}/", "m 0003"], ["/", "-"], [f"{tag}/team-0003/mine"]]
    db = vault_app.extensions["db"]
    for words in keywords:
        assert _search(db, words) == _substring_search(vault_db, words), words
    for sortkey in ("created", "updated", "name"):
        for sortdir in ("ASC", "DESC"):
            arguments = {"sortkey": sortkey, "sortdir": sortdir, "offset": 2, "limit": 3}
            assert _search(db, ["team-0003"], **arguments) == _substring_search(vault_db, ["team-0003"], **arguments)
    # Through the route too: an admin's search shows what the store found.
    response = client.post(f"{V1}/search/secrets", headers=tokens.headers("admin"), json={"keywords": f"{tag}/team-0003"})
    assert response.status_code == 200
    assert response.json["count"] == 5
    assert sorted(i["name"] for i in response.json["items"]) == sorted(
        n for n in names + [f"{tag}/team-0003/mine"] if f"{tag}/team-0003" in n.lower())


UNDO_0009 = """
    DROP FUNCTION search_segments(text), search_infixes(text) CASCADE;
    DELETE FROM schema_migrations WHERE (service, version) IN (('common', 4), ('vault', 9));
"""
TEAMS = 40
PER_TEAM = 900


@pytest.mark.slow
def test_the_migration_indexes_existing_names_and_a_segment_keyword_uses_the_index(db_server, monkeypatch):
    with support.fresh_database(db_server, "vault_segments") as url:
        db = Database(url, service="vault", migrations_package="vault_service")
        try:
            db.migrate()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(UNDO_0009)  # the schema as 0008 left it
                # 36,000 names as bench-scale makes them (team-TTTT/<app>-<n>/<env>/<item>-<index>).
                conn.execute(
                    """INSERT INTO vault_secrets (id, name, author, updated_by, dek_key_id, dek_wrapped, current_version)
                       SELECT gen_random_uuid(),
                              'team-' || lpad((i / %(per_team)s)::text, 4, '0') || '/'
                              || (ARRAY['billing-api', 'auth', 'ledger', 'search', 'gateway'])[1 + i %% 5] || '-' || i %% 10
                              || '/' || (ARRAY['dev', 'staging', 'prod'])[1 + i %% 3] || '/db-password-' || lpad(i::text, 7, '0'),
                              'someone', 'someone', 'k', '\\x00', 1
                         FROM generate_series(0, %(n)s - 1) AS i""", {"per_team": PER_TEAM, "n": TEAMS * PER_TEAM})
                conn.execute("ANALYZE vault_secrets")
            assert db.migrate() == ["common/0004_search_tokens.sql", "vault/0009_name_segments.sql"]
            plans = query_plans.explained(monkeypatch, store, url)
            for words in (["team-0003"], ["m-0003/", "prod"], ["TEAM-0003/LEDGER"]):
                total, rows = _search(db, words, limit=100)
                assert (total, rows) == _substring_search(url, words, limit=100), words
                assert "vault_secrets_name_segments" in plans[-1], plans[-1]
            assert _search(db, ["team-0003"])[0] == PER_TEAM
            # No part after a separator: the trigram index, or every name where pg_trgm is missing.
            assert _search(db, ["ledger"], limit=100) == _substring_search(url, ["ledger"], limit=100)
            assert "vault_secrets_name_segments" not in plans[-1]
            # Roles narrowing the search: their secrets' names are matched one by one, as before.
            assert _search(db, ["team-0003"], roles=["r"]) == (0, [])
            assert "vault_secrets_name_segments" not in plans[-1]
            # New names are indexed as they come.
            with db.transaction() as cur:
                store.insert_secret(cur, secret_id=uuid.uuid4(), owner="", name="team-0003/late/prod/x", read_roles=[],
                                    write_roles=[], author="someone", dek_key_id="k", dek_wrapped=b"\x00")
            assert _search(db, ["m-0003/late"]) == (1, [("", "team-0003/late/prod/x")])
        finally:
            db.close()
