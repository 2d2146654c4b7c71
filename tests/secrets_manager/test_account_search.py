"""Account search on the stored search text (migration 0005): the same matches as the path and
address it is made of, after a host's address changes too; and the listing's total."""
from __future__ import annotations

import uuid

from tests import support


def _search(sm, headers, keywords):
    response = sm.post("/secrets/search", headers=headers, json={"keywords": keywords})
    assert response.status_code == 200, response.get_json()
    return sorted(i["username"] for i in response.get_json()["items"])


def test_a_keyword_matches_the_path_or_the_address_even_after_the_address_changed(sm, tokens):
    role = support.new_role("search")
    user = tokens.headers("user", roles=[role])
    tag = uuid.uuid4().hex[:8]
    policy = sm.policy()
    host = sm.host(policy, accounts={"db_admin": "pw-1", "dbxadmin": "pw-2"}, roles=[role], address=f"old-{tag}.example")
    assert _search(sm, user, f"old-{tag}") == ["db_admin", "dbxadmin"]
    assert _search(sm, user, "db_admin") == ["db_admin"]  # `_` is a character here, not LIKE's wildcard
    assert _search(sm, user, f"{host[:8]}") == ["db_admin", "dbxadmin"]
    assert _search(sm, user, f"{host[-6:]}/dbx") == ["dbxadmin"]  # across the path's '/'
    assert _search(sm, user, "%") == []
    sm.host(policy, host_id=host, accounts={"db_admin": None, "dbxadmin": None}, roles=[role], address=f"NEW-{tag}.example")
    assert _search(sm, user, f"old-{tag}") == []
    assert _search(sm, user, f"new-{tag}") == ["db_admin", "dbxadmin"]


def test_the_admins_listing_counts_every_account(sm, sm_app):
    sm.host(sm.policy(), accounts={"one": "pw-1", "two": "pw-2"})
    from secrets_manager_service.target_domains import checkout_store

    with sm_app.extensions["db"].cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM sm_accounts")
        total = cur.fetchone()["n"]
        # Managed directory accounts are account secrets too (docs/API.md, target domains).
        cur.execute(f"SELECT count(*) AS n FROM {checkout_store.ACCOUNTS} WHERE {checkout_store.USABLE}")
        total += cur.fetchone()["n"]
    assert sm.get("/secrets", query={"limit": 1}).get_json()["count"] == total


def test_every_search_takes_at_most_64_keywords_in_1024_characters(sm, tokens):
    """Each keyword is a condition of the statement: 70,000 of them went past psycopg's 65,535
    parameters, which was taken for a lost database (503, and the process failed fast for a while)."""
    domain = str(uuid.uuid4())
    searches = ["/secrets/search", "/targetdomains/search", f"/targetdomains/{domain}/accounts/search",
                f"/targetdomains/{domain}/managedaccounts/search"]
    for path in searches:
        for keywords in (" ".join(["x"] * 65), "x" * 1025, ",".join(f"k{i}" for i in range(70_000))):
            refused = sm.post(path, json={"keywords": keywords})
            assert refused.status_code == 400, (path, refused.get_json())
            assert refused.get_json()["error_code"] == "VALUE_OUT_OF_BOUNDS" and refused.get_json()["property"] == "keywords"
    for prefix in ("/secrets-manager/api/v1", "/authorizer/api/v1"):
        assert sm.call("POST", "/secrets/search", json={"keywords": " ".join(["x"] * 64)}, prefix=prefix).status_code == 200
    assert sm.post("/targetdomains/search", json={"keywords": ",".join(["x"] * 64)}).status_code == 200
    assert sm.get("/status").status_code == 200
