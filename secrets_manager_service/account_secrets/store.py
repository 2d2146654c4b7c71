"""SQL of host accounts as account secrets (what users see and check out; their checkouts are
accounts.checkout_store's).

Account rows carry `account_id, account, host_id, address, access_role_ids` and the step and
pending version of a rotation under way (`rotation_step`, `rotation_pending`: None when none is;
checkouts hand out a pending password by them); listings carry only
what a list shows, as text: `account, host_id, address`, the account's `created, updated`
(RFC 3339), and `sort_time` (a datetime) when sorted by created or updated.
`find_*` return None when nothing matches.
"""
from __future__ import annotations

from common import search_tokens
from common.db import Database, fetch_counted_page, like_escaped
from common.timefmt import rfc3339_sql
from secrets_manager_service.accounts.checkout_store import CHECKOUT_BESIDE, split_checkout
from secrets_manager_service.accounts.kinds import HOST, LIVE_CHECKOUT
from secrets_manager_service.page_store import paged

_ACCOUNT = """a.id AS account_id, a.account, h.id AS host_id, h.address, h.access_role_ids,
              s.step AS rotation_step, s.pending_version AS rotation_pending"""
_ACCOUNTS = "sm_accounts a JOIN sm_hosts h ON h.id = a.host_id"
# An account's rotation under way, read with it (a statement less per checkout and checkout read).
_WITH_STATE = f"""{_ACCOUNTS} LEFT JOIN sm_rotation_states s ON s.account_kind = '{HOST}' AND s.account_id = a.id"""
# A list row's columns: what the list shows, as the text it shows (listing.py): no account id, no
# role array, the host id and the times as text (a uuid.UUID or a datetime made per row only to be
# turned back into text), made on the page's rows only (page_store); the time a list is sorted by,
# as a time, only when it is sorted by one.
_PAGE = "a.account, h.id AS host_id, h.address, a.created, a.updated"
_LISTED = f"""page.account, page.host_id::text AS host_id, page.address, {rfc3339_sql('page.created')} AS created,
              {rfc3339_sql('page.updated')} AS updated"""
# The same of a keyword search's page, whose rows (a) already are the page's, with their hosts (h).
_LISTED_OF_ROWS = f"""a.account, h.id::text AS host_id, h.address, {rfc3339_sql('a.created')} AS created,
                      {rfc3339_sql('a.updated')} AS updated"""
SORT_TIMES = {"created": "a.created", "updated": "a.updated"}

SORT_COLUMNS = {
    "path": "h.id {dir}, a.account {dir}",
    "username": "a.account {dir}, h.id {dir}",
    "created": "a.created {dir}, a.id",
    "updated": "a.updated {dir}, a.id",
}


