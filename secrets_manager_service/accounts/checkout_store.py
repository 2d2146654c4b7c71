"""SQL of checkouts of every account kind (sm_checkouts), keyed by (account_kind, account_id).

Checkout rows carry `id, account_kind, account_id, user_id, explicit_checkout, created,
expires, holder_role_ids, holder_admin`. A checkout is live until it is released or its time
is up, whether or not the worker has marked it yet (LIVE). The account's own row, locked by
its family's `lock`, orders checkouts and releases of one account on every replica.
"""
from __future__ import annotations

from common.db import Database
from secrets_manager_service.accounts.kinds import FOREIGN_KEY, LIVE_CHECKOUT

LIVE = LIVE_CHECKOUT
_CHECKOUT = ("c.id, c.account_kind, c.account_id, c.user_id, c.explicit_checkout, c.created, c.expires, "
             "c.holder_role_ids, c.holder_admin")


def live_checkout_of(cur, kind: str, account_id, user_id: str) -> dict | None:
    """The user's newest live checkout of the account, or None."""
    cur.execute(f"""SELECT {_CHECKOUT} FROM sm_checkouts c
                     WHERE c.account_kind = %(kind)s AND c.account_id = %(id)s AND c.user_id = %(user)s AND {LIVE}
                     ORDER BY c.created DESC LIMIT 1""", {"kind": kind, "id": account_id, "user": user_id})
    return cur.fetchone()


def count_live(cur, kind: str, account_id) -> int:
    cur.execute(f"""SELECT count(*) AS n FROM sm_checkouts c
                     WHERE c.account_kind = %(kind)s AND c.account_id = %(id)s AND {LIVE}""",
                {"kind": kind, "id": account_id})
    return cur.fetchone()["n"]


def insert_checkout(cur, kind: str, checkout_id, account_id, user_id: str, duration_seconds: int, *,
                    holder_role_ids: list[str], holder_admin: bool) -> dict:
    cur.execute(
        f"""INSERT INTO sm_checkouts AS c (id, account_kind, {FOREIGN_KEY[kind]}, user_id, expires, holder_role_ids,
                                           holder_admin)
            VALUES (%(id)s, %(kind)s, %(account)s, %(user)s, now() + make_interval(secs => %(secs)s), %(roles)s,
                    %(admin)s)
            RETURNING {_CHECKOUT}""",
        {"id": checkout_id, "kind": kind, "account": account_id, "user": user_id, "secs": duration_seconds,
         "roles": holder_role_ids, "admin": holder_admin})
    return cur.fetchone()


def find_live(db: Database, checkout_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_CHECKOUT} FROM sm_checkouts c WHERE c.id = %(id)s AND {LIVE}", {"id": checkout_id})
        return cur.fetchone()


def live_of(db: Database, user_id: str, *, sortdir: str, limit: int) -> tuple[int, list[dict]]:
    """(how many live checkouts the user holds, the first `limit` of them by creation)."""
    with db.cursor() as cur:
        cur.execute(f"""SELECT {_CHECKOUT}, count(*) OVER () AS total FROM sm_checkouts c
                         WHERE c.user_id = %(user)s AND {LIVE} ORDER BY c.created {sortdir}, c.id LIMIT %(limit)s""",
                    {"user": user_id, "limit": limit})
        rows = cur.fetchall()
    # The window's count is taken before the LIMIT: the total; no row at all means none is live.
    total = rows[0]["total"] if rows else 0
    return total, [{k: v for k, v in row.items() if k != "total"} for row in rows]


def end_checkout(cur, checkout_id) -> bool:
    """End a live checkout now; False if it had already ended."""
    cur.execute(f"UPDATE sm_checkouts c SET ended = now() WHERE c.id = %(id)s AND {LIVE}", {"id": checkout_id})
    return cur.rowcount == 1


def end_expired(cur, kind: str) -> list[dict]:
    """Mark ended the kind's checkouts past their time: `id, user_id, account_id` of each."""
    cur.execute("""UPDATE sm_checkouts SET ended = expires
                    WHERE account_kind = %(kind)s AND ended IS NULL AND expires <= now()
                RETURNING id, user_id, account_id""", {"kind": kind})
    return cur.fetchall()
