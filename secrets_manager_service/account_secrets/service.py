"""Account secrets a user may check out, and their checkouts.

A caller may see and check out the accounts of hosts whose access_roles it
holds (admin: every host). A checkout is visible only to its holder and to
admins; to anyone else it does not exist (404). Checkouts, their reads (they
carry passwords) and releases are audited, refusals included.
"""
from __future__ import annotations

import uuid

from common import audit, errors, metrics
from common.auth import Principal
from common.web import database
from secrets_manager_service import account_passwords, names
from secrets_manager_service.account_secrets import store
from secrets_manager_service.rotation import store as rotation_store

ADMIN = "admin"
HOST_SECRET = "HOST_SECRET"


def _is_admin(principal: Principal) -> bool:
    return principal.has_scope(ADMIN)


def _may_use(principal: Principal, account: dict) -> bool:
    return _is_admin(principal) or principal.holds_any_role(account["access_role_ids"])


def _host(row: dict) -> dict:
    # HostSecrets have one address and no external or instance ids of their own.
    return {"id": row["host_id"], "addresses": [row["address"]], "common_name": row["address"],
            "external_id": "", "instance_id": ""}


def _account_view(row: dict) -> dict:
    return {
        "path": names.secret_path(row["host_id"], row["account"]),
        "type": HOST_SECRET,
        "username": row["account"],
        "email": "",
        "full_name": "",
        "host": _host(row),
    }


def list_page(principal: Principal, args: dict, *, keywords: list[str] = (), host_id=None, username=None) -> dict:
    roles = None if _is_admin(principal) else sorted(principal.role_ids)
    total, rows = store.list_accounts(
        database(), role_ids=roles, host_id=host_id, username=username, keywords=list(keywords),
        sortkey=args["sortkey"], sortdir=args["sortdir"], offset=args["offset"], limit=args["limit"],
    )
    items = [{**_account_view(row), "created": row["created"], "updated": row["updated"]} for row in rows]
    return {"count": total, "items": items}


def _render_checkout(row: dict, secrets: list[dict]) -> dict:
    return {
        **_account_view(row),
        "id": row["id"],
        "expires": row["expires"],
        "created": row["created"],
        "explicit_checkout": row["explicit_checkout"],
        "secrets": secrets,
        "managed_account_id": row["account_id"],
        "user_id": row["user_id"],
    }


def check_out(principal: Principal, path: str) -> dict:
    """A live checkout of the account at `path` for the caller: its own one if it has one, else a new one."""
    parsed = names.parse_secret_path(path)
    if parsed is None:
        raise errors.ApiError("path must be hosts/{host_id}/{account}", code="VALUE_INCORRECT_FORMAT",
                              property="path").with_status(400)
    db = database()
    account = store.find_account(db, *parsed)
    if account is None or not _may_use(principal, account):
        audit.record("checkout.create", path, audit.NOT_FOUND)
        raise errors.NotFound("account secret not found")
    # The Vault first: if it cannot be read, the client gets 503 and no checkout is recorded.
    # An account registered without a password has none yet: its checkout's `secrets` is empty.
    secrets = account_passwords.live_versions(account["host_id"], account["account"])
    try:
        with db.transaction() as cur:
            limits = store.lock_account(cur, account["account_id"])
            if limits is None:  # removed meanwhile
                raise errors.NotFound("account secret not found")
            checkout = store.live_checkout_of(cur, account["account_id"], principal.sub)
            existing = checkout is not None
            if not existing:
                limit = limits["max_concurrent_checkouts"]
                if limit and store.count_live(cur, account["account_id"]) >= limit:
                    raise errors.Conflict(f"the account is checked out by the most users its policy allows ({limit})",
                                          property="path")
                checkout = store.insert_checkout(cur, uuid.uuid4(), account["account_id"], principal.sub,
                                                 limits["max_checkout_duration"])
            audit.record("checkout.create", path, cur=cur,
                         details={"checkout_id": str(checkout["id"]), "existing": existing})
    except errors.Conflict:
        audit.record("checkout.create", path, audit.DENIED, details={"reason": "concurrent checkout limit"})
        metrics.CHECKOUTS.labels("create", "conflict").inc()
        raise
    metrics.CHECKOUTS.labels("create", "existing" if existing else "success").inc()
    return {"count": 1, "items": [_render_checkout({**account, **checkout}, secrets)]}


def _with_secrets(row: dict) -> dict:
    """The checkout with the account's live passwords, read from the Vault now (and audited as read)."""
    secrets = account_passwords.live_versions(row["host_id"], row["account"])
    audit.record("checkout.read", names.secret_path(row["host_id"], row["account"]),
                 details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    return _render_checkout(row, secrets)


def _visible_checkout(principal: Principal, checkout_id: uuid.UUID) -> dict:
    row = store.find_live_checkout(database(), checkout_id)
    if row is None or not (row["user_id"] == principal.sub or _is_admin(principal)):
        audit.record("checkout.read", f"checkouts/{checkout_id}", audit.NOT_FOUND)
        raise errors.NotFound("checkout not found")
    return row


def get_checkout(principal: Principal, checkout_id: uuid.UUID) -> dict:
    return _with_secrets(_visible_checkout(principal, checkout_id))


def list_checkouts(principal: Principal, args: dict) -> dict:
    total, rows = store.list_live_checkouts(database(), user_id=principal.sub, sortdir=args["sortdir"],
                                            offset=args["offset"], limit=args["limit"])
    return {"count": total, "items": [_with_secrets(row) for row in rows]}


def release(principal: Principal, checkout_id: uuid.UUID) -> None:
    """End the checkout; if it was the account's last live one and the policy says so, queue a rotation."""
    row = _visible_checkout(principal, checkout_id)
    with database().transaction() as cur:
        # The account lock orders this release with concurrent checkouts of the same account.
        store.lock_account(cur, row["account_id"])
        if not store.end_checkout(cur, checkout_id):
            raise errors.NotFound("checkout not found")
        rotation_store.enqueue_if_unused(cur, row["account_id"])
        audit.record("checkout.release", names.secret_path(row["host_id"], row["account"]), cur=cur,
                     details={"checkout_id": str(checkout_id), "holder": row["user_id"]})
    metrics.CHECKOUTS.labels("release", "success").inc()