def list_accounts(db: Database, *, role_ids: list[str] | None, host_id=None, username: str | None = None,
                  keywords: list[str] = (), sortkey: str, sortdir: str, offset: int, limit: int):
    """Accounts of hosts sharing a role with `role_ids` (None = every host), filtered, one page."""
    by_host, by_account, params = [], [], {}
    if role_ids is not None:
        by_host.append("h.access_role_ids && %(roles)s::text[]")
        params["roles"] = role_ids
    if host_id is not None:
        by_account.append("a.host_id = %(host)s")
        params["host"] = host_id
    if username is not None:
        by_account.append("a.account = %(username)s")
        params["username"] = username
    # A keyword matches anywhere in the path or the host's address (search_text, migration 0005).
    # Its segments and infixes (migration 0014, common.search_tokens) find the accounts that may
    # hold it, and the LIKE rechecks those: the trigram index, left in view, would intersect
    # trigrams (`acc`, `cct`) that every account has.
    keywords = [keyword.lower() for keyword in keywords]
    tokens = {"segments": search_tokens.segment_query(keywords), "infixes": search_tokens.infix_query(keywords)}
    for kind, query in tokens.items():
        if query:
            by_account.append(f"search_{kind}(a.search_text) @@ %({kind})s::tsquery")
            params[kind] = query
    by_tokens = any(tokens.values())
    text = "(a.search_text || '')" if by_tokens else "a.search_text"
    for i, keyword in enumerate(keywords):
        by_account.append(f"{text} LIKE %(kw{i})s")
        params[f"kw{i}"] = f"%{like_escaped(keyword)}%"
    where = " AND ".join(by_host + by_account) or "true"
    # Every account has its host (a foreign key): without a condition on hosts the total is
    # counted on the accounts alone, an index-only scan instead of a join of every row.
    counted = f"sm_accounts a WHERE {' AND '.join(by_account) or 'true'}" if not by_host else f"{_ACCOUNTS} WHERE {where}"
    # Without any condition (an admin's list) the total is the count kept by triggers (migration
    # 0015): counting 100,000 accounts for each page cost more than the page.
    total = (f"SELECT count(*) FROM {counted}" if by_host or by_account
             else "SELECT coalesce(sum(n), 0)::bigint FROM sm_account_counts")
    order = SORT_COLUMNS[sortkey].format(dir=sortdir)
    sorted_by_time = sortkey in SORT_TIMES
    sort_time = f", {SORT_TIMES[sortkey]} AS sort_time" if sorted_by_time else ""
    if by_tokens:
        # The matches are found once, counted and sorted, and only the page's rows meet their
        # hosts: walking the (host_id, account) index for the first page's matches reads 50
        # hosts' accounts when a keyword names one account per host (`acct042`), and the count
        # would search the index a second time. (`h.id` of the order is the account's host_id.)
        matched = "sm_accounts a" if not by_host else _ACCOUNTS
        query = f"""WITH matches AS MATERIALIZED (
                        SELECT a.id, a.host_id, a.account, a.created, a.updated FROM {matched} WHERE {where}),
                    page AS MATERIALIZED (
                        SELECT a.* FROM matches a, LATERAL (SELECT a.host_id AS id) h
                         ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s)
                    SELECT {_LISTED_OF_ROWS}{sort_time}, (SELECT count(*) FROM matches) AS total
                      FROM page a JOIN sm_hosts h ON h.id = a.host_id ORDER BY {order}"""
    else:
        query = paged(_PAGE + sort_time, _LISTED + (", page.sort_time" if sorted_by_time else ""), _ACCOUNTS, where,
                      order, total=total)
    return fetch_counted_page(db, query, {**params, "offset": offset, "limit": limit},
                              total_query=f"SELECT ({total}) AS total")


def find_account(db: Database, host_id, account: str) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT} FROM {_WITH_STATE} WHERE h.id = %(host)s AND a.account = %(account)s",
                    {"host": host_id, "account": account})
        return cur.fetchone()


def lock_account(cur, account_id) -> dict | None:
    """The account's checkout limits, with its row locked until the transaction ends.

    Every checkout and release of the account takes this lock first, so counting
    live checkouts and adding one is atomic on every replica.
    """
    cur.execute(
        """SELECT p.max_concurrent_checkouts, p.max_checkout_duration
             FROM sm_accounts a JOIN sm_hosts h ON h.id = a.host_id
             JOIN sm_password_policies p ON p.id = h.password_policy_id
            WHERE a.id = %(id)s FOR UPDATE OF a""",
        {"id": account_id},
    )
    return cur.fetchone()


def find_accounts(db: Database, account_ids: list) -> list[dict]:
    """The accounts with these ids that still exist."""
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT} FROM {_WITH_STATE} WHERE a.id = ANY (%(ids)s)", {"ids": list(account_ids)})
        return cur.fetchall()


def find_checkout(db_or_cur, checkout_id, *, lock: bool = False) -> dict | None:
    """The live checkout of a host account with this id and its account under "account" (as
    find_account's), in one statement; None if there is none. With `lock` (on a transaction's
    cursor), the account's row is locked as lock_account locks it."""
    query = f"""SELECT {CHECKOUT_BESIDE}, {_ACCOUNT} FROM sm_checkouts c
                  JOIN {_WITH_STATE} ON a.id = c.host_account_id
                 WHERE c.id = %(id)s AND c.account_kind = '{HOST}' AND {LIVE_CHECKOUT}""" + (" FOR UPDATE OF a" if lock else "")
    if isinstance(db_or_cur, Database):
        with db_or_cur.cursor() as cur:
            cur.execute(query, {"id": checkout_id})
            row = cur.fetchone()
    else:
        db_or_cur.execute(query, {"id": checkout_id})
        row = db_or_cur.fetchone()
    return None if row is None else split_checkout(row)
