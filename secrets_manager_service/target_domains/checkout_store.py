"""SQL of managed directory accounts as account secrets: which a user may check out, and which
a release rotates (their checkouts are accounts.checkout_store's).

The account's row (managed_store.find_by_id with lock=True) is the lock that orders checkouts
and releases of one account on every replica.
"""
from __future__ import annotations

from common.db import Database
from common.timefmt import rfc3339_sql
from secrets_manager_service.accounts.kinds import DIRECTORY, LIVE_CHECKOUT
from secrets_manager_service.page_store import fetch_shown_page

# Accounts a user may check out (the role condition is added per caller): the managed account's own
# part (the one migration 0016's counts keep, in its words), its scanned account's and its domain's.
_USABLE_ITSELF = "m.enabled AND m.explicit_checkout AND m.state IN ('ACTIVE', 'FAILED')"
USABLE = f"{_USABLE_ITSELF} AND NOT a.removed AND d.enabled"
# What the list shows, as the text it shows (listing.py), made on the page's rows only (page_store);
# the time sorted by, as a time, only when sorted by one.
_PAGE = "m.id AS managed_id, m.domain_id, d.name AS domain_name, a.username, a.email, a.full_name, m.created, m.updated"
_ACCOUNT_COLUMNS = f"""page.managed_id::text AS managed_id, page.domain_id::text AS domain_id, page.domain_name,
                       page.username, page.email, page.full_name, {rfc3339_sql('page.created')} AS created,
                       {rfc3339_sql('page.updated')} AS updated"""
SORT_TIMES = {"created": "m.created", "updated": "m.updated"}
ACCOUNTS = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
               JOIN sm_target_domains d ON d.id = m.domain_id"""
# How many are USABLE, without counting them all (an admin's list without a filter): the counts kept
# for enabled domains (migration 0016) less the counted ones whose scanned account is removed. Those
# are found from the removed accounts (a partial index), each one's managed account looked up by
# key in a subquery the planner cannot turn into a join: as a join, it read every managed account.
_USABLE_TOTAL = f"""SELECT ((SELECT coalesce(sum(c.n), 0) FROM sm_td_checkout_counts c
                              JOIN sm_target_domains d ON d.id = c.domain_id WHERE d.enabled)
                            - (SELECT count(*) FROM sm_td_accounts a
                                WHERE a.removed AND (SELECT {_USABLE_ITSELF} AND d.enabled
                                                       FROM sm_td_managed_accounts m JOIN sm_target_domains d ON d.id = m.domain_id
                                                      WHERE m.account_id = a.id)))::bigint"""
SORT_COLUMNS = {
    "path": "m.domain_id::text {dir}, m.id::text {dir}",
    "username": "a.username {dir}, m.id",
    "created": "m.created {dir}, m.id",
    "updated": "m.updated {dir}, m.id",
}


def list_usable(db: Database, *, role_ids: list[str] | None, keywords: list[str], username: str | None, domain_id,
                sortkey: str, sortdir: str, offset: int, limit: int):
    """(total, rows) of the managed accounts holders of `role_ids` (None: anyone) may check out, one page."""
    where, params = [USABLE], {}
    if role_ids is not None:
        where.append("m.access_role_ids && %(roles)s::text[]")
        params["roles"] = role_ids
    if domain_id is not None:
        where.append("m.domain_id = %(domain)s")
        params["domain"] = domain_id
    if username is not None:
        where.append("lower(a.username) = lower(%(username)s)")
        params["username"] = username
    for i, keyword in enumerate(keywords):
        # A keyword matches the path, the account's names or its domain's name.
        where.append(f"""strpos(lower('targetdomains/' || m.domain_id::text || '/' || m.id::text || ' ' || a.username
                                      || ' ' || a.email || ' ' || a.full_name || ' ' || d.name), %(kw{i})s) > 0""")
        params[f"kw{i}"] = keyword.lower()
    sorted_by_time = sortkey in SORT_TIMES
    return fetch_shown_page(db, columns=_PAGE + (f", {SORT_TIMES[sortkey]} AS sort_time" if sorted_by_time else ""),
                            shown=_ACCOUNT_COLUMNS + (", page.sort_time" if sorted_by_time else ""), source=ACCOUNTS, where=" AND ".join(where),
                            order=SORT_COLUMNS[sortkey].format(dir=sortdir), params=params, offset=offset, limit=limit,
                            total=_USABLE_TOTAL if where == [USABLE] else None)


def released_unused(managed_ids: list) -> tuple[str, dict]:
    """(query, params) selecting `id` of those of these accounts whose checkouts ended, whose policy
    says rotate_on_release, whose rotation_enabled, and which no live checkout holds any more (a
    query, so that queueing them is one statement: queue_store.enqueue_selected)."""
    return (f"""SELECT m.id FROM sm_td_managed_accounts m JOIN sm_password_policies p ON p.id = m.password_policy_id
                 WHERE m.id = ANY (%(ids)s) AND p.rotate_on_release AND m.rotation_enabled
                   AND NOT EXISTS (SELECT 1 FROM sm_checkouts c
                                    WHERE c.account_kind = %(kind)s AND c.account_id = m.id AND {LIVE_CHECKOUT})""",
            {"kind": DIRECTORY, "ids": list(managed_ids)})
