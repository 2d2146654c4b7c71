"""Managed directory accounts as account secrets (`TARGET_DOMAIN_SECRET`) and their checkouts.

account_secrets serves `/secrets...` for both kinds; its checkout rules apply to these accounts
through DIRECTORY (an account_secrets.kinds.Kind), SQL in checkout_store. The rules are the
hosts': a caller may use an account whose
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
from secrets_manager_service import account_passwords, names
from secrets_manager_service.account_secrets.kinds import Kind
from secrets_manager_service.target_domains import checkout_store
from secrets_manager_service.target_domains import rotations
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


def view(row: dict) -> dict:
    """The account-secret fields of a managed account (no `host`: it has a `target_domain`)."""
    return {"path": names.directory_secret_path(row["domain_id"], row["managed_id"]), "type": TYPE,
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
        params["roles"] = sorted(principal.all_role_ids())  # grants too
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


# --- checkouts: the rules are account_secrets.service's, parameterised by DIRECTORY ----------------


def _passwords(row: dict) -> list[dict]:
    """The current password and its history, and a rotation's pending one once the directory accepts it."""
    pending = rotations.accepted_pending(row["id"])
    return account_passwords.live_versions(names.directory_secret_path(row["domain_id"], row["id"]), also=pending)


def _parse(path: str) -> tuple[uuid.UUID, uuid.UUID]:
    match = _PATH.fullmatch(path)
    try:
        if match:
            return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))
    except ValueError:
        pass
    raise errors.ApiError("path must be targetdomains/{target_domain_id}/{managed_account_id}",
                          code="VALUE_INCORRECT_FORMAT", property="path").with_status(400)


def _lock(cur, managed_id) -> dict | None:
    """The account's row (its policy's limits and live checkouts), locked; None once it may not be checked out."""
    locked = managed.find_by_id(cur, managed_id, lock=True)
    return locked if locked is not None and _usable(locked) else None


def _with_account(checkout: dict) -> dict | None:
    account = managed.find_by_id(database(), checkout["managed_account_id"])
    return {**checkout, "account": account} if account else None


def _find_live(checkout_id) -> dict | None:
    checkout = checkout_store.find_live_checkout(database(), checkout_id)
    return _with_account(checkout) if checkout else None


def _live_of(user_id: str, *, sortdir: str, limit: int) -> tuple[int, list[dict]]:
    found = [_with_account(c) for c in checkout_store.live_checkouts_of(database(), user_id, sortdir=sortdir, limit=limit)]
    return checkout_store.count_live_of(database(), user_id), [f for f in found if f is not None]


def _queue_release(cur, managed_id) -> None:
    checkout_store.queue_release_rotation(cur, [managed_id], rotations.CHECKOUT_RELEASE)


DIRECTORY = Kind(
    name="directory",
    claims=is_path,
    parse=_parse,
    find_account=lambda db, key: managed.find_managed(db, *key),
    usable=_usable,
    account_id=lambda account: account["id"],
    path=lambda account: names.directory_secret_path(account["domain_id"], account["id"]),
    view=lambda account: view({**account, "managed_id": account["id"]}),
    passwords=_passwords,
    no_password_hint="rotate it or set its password",
    lock=_lock,
    count_live=lambda cur, managed_id, locked: locked["live_checkouts"],
    live_checkout_of=checkout_store.live_checkout_of,
    insert_checkout=checkout_store.insert_checkout,
    find_live=_find_live,
    live_of=_live_of,
    end_checkout=checkout_store.end_checkout,
    queue_release=_queue_release,
    revoke_reason="the account may no longer be used",
)


def expire() -> int:
    """The worker's part: mark ended the checkouts past their time; queue release rotations."""
    with database().transaction() as cur:
        ended = checkout_store.end_expired(cur)
        if not ended:
            return 0
        checkout_store.queue_release_rotation(cur, sorted({row["managed_account_id"] for row in ended}),
                                         rotations.CHECKOUT_RELEASE)
        domains = checkout_store.domains_of(cur, [row["managed_account_id"] for row in ended])
        for row in ended:
            audit.record("checkout.expire", names.directory_secret_path(domains.get(row["managed_account_id"]),
                                                                   row["managed_account_id"]),
                         cur=cur, principal=WORKER, details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    metrics.CHECKOUTS.labels("expire", "success").inc(len(ended))
    return len(ended)
