"""Account secrets a user may check out, and their checkouts.

A caller may see and check out the accounts of hosts whose access_roles it
holds (admin: every host). A checkout is visible only to its holder and to
admins; to anyone else it does not exist (404). Access is checked again on every
read and release: a checkout whose holder lost access to the host is over (404,
ended as if released, so rotate_on_release applies, audited as revoked).
Checkouts, their reads (they carry passwords) and releases are audited,
refusals included. Managed directory accounts (`targetdomains/...`, TARGET_DOMAIN_SECRET)
are listed beside host accounts and checked out under the same rules by
target_domains.checkouts.
"""
from __future__ import annotations

import uuid

from common import audit, errors, metrics
from common.auth import Principal
from common.web import database
from secrets_manager_service import account_passwords, names
from secrets_manager_service.account_secrets import store
from secrets_manager_service.rotation import service as rotation
from secrets_manager_service.rotation import store as rotation_store
from secrets_manager_service.target_domains import checkouts as directory

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


def list_page(principal: Principal, args: dict, *, keywords: list[str] = (), host_id=None, username=None,
              target_domain_id=None) -> dict:
    """Host accounts and managed directory accounts the caller may check out, one page of both.

    `host_id` leaves the directory accounts out, `target_domain_id` the host accounts. Each
    kind's first offset+limit rows come in order from its own query; the page is cut from
    their merge.
    """
    window = {"sortkey": args["sortkey"], "sortdir": args["sortdir"], "offset": 0,
              "limit": args["offset"] + args["limit"]}
    total, items = 0, []
    if target_domain_id is None:
        roles = None if _is_admin(principal) else sorted(principal.role_ids)
        count, rows = store.list_accounts(database(), role_ids=roles, host_id=host_id, username=username,
                                          keywords=list(keywords), **window)
        total += count
        items += [{**_account_view(row), "created": row["created"], "updated": row["updated"]} for row in rows]
    if host_id is None:
        count, rows = directory.list_accounts(principal, keywords=list(keywords), username=username,
                                              target_domain_id=target_domain_id, **window)
        total += count
        items += rows
    order = {"path": lambda i: i["path"], "username": lambda i: (i["username"], i["path"]),
             "created": lambda i: (i["created"], i["path"]), "updated": lambda i: (i["updated"], i["path"])}
    items.sort(key=order[args["sortkey"]], reverse=args["sortdir"] == "DESC")
    return {"count": total, "items": items[args["offset"]:args["offset"] + args["limit"]]}


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
    if directory.is_path(path):
        return directory.check_out(principal, path)
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
    secrets = _passwords(account)
    if not secrets:
        audit.record("checkout.create", path, audit.FAILED, details={"reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account: store one with set-password",
                              code="CONFIGURATION_ERROR", property="path").with_status(409)
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
                                                 limits["max_checkout_duration"],
                                                 holder_role_ids=sorted(principal.role_ids),
                                                 holder_admin=_is_admin(principal))
            audit.record("checkout.create", path, cur=cur,
                         details={"checkout_id": str(checkout["id"]), "existing": existing})
    except errors.Conflict:
        audit.record("checkout.create", path, audit.DENIED, details={"reason": "concurrent checkout limit"})
        metrics.CHECKOUTS.labels("create", "conflict").inc()
        raise
    metrics.CHECKOUTS.labels("create", "existing" if existing else "success").inc()
    return {"count": 1, "items": [_render_checkout({**account, **checkout}, secrets)]}


def _passwords(account: dict) -> list[dict]:
    """The passwords a checkout hands out, newest first: the current one and its history, and a
    rotation's pending one only once the target accepts it."""
    pending = rotation.accepted_pending(account["account_id"])
    return account_passwords.live_versions(names.secret_path(account["host_id"], account["account"]), also=pending)


