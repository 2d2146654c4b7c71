"""Managed directory accounts as account secrets (`TARGET_DOMAIN_SECRET`) and their checkouts.

account_secrets serves `/secrets...` for both kinds and hands paths `targetdomains/...` and
these checkouts' ids here. The rules are the hosts': a caller may use an account whose
`access_roles` it holds (admin: any), checkouts respect the policy's
`max_concurrent_checkouts` (409 when full, on every replica: the account's row is the lock)
and `max_checkout_duration`; the last release queues a rotation when the policy says
`rotate_on_release` (and the account's `rotation_enabled`). Besides, an account is listed and
checked out only while it is `enabled`, `explicit_checkout`, ACTIVE or FAILED, in an enabled
domain; a live checkout whose account stops being so, or whose holder loses the role, is over
(404 on read and release, ended as if released, audited as revoked).
"""
from __future__ import annotations

import re
import uuid

from common import audit, errors, metrics
from common.auth import Principal
from common.db import fetch_page
from common.web import database
from secrets_manager_service.rotation.store import LIVE_CHECKOUT
from secrets_manager_service.target_domains import managed_passwords, rotations
from secrets_manager_service.target_domains import managed_store as managed

TYPE = "TARGET_DOMAIN_SECRET"
PREFIX = "targetdomains/"
_PATH = re.compile(r"targetdomains/([0-9a-fA-F-]{36})/([0-9a-fA-F-]{36})")
WORKER = "secrets-manager-worker"

# Accounts a user may check out (the role condition is added per caller).
USABLE = ("m.enabled AND m.explicit_checkout AND NOT a.removed AND m.state IN ('ACTIVE', 'FAILED') "
           "AND d.enabled")
_ACCOUNT_COLUMNS = """m.id AS managed_id, m.domain_id, d.name AS domain_name, a.username, a.email, a.full_name,
                      m.access_role_ids, m.created, m.updated"""
ACCOUNTS = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
               JOIN sm_target_domains d ON d.id = m.domain_id"""
SORT_COLUMNS = {
    "path": "m.domain_id::text {dir}, m.id::text {dir}",
    "username": "a.username {dir}, m.id",
    "created": "m.created {dir}, m.id",
    "updated": "m.updated {dir}, m.id",
}


def is_path(path: str) -> bool:
    return path.startswith(PREFIX)


def _is_admin(principal: Principal) -> bool:
    return principal.has_scope("admin")


def _usable(row: dict) -> bool:
    return (row["enabled"] and row["explicit_checkout"] and row["api_state"] in ("ACTIVE", "FAILED")
            and row["domain_enabled"])


def _may_use(principal: Principal, row: dict) -> bool:
    return _is_admin(principal) or principal.holds_any_role(row["access_role_ids"])


def view(row: dict) -> dict:
    """The account-secret fields of a managed account (no `host`: it has a `target_domain`)."""
    return {"path": managed_passwords.path(row["domain_id"], row["managed_id"]), "type": TYPE,
            "username": row["username"], "email": row["email"], "full_name": row["full_name"],
            "target_domain": {"id": row["domain_id"], "name": row["domain_name"], "deleted": False}}


# --- /secrets and /secrets/search -----------------------------------------------------------

def list_accounts(principal: Principal, *, keywords: list[str] = (), username: str | None = None,
                  target_domain_id=None, sortkey: str, sortdir: str, offset: int, limit: int) -> tuple[int, list[dict]]:
    """(total, rows) of the managed accounts the caller may check out, one page; rows carry `view` fields
    and `created`, `updated`."""
    where, params = [USABLE], {}
    if not _is_admin(principal):
        where.append("m.access_role_ids && %(roles)s::text[]")
        params["roles"] = sorted(principal.role_ids)
    if target_domain_id is not None:
        where.append("m.domain_id = %(domain)s")
        params["domain"] = target_domain_id
    if username is not None:
        where.append("lower(a.username) = lower(%(username)s)")
        params["username"] = username
    for i, keyword in enumerate(keywords):
        # A keyword matches the path, the account's names or its domain's name.
        where.append(f"""strpos(lower('targetdomains/' || m.domain_id::text || '/' || m.id::text || ' ' || a.username
                                      || ' ' || a.email || ' ' || a.full_name || ' ' || d.name), %(kw{i})s) > 0""")
        params[f"kw{i}"] = keyword.lower()
    total, rows = fetch_page(database(), columns=_ACCOUNT_COLUMNS, source=ACCOUNTS, where=" AND ".join(where),
                             order=SORT_COLUMNS[sortkey].format(dir=sortdir), params=params, offset=offset, limit=limit)
    return total, [{**view(row), "created": row["created"], "updated": row["updated"]} for row in rows]


# --- checkouts ---------------------------------------------------------------------------------

_CHECKOUT = "c.id, c.user_id, c.explicit_checkout, c.created, c.expires, c.managed_account_id, c.holder_role_ids, c.holder_admin"


def _render(row: dict, checkout: dict, secrets: list[dict]) -> dict:
    return {**view({**row, "managed_id": row["id"]}), "id": checkout["id"], "expires": checkout["expires"],
            "created": checkout["created"], "explicit_checkout": checkout["explicit_checkout"], "secrets": secrets,
            "managed_account_id": row["id"], "user_id": checkout["user_id"]}


def _passwords(row: dict) -> list[dict]:
    """The current password and its history, and a rotation's pending one once the directory accepts it."""
    pending = rotations.accepted_pending(row["id"])
    return managed_passwords.live_versions(row["domain_id"], row["id"], also=pending)


