"""The kinds of account a user checks out, and what differs between them.

account_secrets.service holds the checkout rules once (the policy's limits and their 409, a
second checkout by the same user returning its live one, the access re-check on every read and
release, revocation, rotate_on_release, the 409 for a missing password, rendering, auditing); a
Kind tells it how a kind's paths read, where its accounts, checkouts and passwords are and how
a release queues a rotation. Host accounts are HOSTS (here); managed directory accounts are
target_domains.checkouts.DIRECTORY. Each kind's SQL stays in its own store.

An account row carries `access_role_ids` (who may use it); a live checkout ("found") is its
checkout row (`id, user_id, explicit_checkout, created, expires, holder_role_ids,
holder_admin`) with its account's row under "account".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from common import errors
from common.web import database
from secrets_manager_service import account_passwords, names
from secrets_manager_service.account_secrets import store
from secrets_manager_service.rotation import service as rotation
from secrets_manager_service.rotation import store as rotation_store

HOST_SECRET = "HOST_SECRET"


@dataclass(frozen=True)
class Kind:
    name: str
    claims: Callable  # (path) -> whether a checkout path names an account of this kind
    parse: Callable  # (path) -> the account's key; 400 VALUE_INCORRECT_FORMAT if it cannot name one
    find_account: Callable  # (db, key) -> account | None
    usable: Callable  # (account) -> whether it may be checked out at all, whoever asks
    account_id: Callable  # (account) -> the id its checkouts refer to
    path: Callable  # (account) -> its checkout path (the audit trail's target)
    view: Callable  # (account) -> its account-secret fields
    passwords: Callable  # (account) -> the passwords a checkout hands out, read from the Vault now
    no_password_hint: str  # what to do when the Vault has none
    lock: Callable  # (cur, account_id) -> its policy's checkout limits, the account locked | None when gone
    count_live: Callable  # (cur, account_id, limits) -> its live checkouts
    live_checkout_of: Callable  # (cur, account_id, user_id) -> the user's live checkout | None
    insert_checkout: Callable  # (cur, checkout_id, account_id, user_id, seconds, *, holder_role_ids, holder_admin)
    find_live: Callable  # (checkout_id) -> found | None
    live_of: Callable  # (user_id, *, sortdir, limit) -> (total, the first `limit` found by creation)
    end_checkout: Callable  # (cur, checkout_id) -> False if it had already ended
    queue_release: Callable  # (cur, account_id): a release rotation if the policy asks and none is live
    revoke_reason: str  # audited when a checkout ends because its holder or account may no longer be used


def _host_parse(path: str):
    parsed = names.parse_secret_path(path)
    if parsed is None:
        raise errors.ApiError("path must be hosts/{host_id}/{account}", code="VALUE_INCORRECT_FORMAT",
                              property="path").with_status(400)
    return parsed


def _host_view(row: dict) -> dict:
    # HostSecrets have one address and no external or instance ids of their own.
    return {
        "path": names.secret_path(row["host_id"], row["account"]),
        "type": HOST_SECRET,
        "username": row["account"],
        "email": "",
        "full_name": "",
        "host": {"id": row["host_id"], "addresses": [row["address"]], "common_name": row["address"],
                 "external_id": "", "instance_id": ""},
    }


def _host_passwords(account: dict) -> list[dict]:
    """The current password and its history, newest first, and a rotation's pending one only
    once the target accepts it."""
    pending = rotation.accepted_pending(account["account_id"])
    return account_passwords.live_versions(names.secret_path(account["host_id"], account["account"]), also=pending)


def _host_find_live(checkout_id) -> dict | None:
    row = store.find_live_checkout(database(), checkout_id)  # joined with its account's columns
    return {**row, "account": row} if row else None


def _host_live_of(user_id: str, *, sortdir: str, limit: int) -> tuple[int, list[dict]]:
    total, rows = store.list_live_checkouts(database(), user_id=user_id, sortdir=sortdir, offset=0, limit=limit)
    return total, [{**row, "account": row} for row in rows]


HOSTS = Kind(
    name="host",
    claims=lambda path: True,  # the fallback: what no other kind claims is refused as a bad host path
    parse=_host_parse,
    find_account=lambda db, key: store.find_account(db, *key),
    usable=lambda account: True,
    account_id=lambda account: account["account_id"],
    path=lambda account: names.secret_path(account["host_id"], account["account"]),
    view=_host_view,
    passwords=_host_passwords,
    no_password_hint="store one with set-password",
    lock=store.lock_account,
    count_live=lambda cur, account_id, limits: store.count_live(cur, account_id),
    live_checkout_of=store.live_checkout_of,
    insert_checkout=store.insert_checkout,
    find_live=_host_find_live,
    live_of=_host_live_of,
    end_checkout=store.end_checkout,
    queue_release=rotation_store.enqueue_if_unused,
    revoke_reason="the holder no longer may use the account",
)