def _with_secrets(row: dict) -> dict:
    """The checkout with the account's live passwords, read from the Vault now (and audited as read)."""
    secrets = _passwords(row)
    path = names.secret_path(row["host_id"], row["account"])
    if not secrets:
        audit.record("checkout.read", path, audit.FAILED, details={"checkout_id": str(row["id"]),
                                                                    "reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account", code="CONFIGURATION_ERROR").with_status(409)
    audit.record("checkout.read", path, details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    return _render_checkout(row, secrets)


def _holder_may_still_use(principal: Principal, row: dict) -> bool:
    """Whether the checkout's holder may still use its account: by the caller's token when the
    holder calls, else by the roles the holder checked out with, against the host's roles now."""
    if row["user_id"] == principal.sub:
        return _may_use(principal, row)
    return row["holder_admin"] or not set(row["holder_role_ids"]).isdisjoint(row["access_role_ids"])


def _revoke(row: dict) -> None:
    """End a checkout whose holder lost access, as a release would (rotate_on_release applies)."""
    with database().transaction() as cur:
        store.lock_account(cur, row["account_id"])
        if store.end_checkout(cur, row["id"]):
            rotation_store.enqueue_if_unused(cur, row["account_id"])
            audit.record("checkout.revoke", names.secret_path(row["host_id"], row["account"]), cur=cur,
                         details={"checkout_id": str(row["id"]), "holder": row["user_id"],
                                  "reason": "the holder no longer may use the account"})
    metrics.CHECKOUTS.labels("revoke", "success").inc()


def _visible_checkout(principal: Principal, checkout_id: uuid.UUID, action: str) -> dict:
    row = store.find_live_checkout(database(), checkout_id)
    if row is None or not (row["user_id"] == principal.sub or _is_admin(principal)):
        audit.record(action, f"checkouts/{checkout_id}", audit.NOT_FOUND)
        raise errors.NotFound("checkout not found")
    if not _holder_may_still_use(principal, row):
        _revoke(row)
        raise errors.NotFound("checkout not found")
    return row


def _visible_directory_checkout(principal: Principal, checkout_id: uuid.UUID, action: str) -> dict:
    """A live checkout of a directory account the caller may see and its holder still use; else 404."""
    found = directory.find_live(checkout_id)
    if found is None or not (found["user_id"] == principal.sub or _is_admin(principal)):
        audit.record(action, f"checkouts/{checkout_id}", audit.NOT_FOUND)
        raise errors.NotFound("checkout not found")
    if not directory.still_valid(principal, found):
        directory.end(found, action="checkout.revoke", details={"reason": "the account may no longer be used"})
        raise errors.NotFound("checkout not found")
    return found


def get_checkout(principal: Principal, checkout_id: uuid.UUID) -> dict:
    if store.find_live_checkout(database(), checkout_id) is None:
        return directory.with_secrets(_visible_directory_checkout(principal, checkout_id, "checkout.read"))
    return _with_secrets(_visible_checkout(principal, checkout_id, "checkout.read"))


def list_checkouts(principal: Principal, args: dict) -> dict:
    """The caller's live checkouts of both kinds, by creation, one page."""
    window = args["offset"] + args["limit"]
    total, rows = store.list_live_checkouts(database(), user_id=principal.sub, sortdir=args["sortdir"],
                                            offset=0, limit=window)
    total += directory.count_live_of(principal.sub)
    both = [(row["created"], "host", row) for row in rows]
    both += [(found["created"], "directory", found)
             for found in directory.live_of(principal.sub, sortdir=args["sortdir"], limit=window)]
    both.sort(key=lambda entry: entry[0], reverse=args["sortdir"] == "DESC")
    items = []
    for _, kind, row in both[args["offset"]:window]:
        valid = directory.still_valid(principal, row) if kind == "directory" else _holder_may_still_use(principal, row)
        if not valid:
            if kind == "directory":
                directory.end(row, action="checkout.revoke", details={"reason": "the account may no longer be used"})
            else:
                _revoke(row)
            total -= 1
            continue
        try:
            items.append(directory.with_secrets(row) if kind == "directory" else _with_secrets(row))
        except errors.ApiError as exc:
            if exc.code != "CONFIGURATION_ERROR":
                raise
            total -= 1  # its password is gone from the Vault: never listed without one, the others still are
    return {"count": total, "items": items}


def release(principal: Principal, checkout_id: uuid.UUID) -> None:
    """End the checkout; if it was the account's last live one and the policy says so, queue a rotation."""
    if store.find_live_checkout(database(), checkout_id) is None:
        found = _visible_directory_checkout(principal, checkout_id, "checkout.release")
        if not directory.end(found, action="checkout.release"):
            raise errors.NotFound("checkout not found")
        return
    row = _visible_checkout(principal, checkout_id, "checkout.release")
    with database().transaction() as cur:
        # The account lock orders this release with concurrent checkouts of the same account.
        store.lock_account(cur, row["account_id"])
        if not store.end_checkout(cur, checkout_id):
            raise errors.NotFound("checkout not found")
        rotation_store.enqueue_if_unused(cur, row["account_id"])
        audit.record("checkout.release", names.secret_path(row["host_id"], row["account"]), cur=cur,
                     details={"checkout_id": str(checkout_id), "holder": row["user_id"]})
    metrics.CHECKOUTS.labels("release", "success").inc()
