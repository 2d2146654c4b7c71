"""Account secrets a user may check out, and their checkouts.

A caller may see and check out the accounts of hosts whose access_roles it
holds (admin: every host). A checkout is visible only to its holder and to
admins; to anyone else it does not exist (404). Access is checked again on every
read and release: a checkout whose holder lost access to the host is over (404,
ended as if released, so rotate_on_release applies, audited as revoked).
Checkouts, their reads (they carry passwords) and releases are audited,
refusals included. Managed directory accounts (`targetdomains/...`, TARGET_DOMAIN_SECRET)
are listed beside host accounts and checked out under the same rules: the rules are here
once, and what differs between the kinds of account is a kinds.Kind (HOSTS, and
target_domains.checkouts.DIRECTORY).
"""
from __future__ import annotations

import uuid

from common import audit, errors, metrics
from common.auth import Principal
from common.web import database
from secrets_manager_service.account_secrets import store
from secrets_manager_service.account_secrets.kinds import HOSTS, Kind
from secrets_manager_service.target_domains import checkouts as directory
from secrets_manager_service.target_domains.checkouts import DIRECTORY

ADMIN = "admin"
KINDS = (HOSTS, DIRECTORY)  # listings merge them in this order
ROLE_LOSS_BATCH = 1000  # a user's live checkouts looked at when a role is lost (the policy limits them)


def _is_admin(principal: Principal) -> bool:
    return principal.has_scope(ADMIN)


def _may_use(principal: Principal, account: dict) -> bool:
    return _is_admin(principal) or principal.holds_any_role(account["access_role_ids"])


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
        roles = None if _is_admin(principal) else sorted(principal.all_role_ids())  # grants too
        count, rows = store.list_accounts(database(), role_ids=roles, host_id=host_id, username=username,
                                          keywords=list(keywords), **window)
        total += count
        items += [{**HOSTS.view(row), "created": row["created"], "updated": row["updated"]} for row in rows]
    if host_id is None:
        count, rows = directory.list_accounts(principal, keywords=list(keywords), username=username,
                                              target_domain_id=target_domain_id, **window)
        total += count
        items += rows
    order = {"path": lambda i: i["path"], "username": lambda i: (i["username"], i["path"]),
             "created": lambda i: (i["created"], i["path"]), "updated": lambda i: (i["updated"], i["path"])}
    items.sort(key=order[args["sortkey"]], reverse=args["sortdir"] == "DESC")
    return {"count": total, "items": items[args["offset"]:args["offset"] + args["limit"]]}


def _kind_of(path: str) -> Kind:
    return next(kind for kind in (DIRECTORY, HOSTS) if kind.claims(path))


def _render(kind: Kind, account: dict, checkout: dict, secrets: list[dict]) -> dict:
    return {
        **kind.view(account),
        "id": checkout["id"],
        "expires": checkout["expires"],
        "created": checkout["created"],
        "explicit_checkout": checkout["explicit_checkout"],
        "secrets": secrets,
        "managed_account_id": kind.account_id(account),
        "user_id": checkout["user_id"],
    }


def check_out(principal: Principal, path: str) -> dict:
    """A live checkout of the account at `path` for the caller: its own one if it has one, else a new one."""
    kind = _kind_of(path)
    key = kind.parse(path)
    db = database()
    account = kind.find_account(db, key)
    if account is None or not kind.usable(account) or not _may_use(principal, account):
        audit.record("checkout.create", path, audit.NOT_FOUND)
        raise errors.NotFound("account secret not found")
    # The Vault first: if it cannot be read, the client gets 503 and no checkout is recorded.
    secrets = kind.passwords(account)
    if not secrets:
        audit.record("checkout.create", path, audit.FAILED, details={"reason": "no password in the Vault"})
        raise errors.ApiError(f"the Vault has no password for this account: {kind.no_password_hint}",
                              code="CONFIGURATION_ERROR", property="path").with_status(409)
    account_id = kind.account_id(account)
    try:
        with db.transaction() as cur:
            limits = kind.lock(cur, account_id)  # orders this with other checkouts and releases of the account
            if limits is None:  # removed (or no longer usable) meanwhile
                raise errors.NotFound("account secret not found")
            checkout = kind.live_checkout_of(cur, account_id, principal.sub)
            existing = checkout is not None
            if not existing:
                limit = limits["max_concurrent_checkouts"]
                if limit and kind.count_live(cur, account_id, limits) >= limit:
                    raise errors.Conflict(f"the account is checked out by the most users its policy allows ({limit})",
                                          property="path")
                checkout = kind.insert_checkout(cur, uuid.uuid4(), account_id, principal.sub,
                                                limits["max_checkout_duration"],
                                                holder_role_ids=sorted(principal.all_role_ids()),
                                                holder_admin=_is_admin(principal))
            audit.record("checkout.create", path, cur=cur,
                         details={"checkout_id": str(checkout["id"]), "existing": existing})
    except errors.Conflict:
        audit.record("checkout.create", path, audit.DENIED, details={"reason": "concurrent checkout limit"})
        metrics.CHECKOUTS.labels("create", "conflict").inc()
        raise
    metrics.CHECKOUTS.labels("create", "existing" if existing else "success").inc()
    return {"count": 1, "items": [_render(kind, account, checkout, secrets)]}