def _parse(path: str) -> tuple[uuid.UUID, uuid.UUID]:
    match = _PATH.fullmatch(path)
    try:
        if match:
            return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))
    except ValueError:
        pass
    raise errors.ApiError("path must be targetdomains/{target_domain_id}/{managed_account_id}",
                          code="VALUE_INCORRECT_FORMAT", property="path").with_status(400)


def check_out(principal: Principal, path: str) -> dict:
    domain_id, managed_id = _parse(path)
    db = database()
    row = managed.find_managed(db, domain_id, managed_id)
    if row is None or not _usable(row) or not _may_use(principal, row):
        audit.record("checkout.create", path, audit.NOT_FOUND)
        raise errors.NotFound("account secret not found")
    secrets = _passwords(row)  # the Vault first: if it cannot be read, 503 and no checkout
    if not secrets:
        audit.record("checkout.create", path, audit.FAILED, details={"reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account: rotate it or set its password",
                              code="CONFIGURATION_ERROR", property="path").with_status(409)
    try:
        with db.transaction() as cur:
            locked = managed.find_by_id(cur, managed_id, lock=True)  # orders checkouts of this account
            if locked is None or not _usable(locked):
                raise errors.NotFound("account secret not found")
            cur.execute(f"""SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.managed_account_id = %(id)s
                             AND c.user_id = %(user)s AND {LIVE_CHECKOUT} ORDER BY c.created DESC LIMIT 1""",
                        {"id": managed_id, "user": principal.sub})
            checkout = cur.fetchone()
            existing = checkout is not None
            if not existing:
                limit = locked["max_concurrent_checkouts"]
                if limit and locked["live_checkouts"] >= limit:
                    raise errors.Conflict(f"the account is checked out by the most users its policy allows ({limit})",
                                          property="path")
                cur.execute(
                    f"""INSERT INTO sm_td_checkouts AS c (id, managed_account_id, user_id, expires, holder_role_ids,
                                                        holder_admin)
                        VALUES (%(id)s, %(account)s, %(user)s, now() + make_interval(secs => %(secs)s), %(roles)s,
                                %(admin)s)
                        RETURNING {_CHECKOUT}""",
                    {"id": uuid.uuid4(), "account": managed_id, "user": principal.sub,
                     "secs": locked["max_checkout_duration"], "roles": sorted(principal.role_ids),
                     "admin": _is_admin(principal)})
                checkout = cur.fetchone()
            audit.record("checkout.create", path, cur=cur, details={"checkout_id": str(checkout["id"]),
                                                                   "existing": existing})
    except errors.Conflict:
        audit.record("checkout.create", path, audit.DENIED, details={"reason": "concurrent checkout limit"})
        metrics.CHECKOUTS.labels("create", "conflict").inc()
        raise
    metrics.CHECKOUTS.labels("create", "existing" if existing else "success").inc()
    return {"count": 1, "items": [_render(row, checkout, secrets)]}


def find_live(checkout_id) -> dict | None:
    """A live checkout with its account's row (`account`), or None."""
    with database().cursor() as cur:
        cur.execute(f"SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.id = %(id)s AND {LIVE_CHECKOUT}",
                    {"id": checkout_id})
        checkout = cur.fetchone()
    if checkout is None:
        return None
    account = managed.find_by_id(database(), checkout["managed_account_id"])
    return {**checkout, "account": account} if account else None


def live_of(user_id: str, *, sortdir: str, limit: int) -> list[dict]:
    """The user's live checkouts of directory accounts, by creation, at most `limit`."""
    with database().cursor() as cur:
        cur.execute(f"""SELECT {_CHECKOUT} FROM sm_td_checkouts c WHERE c.user_id = %(user)s AND {LIVE_CHECKOUT}
                         ORDER BY c.created {sortdir}, c.id LIMIT %(limit)s""", {"user": user_id, "limit": limit})
        found = cur.fetchall()
    out = []
    for checkout in found:
        account = managed.find_by_id(database(), checkout["managed_account_id"])
        if account is not None:
            out.append({**checkout, "account": account})
    return out


def count_live_of(user_id: str) -> int:
    with database().cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM sm_td_checkouts c WHERE c.user_id = %(user)s AND {LIVE_CHECKOUT}",
                    {"user": user_id})
        return cur.fetchone()["n"]


