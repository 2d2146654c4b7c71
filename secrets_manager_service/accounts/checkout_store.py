"""SQL of checkouts of every account kind (sm_checkouts), keyed by (account_kind, account_id).

Checkout rows carry `id, account_kind, account_id, user_id, explicit_checkout, created,
expires, holder_role_ids, holder_admin`. A checkout is live until it is released or its time
is up, whether or not the worker has marked it yet (LIVE). The account's own row, locked by
its family's `lock`, orders checkouts and releases of one account on every replica.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from common import audit
from common.db import Database
from secrets_manager_service.accounts.kinds import FOREIGN_KEY, LIVE_CHECKOUT

LIVE = LIVE_CHECKOUT
_CHECKOUT = ("c.id, c.account_kind, c.account_id, c.user_id, c.explicit_checkout, c.created, c.expires, "
             "c.holder_role_ids, c.holder_admin")
# The checkout's columns beside its account's in one row (families' find_checkout): named apart,
# since an account's columns may share their names (id, created, explicit_checkout).
_CHECKOUT_NAMES = ("id", "account_kind", "account_id", "user_id", "explicit_checkout", "created", "expires",
                   "holder_role_ids", "holder_admin")
CHECKOUT_BESIDE = ", ".join(f"c.{name} AS checkout_{name}" for name in _CHECKOUT_NAMES)
_BESIDE_KEYS = tuple((f"checkout_{name}", name) for name in _CHECKOUT_NAMES)


# The audit event of a checkout's claim or end, written by the same statement (failing closed with
# it, as common.audit.record's insert in the transaction did): one row per row of `source`.
_AUDITED = """INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
              SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, %(a_action)s, %(a_target)s, %(a_outcome)s,
                     {details} FROM {source}"""


def audit_params(event: dict) -> dict:
    """An event's columns (common.audit.new_event's) as _AUDITED's parameters, but its details."""
    return {f"a_{key}": event[key] for key in ("service", "request_id", "principal", "action", "target", "outcome")}


def split_checkout(row: dict) -> dict:
    """A row of CHECKOUT_BESIDE and an account's columns: the checkout, its account under "account"."""
    checkout = {name: row.pop(key) for key, name in _BESIDE_KEYS}
    checkout["account"] = row
    return checkout


def claim(cur, kind: str, checkout_id, account_id, user_id: str, *, limit: int | None, duration_seconds: int,
          holder_role_ids: list[str], holder_admin: bool, audit_event: dict) -> dict | None:
    """The user's newest live checkout of the account (`existing` true), else a new one with id
    `checkout_id` (`existing` false) if fewer than `limit` (0 or None: no limit) are live; None
    when the limit is reached. One statement, after the account's lock (its family's `lock`), so
    it sees every checkout committed before the lock was granted; it also writes `audit_event`
    (common.audit.new_event's columns) with the checkout's id and `existing` as its details, when
    it returns a checkout (a statement less than a separate insert)."""
    with audit.failing_closed(audit_event["action"], audit_event["target"]):
        return _claim(cur, kind, checkout_id, account_id, user_id, limit=limit, duration_seconds=duration_seconds,
                      holder_role_ids=holder_role_ids, holder_admin=holder_admin, audit_event=audit_event)


def _claim(cur, kind: str, checkout_id, account_id, user_id: str, *, limit: int | None, duration_seconds: int,
           holder_role_ids: list[str], holder_admin: bool, audit_event: dict) -> dict | None:
    cur.execute(
        f"""WITH mine AS (SELECT {_CHECKOUT} FROM sm_checkouts c
                           WHERE c.account_kind = %(kind)s AND c.account_id = %(account)s AND c.user_id = %(user)s
                             AND {LIVE}
                           ORDER BY c.created DESC LIMIT 1),
                 made AS (INSERT INTO sm_checkouts AS c (id, account_kind, {FOREIGN_KEY[kind]}, user_id, expires,
                                                         holder_role_ids, holder_admin)
                          SELECT %(id)s, %(kind)s, %(account)s, %(user)s, now() + make_interval(secs => %(secs)s),
                                 %(roles)s, %(admin)s
                           WHERE NOT EXISTS (SELECT 1 FROM mine)
                             AND (coalesce(%(limit)s::int, 0) = 0
                                  OR (SELECT count(*) FROM sm_checkouts c
                                       WHERE c.account_kind = %(kind)s AND c.account_id = %(account)s AND {LIVE})
                                     < %(limit)s::int)
                          RETURNING {_CHECKOUT}),
                 claimed AS (SELECT *, true AS existing FROM mine UNION ALL SELECT *, false FROM made),
                 logged AS ({_AUDITED.format(details="jsonb_build_object('checkout_id', c.id::text, 'existing', c.existing)",
                                             source="claimed c")})
            SELECT * FROM claimed""",
        {"kind": kind, "id": checkout_id, "account": account_id, "user": user_id, "secs": duration_seconds,
         "roles": holder_role_ids, "admin": holder_admin, "limit": limit, **audit_params(audit_event)})
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


def end_checkout(cur, checkout_id, *, audit_event: dict) -> bool:
    """End a live checkout now and write `audit_event` (common.audit.new_event's columns) in the
    same statement; False (and no event) if it had already ended."""
    with audit.failing_closed(audit_event["action"], audit_event["target"]):
        cur.execute(f"""WITH ended AS (UPDATE sm_checkouts c SET ended = now() WHERE c.id = %(id)s AND {LIVE} RETURNING c.id)
                        {_AUDITED.format(details="%(a_details)s", source="ended")}""",
                    {"id": checkout_id, **audit_params(audit_event), "a_details": Jsonb(audit_event["details"])})
    return cur.rowcount == 1


def end_expired(cur, kind: str) -> list[dict]:
    """Mark ended the kind's checkouts past their time: `id, user_id, account_id` of each."""
    cur.execute("""UPDATE sm_checkouts SET ended = expires
                    WHERE account_kind = %(kind)s AND ended IS NULL AND expires <= now()
                RETURNING id, user_id, account_id""", {"kind": kind})
    return cur.fetchall()
