"""The checkout flow: account secrets of every family and their checkouts, under one set of rules.

A caller may see and check out the accounts it may use (family's roles; admin: any usable
one). A checkout respects its policy's `max_concurrent_checkouts` (409 when full, on every
replica: the account's row is the lock) and `max_checkout_duration`; a second checkout by the
same user returns its live one. A checkout is visible only to its holder and to admins; to
anyone else it does not exist (404). Access is checked again on every read and release: a
checkout whose holder lost access, or whose account may no longer be checked out, is over
(404, ended as if released, so rotate_on_release applies, audited as revoked). The passwords
are read from the Vault on every checkout and read (the Vault first: if it cannot be read, 503
and nothing is recorded); a rotation's pending password is handed out only once the target is
known to accept it. Checkouts, their reads and releases are audited, refusals included.

Every function takes the families (or one) and its dependencies (Deps: the database, the
Vault's password versions, the audit trail, the checkout store), so the rules are tested fast
against fake families (tests/secrets_manager/test_account_flows.py).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common import audit, errors, metrics
from common.auth import Principal
from common.web import database
from secrets_manager_service import account_passwords
from secrets_manager_service.accounts import checkout_store, rotations
from secrets_manager_service.accounts.family import AccountFamily

ADMIN = "admin"
WORKER = rotations.WORKER
ROLE_LOSS_BATCH = 1000  # a user's live checkouts looked at when a role is lost (the policy limits them)


@dataclass(frozen=True)
class Deps:
    """What the checkout rules work with: the database (transactions and cursors), the checkout
    store (accounts.checkout_store's functions), the Vault's password versions (account_passwords'),
    the audit trail, and which pending version of an account its target accepts."""

    db: Any
    store: Any = checkout_store
    vault: Any = account_passwords
    # An event the store writes in the statement it belongs to (a claim, an end): its columns
    # first, its log line once written. (Before `audit`, whose name hides the module below it.)
    event: Callable[..., dict] = audit.new_event
    log_event: Callable[[dict], None] = audit.log_event
    audit: Callable[..., None] = audit.record
    accepted_pending: Callable[[AccountFamily, Any], int | None] | None = field(default=None)

    def pending(self, family: AccountFamily, account: dict) -> int | None:
        account_id = family.account_id(account)
        if self.accepted_pending is not None:
            return self.accepted_pending(family, account_id)
        # The rotation state comes with the account where its family reads them together.
        return rotations.accepted_pending(family, rotations.Deps(db=self.db, vault=self.vault), account_id,
                                          rotations.state_carried(account))


def app_deps() -> Deps:
    """The running app's: its database and Vault."""
    return Deps(db=database())


def _is_admin(principal: Principal) -> bool:
    return principal.has_scope(ADMIN)


def _may_use(principal: Principal, account: dict) -> bool:
    return _is_admin(principal) or principal.holds_any_role(account["access_role_ids"])


def list_page(families: tuple[AccountFamily, ...], deps: Deps, principal: Principal, args: dict, *,
              keywords: list[str] = (), within: dict | None = None, username=None) -> dict:
    """The accounts the caller may check out, one page of every family's.

    `within` ({a family's `within` field: id}) narrows to that family's accounts under that id and
    leaves the other families out (two families' fields: nothing is listed). Each family's first offset+limit rows come in order from its
    own query; the page is cut from their merge.
    """
    within = {k: v for k, v in (within or {}).items() if v is not None}
    window = {"sortkey": args["sortkey"], "sortdir": args["sortdir"], "offset": 0,
              "limit": args["offset"] + args["limit"]}
    roles = None if _is_admin(principal) else sorted(principal.all_role_ids())  # grants too
    total, items = 0, []
    for family in families:
        if any(name != family.within for name in within):  # narrowed to another family's accounts
            continue
        count, rows = family.list_accounts(deps.db, role_ids=roles, keywords=list(keywords), username=username,
                                           within=within.get(family.within), **window)
        total += count
        items += rows
    order = {"path": lambda i: i["path"], "username": lambda i: (i["username"], i["path"]),
             "created": lambda i: (i["sort_time"], i["path"]), "updated": lambda i: (i["sort_time"], i["path"])}
    items.sort(key=order[args["sortkey"]], reverse=args["sortdir"] == "DESC")
    return {"count": total, "items": items[args["offset"]:args["offset"] + args["limit"]]}


def _render(family: AccountFamily, account: dict, checkout: dict, secrets: list[dict]) -> dict:
    return {
        **family.view(account),
        "id": checkout["id"],
        "expires": checkout["expires"],
        "created": checkout["created"],
        "explicit_checkout": checkout["explicit_checkout"],
        "secrets": secrets,
        "managed_account_id": family.account_id(account),
        "user_id": checkout["user_id"],
    }


def _passwords(family: AccountFamily, deps: Deps, account: dict) -> list[dict]:
    """The current password and its history, newest first, and a rotation's pending one only
    once the target accepts it."""
    return deps.vault.live_versions(family.path(account), also=deps.pending(family, account))


def check_out(family: AccountFamily, deps: Deps, principal: Principal, path: str) -> dict:
    """A live checkout of the account at `path` for the caller: its own one if it has one, else a new one."""
    key = family.parse(path)
    account = family.find_account(deps.db, key)
    if account is None or not family.usable(account) or not _may_use(principal, account):
        deps.audit("checkout.create", path, audit.NOT_FOUND)
        raise errors.NotFound("account secret not found")
    # The Vault first: if it cannot be read, the client gets 503 and no checkout is recorded.
    secrets = _passwords(family, deps, account)
    if not secrets:
        deps.audit("checkout.create", path, audit.FAILED, details={"reason": "no password in the Vault"})
        raise errors.ApiError(f"the Vault has no password for this account: {family.no_password_hint}",
                              code="CONFIGURATION_ERROR", property="path").with_status(409)
    account_id = family.account_id(account)
    try:
        with deps.db.transaction() as cur:
            limits = family.lock(cur, account_id)  # orders this with other checkouts and releases of the account
            if limits is None:  # removed (or no longer usable) meanwhile
                raise errors.NotFound("account secret not found")
            event = deps.event("checkout.create", path)
            checkout = deps.store.claim(cur, family.kind, uuid.uuid4(), account_id, principal.sub,
                                        limit=limits["max_concurrent_checkouts"],
                                        duration_seconds=limits["max_checkout_duration"],
                                        holder_role_ids=sorted(principal.all_role_ids()),
                                        holder_admin=_is_admin(principal), audit_event=event)
            if checkout is None:
                raise errors.Conflict("the account is checked out by the most users its policy allows "
                                      f"({limits['max_concurrent_checkouts']})", property="path")
            existing = checkout.pop("existing")
            # (written by the claim's statement, with these details)
            event["details"] = {"checkout_id": str(checkout["id"]), "existing": existing}
            deps.log_event(event)
    except errors.Conflict:
        deps.audit("checkout.create", path, audit.DENIED, details={"reason": "concurrent checkout limit"})
        metrics.CHECKOUTS.labels("create", "conflict").inc()
        raise
    metrics.CHECKOUTS.labels("create", "existing" if existing else "success").inc()
    return {"count": 1, "items": [_render(family, account, checkout, secrets)]}


def _with_secrets(family: AccountFamily, deps: Deps, found: dict) -> dict:
    """The checkout with the account's live passwords, read from the Vault now (and audited as read)."""
    account = found["account"]
    secrets = _passwords(family, deps, account)
    path = family.path(account)
    if not secrets:
        deps.audit("checkout.read", path, audit.FAILED, details={"checkout_id": str(found["id"]),
                                                                  "reason": "no password in the Vault"})
        raise errors.ApiError("the Vault has no password for this account", code="CONFIGURATION_ERROR").with_status(409)
    deps.audit("checkout.read", path, details={"checkout_id": str(found["id"]), "holder": found["user_id"]})
    return _render(family, account, found, secrets)


def _holder_may_still_use(family: AccountFamily, principal: Principal, found: dict) -> bool:
    """Whether the checkout's holder may still use its account: by the caller's token when the
    holder calls, else by the roles the holder checked out with, against the account's roles now;
    and whether the account may still be checked out at all."""
    account = found["account"]
    if not family.usable(account):
        return False
    if found["user_id"] == principal.sub:
        return _may_use(principal, account)
    return found["holder_admin"] or not set(found["holder_role_ids"]).isdisjoint(account["access_role_ids"])


def _end(family: AccountFamily, deps: Deps, found: dict, *, action: str, details: dict | None = None) -> bool:
    """End the checkout (release or revocation); False if it had already ended. The last live one
    queues a release rotation when the policy says rotate_on_release."""
    with deps.db.transaction() as cur:
        # The account lock orders this with concurrent checkouts of the same account.
        family.lock(cur, found["account_id"])
        ended = _end_locked(family, deps, cur, found, action=action, details=details)
    if ended:
        metrics.CHECKOUTS.labels(action.split(".")[-1], "success").inc()
    return ended


def _end_locked(family: AccountFamily, deps: Deps, cur, found: dict, *, action: str, details: dict | None = None) -> bool:
    """_end's work in the caller's transaction, which holds the account's lock."""
    event = deps.event(action, family.path(found["account"]),
                       details={"checkout_id": str(found["id"]), "holder": found["user_id"], **(details or {})})
    if not deps.store.end_checkout(cur, found["id"], audit_event=event):  # (it writes the event too)
        return False
    family.queue_release(cur, [found["account_id"]])
    deps.log_event(event)
    return True


def _revoke(family: AccountFamily, deps: Deps, found: dict) -> None:
    """End a checkout whose holder lost access, as a release would (rotate_on_release applies)."""
    _end(family, deps, found, action="checkout.revoke", details={"reason": family.revoke_reason})


def revoke_after_role_loss(families, deps: Deps, user_id: str, lost_role_id: str, held_role_ids, reason: str) -> int:
    """End the user's live checkouts that needed `lost_role_id`: of accounts that role reaches and
    none of `held_role_ids` (what the user still holds) does, unless held as admin. Audited
    `checkout.revoke`, rotate_on_release applies, as any revocation; the number ended."""
    held = frozenset(held_role_ids)
    ended = 0
    _total, live = deps.store.live_of(deps.db, user_id, sortdir="ASC", limit=ROLE_LOSS_BATCH)
    for family, found in _with_accounts(families, deps, live):
        reach = found["account"]["access_role_ids"]
        if found["holder_admin"] or lost_role_id not in reach or not held.isdisjoint(reach):
            continue
        ended += _end(family, deps, found, action="checkout.revoke", details={"reason": reason})
    return ended


def _with_accounts(families: tuple[AccountFamily, ...], deps: Deps, checkouts: list[dict]) -> list[tuple]:
    """(family, the checkout with its account's row under "account") of each checkout whose account
    still exists, in their order; each family's accounts read at once."""
    by_kind = {family.kind: family for family in families}
    accounts = {kind: by_kind[kind].accounts_by_id(deps.db, [c["account_id"] for c in checkouts
                                                                if c["account_kind"] == kind])
                for kind in {c["account_kind"] for c in checkouts}}
    return [(by_kind[c["account_kind"]], {**c, "account": accounts[c["account_kind"]][c["account_id"]]})
            for c in checkouts if c["account_id"] in accounts[c["account_kind"]]]


def _find_checkout(families, db_or_cur, checkout_id: uuid.UUID, *, lock: bool = False) -> tuple:
    """(its family, the live checkout with its account) or (None, None): each family's checkouts are
    found with their account in one statement (with `lock`, its account's row locked)."""
    return next(((family, found) for family in families
                 if (found := family.find_checkout(db_or_cur, checkout_id, lock=lock)) is not None), (None, None))


def _visible(principal: Principal, found: dict | None) -> bool:
    """Whether the caller may see the checkout: its holder and admins only."""
    return found is not None and (found["user_id"] == principal.sub or _is_admin(principal))


def _visible_checkout(families, deps: Deps, principal: Principal, checkout_id: uuid.UUID,
                      action: str) -> tuple[AccountFamily, dict]:
    """A live checkout the caller may see and its holder still use, with its family; else 404."""
    family, found = _find_checkout(families, deps.db, checkout_id)
    if not _visible(principal, found):
        deps.audit(action, f"checkouts/{checkout_id}", audit.NOT_FOUND)
        raise errors.NotFound("checkout not found")
    if not _holder_may_still_use(family, principal, found):
        _revoke(family, deps, found)
        raise errors.NotFound("checkout not found")
    return family, found


def get_checkout(families, deps: Deps, principal: Principal, checkout_id: uuid.UUID) -> dict:
    family, found = _visible_checkout(families, deps, principal, checkout_id, "checkout.read")
    return _with_secrets(family, deps, found)


def list_checkouts(families, deps: Deps, principal: Principal, args: dict) -> dict:
    """The caller's live checkouts of every family, by creation, one page."""
    total, live = deps.store.live_of(deps.db, principal.sub, sortdir=args["sortdir"],
                                     limit=args["offset"] + args["limit"])
    items = []
    for family, found in _with_accounts(families, deps, live[args["offset"]:]):
        if not _holder_may_still_use(family, principal, found):
            _revoke(family, deps, found)
            total -= 1
            continue
        try:
            items.append(_with_secrets(family, deps, found))
        except errors.ApiError as exc:
            if exc.code != "CONFIGURATION_ERROR":
                raise
            total -= 1  # its password is gone from the Vault: never listed without one, the others still are
    return {"count": total, "items": items}


def release(families, deps: Deps, principal: Principal, checkout_id: uuid.UUID) -> None:
    """End the checkout; if it was the account's last live one and the policy says so, queue a rotation.

    One transaction: the checkout is found with its account's row locked (as _end's lock: it
    orders this with the account's other checkouts and releases), then ended. What a read would
    refuse is refused alike: not visible, 404 (audited); a holder who may no longer use the
    account, 404 and the checkout revoked."""
    action = "checkout.release"
    with deps.db.transaction() as cur:
        family, found = _find_checkout(families, cur, checkout_id, lock=True)
        visible = _visible(principal, found)
        if visible and not _holder_may_still_use(family, principal, found):
            action = "checkout.revoke"
            ended = _end_locked(family, deps, cur, found, action=action, details={"reason": family.revoke_reason})
        else:
            ended = visible and _end_locked(family, deps, cur, found, action=action)
    if not visible:
        deps.audit(action, f"checkouts/{checkout_id}", audit.NOT_FOUND)
    if ended:
        metrics.CHECKOUTS.labels(action.split(".")[-1], "success").inc()
    if not ended or action != "checkout.release":
        raise errors.NotFound("checkout not found")


def expire(family: AccountFamily, deps: Deps) -> int:
    """The worker's part: mark ended the family's checkouts past their time; queue release
    rotations where that ended an account's last one; audit each as the worker's doing."""
    with deps.db.transaction() as cur:
        ended = deps.store.end_expired(cur, family.kind)
        if not ended:
            return 0
        family.queue_release(cur, sorted({row["account_id"] for row in ended}))
        accounts = family.accounts_by_id(deps.db, [row["account_id"] for row in ended])
        for row in ended:
            deps.audit("checkout.expire", family.path(accounts[row["account_id"]]), cur=cur, principal=WORKER,
                       details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    metrics.CHECKOUTS.labels("expire", "success").inc(len(ended))
    return len(ended)