def still_valid(principal: Principal, found: dict) -> bool:
    """Whether the checkout's holder may still use its account (the caller's token when the holder
    calls, else the roles the holder checked out with), and the account may still be checked out."""
    row = found["account"]
    if not _usable(row):
        return False
    if found["user_id"] == principal.sub:
        return _may_use(principal, row)
    return found["holder_admin"] or not set(found["holder_role_ids"]).isdisjoint(row["access_role_ids"])


def with_secrets(found: dict) -> dict:
    row = found["account"]
    path = managed_passwords.path(row["domain_id"], row["id"])
    secrets = _passwords(row)
    if not secrets:
        audit.record("checkout.read", path, audit.FAILED, details={"checkout_id": str(found["id"]),
                                                                    "reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account", code="CONFIGURATION_ERROR").with_status(409)
    audit.record("checkout.read", path, details={"checkout_id": str(found["id"]), "holder": found["user_id"]})
    return _render(row, found, secrets)


def end(found: dict, *, action: str, details: dict | None = None) -> bool:
    """End the checkout (release or revocation); the last one queues a CHECKOUT_RELEASE rotation when
    the policy says rotate_on_release and the account's rotation_enabled."""
    row = found["account"]
    with database().transaction() as cur:
        managed.find_by_id(cur, row["id"], lock=True)
        cur.execute(f"UPDATE sm_td_checkouts c SET ended = now() WHERE c.id = %(id)s AND {LIVE_CHECKOUT}",
                    {"id": found["id"]})
        if cur.rowcount != 1:
            return False
        _queue_release_rotation(cur, [row["id"]])
        audit.record(action, managed_passwords.path(row["domain_id"], row["id"]), cur=cur,
                     details={"checkout_id": str(found["id"]), "holder": found["user_id"], **(details or {})})
    metrics.CHECKOUTS.labels(action.split(".")[-1], "success").inc()
    return True


def _queue_release_rotation(cur, managed_ids: list) -> None:
    cur.execute(
        f"""INSERT INTO sm_td_rotations (managed_account_id, trigger)
            SELECT m.id, %(trigger)s FROM sm_td_managed_accounts m
              JOIN sm_password_policies p ON p.id = m.password_policy_id
             WHERE m.id = ANY (%(ids)s) AND p.rotate_on_release AND m.rotation_enabled
               AND NOT EXISTS (SELECT 1 FROM sm_td_checkouts c WHERE c.managed_account_id = m.id AND {LIVE_CHECKOUT})
            ON CONFLICT (managed_account_id) DO NOTHING""",
        {"ids": list(managed_ids), "trigger": rotations.CHECKOUT_RELEASE})


def expire() -> int:
    """The worker's part: mark ended the checkouts past their time; queue release rotations."""
    with database().transaction() as cur:
        cur.execute("""UPDATE sm_td_checkouts SET ended = expires WHERE ended IS NULL AND expires <= now()
                       RETURNING id, user_id, managed_account_id""")
        ended = cur.fetchall()
        if not ended:
            return 0
        _queue_release_rotation(cur, sorted({row["managed_account_id"] for row in ended}))
        cur.execute("SELECT id, domain_id FROM sm_td_managed_accounts WHERE id = ANY (%(ids)s)",
                    {"ids": [row["managed_account_id"] for row in ended]})
        domains = {row["id"]: row["domain_id"] for row in cur.fetchall()}
        for row in ended:
            audit.record("checkout.expire", managed_passwords.path(domains.get(row["managed_account_id"]),
                                                                   row["managed_account_id"]),
                         cur=cur, principal=WORKER, details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    metrics.CHECKOUTS.labels("expire", "success").inc(len(ended))
    return len(ended)
