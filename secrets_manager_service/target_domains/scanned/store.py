"""SQL of scanned accounts (`sm_td_accounts`).

Rows carry the table's columns plus `state` (derived: REMOVED, MANAGED or UNMANAGED),
`managed_id` and the domain's `domain_name`; a list's rows only what the list shows (ids and times
as text). `find_*` return None when nothing matches.
"""
from __future__ import annotations

from common.db import Database
from common.timefmt import rfc3339_sql
from secrets_manager_service.page_store import fetch_shown_page
from secrets_manager_service.target_domains.domains.store import rows

STATE = ("CASE WHEN a.removed THEN 'REMOVED' WHEN m.id IS NOT NULL THEN 'MANAGED' ELSE 'UNMANAGED' END")
_COLUMNS = f"a.*, {STATE} AS state, m.id AS managed_id, d.name AS domain_name"
_SOURCE = """sm_td_accounts a JOIN sm_target_domains d ON d.id = a.domain_id
             LEFT JOIN sm_td_managed_accounts m ON m.account_id = a.id"""
# A list row: what the list shows, as the text it shows where it is text (listing.py): ids and
# times (RFC 3339) as text, additional_data as its jsonb text, none of the columns it does not
# show; made on the page's rows only (page_store).
_PAGE = f"a.id, a.username, a.email, a.full_name, a.source_id, a.security_id, a.additional_data, {STATE} AS state, " \
        "a.ignored, a.comment, a.created, a.updated, a.updated_by, a.domain_id, d.name AS domain_name"
_LISTED = f"""page.id::text AS id, page.username, page.email, page.full_name, page.source_id, page.security_id,
              page.additional_data::text AS additional_data, page.state, page.ignored, page.comment,
              {rfc3339_sql('page.created')} AS created, {rfc3339_sql('page.updated')} AS updated, page.updated_by,
              page.domain_id::text AS domain_id, page.domain_name"""
SORT_COLUMNS = {
    "username": "lower(a.username) {dir}, a.id",
    "email": "lower(a.email) {dir}, a.id",
    "full_name": "lower(a.full_name) {dir}, a.id",
    "state": f"{STATE} {{dir}}, lower(a.username), a.id",
    "created": "a.created {dir}, a.id",
    "updated": "a.updated {dir}, a.id",
}


def time_filters(alias: str, filters: dict, where: list[str], params: dict) -> None:
    """created_after ... updated_before, as SQL conditions on `alias`."""
    for key, column, op in (("created_after", "created", ">"), ("created_before", "created", "<"),
                            ("updated_after", "updated", ">"), ("updated_before", "updated", "<")):
        if filters.get(key) is not None:
            where.append(f"{alias}.{column} {op} %({key})s")
            params[key] = filters[key]


def keyword_filters(alias: str, keywords: list[str], where: list[str], params: dict) -> None:
    for i, keyword in enumerate(keywords):
        where.append(f"strpos(lower({alias}.username || ' ' || {alias}.email || ' ' || {alias}.full_name), "
                     f"%(kw{i})s) > 0")
        params[f"kw{i}"] = keyword


def list_accounts(db: Database, domain_id, *, keywords: list[str] = (), filters: dict | None = None,
                  sortkey: str, sortdir: str, offset: int, limit: int):
    filters = filters or {}
    where, params = ["a.domain_id = %(domain)s"], {"domain": domain_id}
    keyword_filters("a", keywords, where, params)
    time_filters("a", filters, where, params)
    if filters.get("state"):
        where.append(f"{STATE} = %(state)s")
        params["state"] = filters["state"]
    if filters.get("ignored") is not None:
        where.append("a.ignored = %(ignored)s")
        params["ignored"] = filters["ignored"]
    return fetch_shown_page(db, columns=_PAGE, shown=_LISTED, source=_SOURCE, where=" AND ".join(where),
                      order=SORT_COLUMNS[sortkey].format(dir=sortdir), params=params, offset=offset, limit=limit)


def find_account(db: Database, domain_id, account_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM {_SOURCE} WHERE a.domain_id = %(domain)s AND a.id = %(id)s",
                    {"domain": domain_id, "id": account_id})
        return cur.fetchone()


def find_by(db: Database, domain_id, *, source_id: str | None = None, username: str | None = None) -> dict | None:
    """The account with this source_id, else with this username (case-insensitive; a live one first)."""
    if source_id:
        condition, params = "a.source_id = %(value)s", {"value": source_id}
    else:
        condition, params = "lower(a.username) = lower(%(value)s)", {"value": username}
    with db.cursor() as cur:
        cur.execute(f"""SELECT {_COLUMNS} FROM {_SOURCE} WHERE a.domain_id = %(domain)s AND {condition}
                        ORDER BY a.removed, a.created LIMIT 1""", {**params, "domain": domain_id})
        return cur.fetchone()


def accounts_in(db_or_cur, domain_id, ids: list) -> list[dict]:
    """The accounts of the domain among `ids`, in no particular order."""
    query = f"SELECT {_COLUMNS} FROM {_SOURCE} WHERE a.domain_id = %(domain)s AND a.id = ANY (%(ids)s)"
    return rows(db_or_cur, query, {"domain": domain_id, "ids": ids})


def change(cur, domain_id, ids: list, changes: dict, by: str) -> int:
    """Set `ignored`/`comment` of the accounts; `updated` moves only where a value changed."""
    assignments = ", ".join(f"{c} = %({c})s" for c in changes)
    differs = " OR ".join(f"{c} IS DISTINCT FROM %({c})s" for c in changes)
    cur.execute(f"""UPDATE sm_td_accounts SET {assignments}, updated = now(), updated_by = %(by)s
                     WHERE domain_id = %(domain)s AND id = ANY (%(ids)s) AND ({differs})""",
                {**changes, "by": by, "domain": domain_id, "ids": ids})
    return cur.rowcount


def unmanaged_for_onboarding(db: Database, domain_id) -> list[dict]:
    """Accounts auto-onboarding may take: UNMANAGED and not ignored (the caller leaves out bind accounts)."""
    with db.cursor() as cur:
        cur.execute(f"""SELECT {_COLUMNS} FROM {_SOURCE}
                         WHERE a.domain_id = %(domain)s AND NOT a.removed AND NOT a.ignored AND m.id IS NULL
                         ORDER BY a.created, a.id""", {"domain": domain_id})
        return cur.fetchall()
