"""SQL for account secrets (accounts as users see them) and their checkouts.

Account rows carry `account_id, account, host_id, address, access_role_ids`
(listings add the account's `created, updated`); checkout rows carry `id,
user_id, explicit_checkout, created, expires, account_id` (and, where joined,
`account, host_id, address`). `find_*` return None when nothing matches.
"""
from __future__ import annotations

from common.db import Database
from common.db import fetch_counted_page, fetch_page, like_escaped
from secrets_manager_service.rotation.store import LIVE_CHECKOUT

_ACCOUNT = """a.id AS account_id, a.account, h.id AS host_id, h.address, h.access_role_ids"""
_ACCOUNTS = "sm_accounts a JOIN sm_hosts h ON h.id = a.host_id"

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
    for i, keyword in enumerate(keywords):
        # A keyword matches anywhere in the path or the host's address (search_text, migration 0005).
        by_account.append(f"a.search_text LIKE %(kw{i})s")
        params[f"kw{i}"] = f"%{like_escaped(keyword.lower())}%"
    where = " AND ".join(by_host + by_account) or "true"
    # Every account has its host (a foreign key): without a condition on hosts the total is
    # counted on the accounts alone, an index-only scan instead of a join of every row.
    counted = f"sm_accounts a WHERE {' AND '.join(by_account) or 'true'}" if not by_host else f"{_ACCOUNTS} WHERE {where}"
    order = SORT_COLUMNS[sortkey].format(dir=sortdir)
    query = f"""SELECT {_ACCOUNT}, a.created, a.updated, (SELECT count(*) FROM {counted}) AS total
                  FROM {_ACCOUNTS} WHERE {where} ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s"""
    return fetch_counted_page(db, query, {**params, "offset": offset, "limit": limit},
                              total_query=f"SELECT count(*) AS total FROM {counted}")


def find_account(db: Database, host_id, account: str) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT} FROM {_ACCOUNTS} WHERE h.id = %(host)s AND a.account = %(account)s",
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


_CHECKOUT = "c.id, c.user_id, c.explicit_checkout, c.created, c.expires, c.account_id"


def live_checkout_of(cur, account_id, user_id: str) -> dict | None:
    cur.execute(
        f"""SELECT {_CHECKOUT} FROM sm_checkouts c
             WHERE c.account_id = %(account)s AND c.user_id = %(user)s AND {LIVE_CHECKOUT}
             ORDER BY c.created DESC LIMIT 1""",
        {"account": account_id, "user": user_id},
    )
    return cur.fetchone()


def count_live(cur, account_id) -> int:
    cur.execute(f"SELECT count(*) AS n FROM sm_checkouts c WHERE c.account_id = %(id)s AND {LIVE_CHECKOUT}",
                {"id": account_id})
    return cur.fetchone()["n"]


def insert_checkout(cur, checkout_id, account_id, user_id: str, duration_seconds: int, *,
                    holder_role_ids: list[str], holder_admin: bool) -> dict:
    cur.execute(
        f"""INSERT INTO sm_checkouts AS c (id, account_id, user_id, expires, holder_role_ids, holder_admin)
            VALUES (%(id)s, %(account)s, %(user)s, now() + make_interval(secs => %(secs)s), %(roles)s, %(admin)s)
            RETURNING {_CHECKOUT}""",
        {"id": checkout_id, "account": account_id, "user": user_id, "secs": duration_seconds,
         "roles": holder_role_ids, "admin": holder_admin},
    )
    return cur.fetchone()


# With what deciding whether the holder still may use the account needs.
_CHECKOUT_COLUMNS = f"{_CHECKOUT}, a.account, h.id AS host_id, h.address, h.access_role_ids, c.holder_role_ids, c.holder_admin"
_CHECKOUTS = "sm_checkouts c JOIN sm_accounts a ON a.id = c.account_id JOIN sm_hosts h ON h.id = a.host_id"


def find_live_checkout(db: Database, checkout_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_CHECKOUT_COLUMNS} FROM {_CHECKOUTS} WHERE c.id = %(id)s AND {LIVE_CHECKOUT}", {"id": checkout_id})
        return cur.fetchone()


def list_live_checkouts(db: Database, *, user_id: str, sortdir: str, offset: int, limit: int):
    return fetch_page(db, columns=_CHECKOUT_COLUMNS, source=_CHECKOUTS, where=f"c.user_id = %(user)s AND {LIVE_CHECKOUT}",
                      order=f"c.created {sortdir}, c.id", params={"user": user_id}, offset=offset, limit=limit)


def end_checkout(cur, checkout_id) -> bool:
    """End a live checkout now; False if it had already ended."""
    cur.execute(f"UPDATE sm_checkouts c SET ended = now() WHERE c.id = %(id)s AND {LIVE_CHECKOUT}", {"id": checkout_id})
    return cur.rowcount == 1