def _with_secrets(kind: Kind, found: dict) -> dict:
    """The checkout with the account's live passwords, read from the Vault now (and audited as read)."""
    account = found["account"]
    secrets = kind.passwords(account)
    path = kind.path(account)
    if not secrets:
        audit.record("checkout.read", path, audit.FAILED, details={"checkout_id": str(found["id"]),
                                                                    "reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account", code="CONFIGURATION_ERROR").with_status(409)
    audit.record("checkout.read", path, details={"checkout_id": str(found["id"]), "holder": found["user_id"]})
    return _render(kind, account, found, secrets)


def _holder_may_still_use(kind: Kind, principal: Principal, found: dict) -> bool:
    """Whether the checkout's holder may still use its account: by the caller's token when the
    holder calls, else by the roles the holder checked out with, against the account's roles now;
    and whether the account may still be checked out at all."""
    account = found["account"]
    if not kind.usable(account):
        return False
    if found["user_id"] == principal.sub:
        return _may_use(principal, account)
    return found["holder_admin"] or not set(found["holder_role_ids"]).isdisjoint(account["access_role_ids"])


def _end(kind: Kind, found: dict, *, action: str, details: dict | None = None) -> bool:
    """End the checkout (release or revocation); False if it had already ended. The last live one
    queues a release rotation when the policy says rotate_on_release."""
    account_id = kind.account_id(found["account"])
    with database().transaction() as cur:
        # The account lock orders this with concurrent checkouts of the same account.
        kind.lock(cur, account_id)
        if not kind.end_checkout(cur, found["id"]):
            return False
        kind.queue_release(cur, account_id)
        audit.record(action, kind.path(found["account"]), cur=cur,
                     details={"checkout_id": str(found["id"]), "holder": found["user_id"], **(details or {})})
    metrics.CHECKOUTS.labels(action.split(".")[-1], "success").inc()
    return True


def _revoke(kind: Kind, found: dict) -> None:
    """End a checkout whose holder lost access, as a release would (rotate_on_release applies)."""
    _end(kind, found, action="checkout.revoke", details={"reason": kind.revoke_reason})


def revoke_after_role_loss(user_id: str, lost_role_id: str, held_role_ids, reason: str) -> int:
    """End the user's live checkouts that needed `lost_role_id`: of accounts that role reaches and
    none of `held_role_ids` (what the user still holds) does, unless held as admin. Audited
    `checkout.revoke`, rotate_on_release applies, as any revocation; the number ended."""
    held = frozenset(held_role_ids)
    ended = 0
    for kind in KINDS:
        _total, found = kind.live_of(user_id, sortdir="ASC", limit=ROLE_LOSS_BATCH)
        for checkout in found:
            reach = checkout["account"]["access_role_ids"]
            if checkout["holder_admin"] or lost_role_id not in reach or not held.isdisjoint(reach):
                continue
            ended += _end(kind, checkout, action="checkout.revoke", details={"reason": reason})
    return ended


def _visible_checkout(principal: Principal, checkout_id: uuid.UUID, action: str) -> tuple[Kind, dict]:
    """A live checkout the caller may see and its holder still use, with its kind; else 404."""
    kind, found = next(((kind, found) for kind in KINDS if (found := kind.find_live(checkout_id)) is not None),
                       (None, None))
    if found is None or not (found["user_id"] == principal.sub or _is_admin(principal)):
        audit.record(action, f"checkouts/{checkout_id}", audit.NOT_FOUND)
        raise errors.NotFound("checkout not found")
    if not _holder_may_still_use(kind, principal, found):
        _revoke(kind, found)
        raise errors.NotFound("checkout not found")
    return kind, found


def get_checkout(principal: Principal, checkout_id: uuid.UUID) -> dict:
    return _with_secrets(*_visible_checkout(principal, checkout_id, "checkout.read"))


def list_checkouts(principal: Principal, args: dict) -> dict:
    """The caller's live checkouts of every kind, by creation, one page."""
    window = args["offset"] + args["limit"]
    total, both = 0, []
    for kind in KINDS:
        count, found = kind.live_of(principal.sub, sortdir=args["sortdir"], limit=window)
        total += count
        both += [(kind, row) for row in found]
    both.sort(key=lambda entry: entry[1]["created"], reverse=args["sortdir"] == "DESC")
    items = []
    for kind, found in both[args["offset"]:window]:
        if not _holder_may_still_use(kind, principal, found):
            _revoke(kind, found)
            total -= 1
            continue
        try:
            items.append(_with_secrets(kind, found))
        except errors.ApiError as exc:
            if exc.code != "CONFIGURATION_ERROR":
                raise
            total -= 1  # its password is gone from the Vault: never listed without one, the others still are
    return {"count": total, "items": items}


def release(principal: Principal, checkout_id: uuid.UUID) -> None:
    """End the checkout; if it was the account's last live one and the policy says so, queue a rotation."""
    kind, found = _visible_checkout(principal, checkout_id, "checkout.release")
    if not _end(kind, found, action="checkout.release"):
        raise errors.NotFound("checkout not found")
