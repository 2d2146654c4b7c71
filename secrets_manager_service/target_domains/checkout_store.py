"""SQL for checkouts of managed directory accounts (sm_td_checkouts).

Checkout rows carry `id, user_id, explicit_checkout, created, expires, managed_account_id,
holder_role_ids, holder_admin`. The account's row (managed_store.find_by_id with lock=True) is
the lock that orders checkouts and releases of one account on every replica.
"""
from __future__ import annotations

from common.db import Database
from secrets_manager_service.rotation.store import LIVE_CHECKOUT

_CHECKOUT = "c.id, c.user_id, c.explicit_checkout, c.created, c.expires, c.managed_account_id, c.holder_role_ids, c.holder_admin"


def live_checkout_of(cur, managed_id, user_id: str) -> dict | None:
    cur.execute(f"""SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.managed_account_id = %(id)s
                     AND c.user_id = %(user)s AND {LIVE_CHECKOUT} ORDER BY c.created DESC LIMIT 1""",
                {"id": managed_id, "user": user_id})
    return cur.fetchone()


def insert_checkout(cur, checkout_id, managed_id, user_id: str, duration_seconds: int, *,
                    holder_role_ids: list[str], holder_admin: bool) -> dict:
    cur.execute(
        f"""INSERT INTO sm_td_checkouts AS c (id, managed_account_id, user_id, expires, holder_role_ids, holder_admin)
            VALUES (%(id)s, %(account)s, %(user)s, now() + make_interval(secs => %(secs)s), %(roles)s, %(admin)s)
            RETURNING {_CHECKOUT}""",
        {"id": checkout_id, "account": managed_id, "user": user_id, "secs": duration_seconds,
         "roles": holder_role_ids, "admin": holder_admin})
    return cur.fetchone()


def find_live_checkout(db: Database, checkout_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.id = %(id)s AND {LIVE_CHECKOUT}",
                    {"id": checkout_id})
        return cur.fetchone()


def live_checkouts_of(db: Database, user_id: str, *, sortdir: str, limit: int) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(f"""SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.user_id = %(user)s AND {LIVE_CHECKOUT}
                         ORDER BY c.created {sortdir}, c.id LIMIT %(limit)s""", {"user": user_id, "limit": limit})
        return cur.fetchall()


def count_live_of(db: Database, user_id: str) -> int:
    with db.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM sm_td_checkouts c WHERE c.user_id = %(user)s AND {LIVE_CHECKOUT}",
                    {"user": user_id})
        return cur.fetchone()["n"]


def end_checkout(cur, checkout_id) -> bool:
    """End a live checkout now; False if it had already ended."""
    cur.execute(f"UPDATE sm_td_checkouts c SET ended = now() WHERE c.id = %(id)s AND {LIVE_CHECKOUT}",
                {"id": checkout_id})
    return cur.rowcount == 1


def queue_release_rotation(cur, managed_ids: list, trigger: str) -> None:
    """A `trigger` rotation of each account whose policy says rotate_on_release, whose
    rotation_enabled, and which no live checkout holds any more."""
    cur.execute(
        f"""INSERT INTO sm_td_rotations (managed_account_id, trigger)
            SELECT m.id, %(trigger)s FROM sm_td_managed_accounts m
              JOIN sm_password_policies p ON p.id = m.password_policy_id
             WHERE m.id = ANY (%(ids)s) AND p.rotate_on_release AND m.rotation_enabled
               AND NOT EXISTS (SELECT 1 FROM sm_td_checkouts c WHERE c.managed_account_id = m.id AND {LIVE_CHECKOUT})
            ON CONFLICT (managed_account_id) DO NOTHING""",
        {"ids": list(managed_ids), "trigger": trigger})


def end_expired(cur) -> list[dict]:
    """Mark ended the checkouts past their time: (id, user_id, managed_account_id) of each."""
    cur.execute("""UPDATE sm_td_checkouts SET ended = expires WHERE ended IS NULL AND expires <= now()
                   RETURNING id, user_id, managed_account_id""")
    return cur.fetchall()


def domains_of(cur, managed_ids: list) -> dict:
    """{managed account id: its domain id}."""
    cur.execute("SELECT id, domain_id FROM sm_td_managed_accounts WHERE id = ANY (%(ids)s)", {"ids": list(managed_ids)})
    return {row["id"]: row["domain_id"] for row in cur.fetchall()}
