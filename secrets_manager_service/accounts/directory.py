"""Managed directory accounts (`targetdomains/{domain_id}/{managed_id}`, TARGET_DOMAIN_SECRET) as
an account family.

Who may use one: holders of its `access_roles`. It is listed and checked out only while it is
`enabled`, `explicit_checkout`, ACTIVE or FAILED, in an enabled domain; its release rotations
also need `rotation_enabled`. Its password is changed by the LDAP driver (Password Modify or
unicodePwd) through its domain's endpoints in `rotation_priority` order, bound as each
endpoint's `ldap_bind_dn` with the bind password stored for it (bind_passwords), and only
through the endpoints it is bound to (`bound_endpoints`, drivers.binding): those of the domain
when its password was stored, or, for an account without one, those whose bind password is
bound when its first password is generated. Every rotation's end is kept in its rotation
history (`sm_td_rotation_history`) with the Vault's current version.
"""
from __future__ import annotations

import re
import uuid

from datetime import datetime, timezone

from common import errors
from secrets_manager_service import account_passwords, names
from secrets_manager_service.account_secrets.schemas import AccountSecret
from secrets_manager_service.accounts import queue_store
from secrets_manager_service.accounts.kinds import DIRECTORY
from secrets_manager_service.accounts.state_store import RotationStates
from secrets_manager_service.drivers import ldap as ldap_driver
from secrets_manager_service.target_domains import (
    bind_passwords,
    checkout_store,
    rotation_store,
)
from secrets_manager_service.target_domains.endpoints import (
    endpoint_of,
    endpoints_in_order,
)
from secrets_manager_service.listing import ItemJson, quoted
from secrets_manager_service.target_domains.managed import store as managed_store

TYPE = "TARGET_DOMAIN_SECRET"
PREFIX = "targetdomains/"
_PATH = re.compile(r"targetdomains/([0-9a-fA-F-]{36})/([0-9a-fA-F-]{36})")
CHECKOUT_RELEASE, SCHEDULED = "CHECKOUT_RELEASE", "SCHEDULED"


class DirectoryAccounts:
    kind = DIRECTORY
    no_password_hint = "rotate it or set its password"
    revoke_reason = "the account may no longer be used"
    release_reason = CHECKOUT_RELEASE
    within = "target_domain_id"
    states = RotationStates(DIRECTORY)

    # --- checkouts ---------------------------------------------------------------------------
    def claims(self, path: str) -> bool:
        return path.startswith(PREFIX)

    def parse(self, path: str) -> tuple[uuid.UUID, uuid.UUID]:
        match = _PATH.fullmatch(path)
        try:
            if match:
                return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))
        except ValueError:
            pass
        raise errors.ApiError("path must be targetdomains/{target_domain_id}/{managed_account_id}",
                              code="VALUE_INCORRECT_FORMAT", property="path").with_status(400)

    def find_account(self, db, key) -> dict | None:
        return managed_store.find_managed(db, *key)

    def find_checkout(self, db, checkout_id, *, lock: bool = False) -> dict | None:
        return managed_store.find_checkout(db, checkout_id, lock=lock)

    def accounts_by_id(self, db, account_ids: list) -> dict:
        found = (managed_store.find_by_id(db, account_id) for account_id in set(account_ids))
        return {row["id"]: row for row in found if row is not None}

    def usable(self, account: dict) -> bool:
        return (account["enabled"] and account["explicit_checkout"] and account["api_state"] in ("ACTIVE", "FAILED")
                and account["domain_enabled"])

    def account_id(self, account: dict):
        return account["id"]

    def path(self, account: dict) -> str:
        return names.directory_secret_path(account["domain_id"], account["id"])

    def view(self, account: dict) -> dict:
        """(no `host`: it has a `target_domain`)"""
        return {"path": self.path(account), "type": TYPE,
                "username": account["username"], "email": account["email"], "full_name": account["full_name"],
                "target_domain": {"id": account["domain_id"], "name": account["domain_name"], "deleted": False}}

    def list_accounts(self, db, *, role_ids, keywords, username, within, sortkey, sortdir, offset, limit):
        total, rows = checkout_store.list_usable(db, role_ids=role_ids, keywords=list(keywords), username=username,
                                                 domain_id=within, sortkey=sortkey, sortdir=sortdir, offset=offset,
                                                 limit=limit)
        listed, item = [], _LISTED.format
        for row in rows:  # (its columns are NOT NULL: quoted as they are)
            path = names.directory_secret_path(row["domain_id"], row["managed_id"])
            listed.append({"path": path, "username": row["username"], "sort_time": row.get("sort_time"),
                           "json": item(quoted(path), quoted(row["username"]), quoted(row["email"]),
                                        quoted(row["full_name"]), quoted(row["domain_id"]), quoted(row["domain_name"]),
                                        quoted(row["created"]), quoted(row["updated"]))})
        return total, listed

    def lock(self, cur, account_id) -> dict | None:
        locked = managed_store.find_by_id(cur, account_id, lock=True)
        return locked if locked is not None and self.usable(locked) else None

    def queue_release(self, cur, account_ids: list) -> None:
        queue_store.enqueue_selected(cur, self.kind, checkout_store.released_unused(account_ids), CHECKOUT_RELEASE)

    # --- rotations ---------------------------------------------------------------------------
    def claim_due(self, cur) -> dict | None:
        return rotation_store.claim_due(cur)

    def subject(self, cur, account_id) -> dict | None:
        found = rotation_store.subject(cur, account_id)
        if found is not None:
            ordered = endpoints_in_order({"endpoints": found["endpoints"]}, "rotation_priority")
            found["ordered_endpoints"] = ordered
            found["protocol"] = ordered[0]["type"] if ordered else "LDAP"  # the metrics' label
        return found

    def subject_path(self, subject: dict) -> str:
        return names.directory_secret_path(subject["domain_id"], subject["account_id"])

    def enqueue_scheduled(self, cur) -> int:
        return queue_store.enqueue_all(cur, self.kind, rotation_store.due_by_schedule(cur), SCHEDULED)

    def record_success(self, cur, account_id, *, subject, interrupted, interrupted_at, reason) -> None:
        rotation_store.mark_rotated(cur, account_id, interrupted=interrupted, interrupted_at=interrupted_at)
        managed_store.add_history(cur, account_id, version=self._current_version(subject), trigger=reason,
                                  status="SUCCESS")

    def record_failure(self, cur, account_id, *, subject, details, retry_in, reason) -> None:
        """FAILED once the retries ran out."""
        rotation_store.mark_failed(cur, account_id, details=details, retry_in=retry_in)
        managed_store.add_history(cur, account_id, version=self._current_version(subject), trigger=reason,
                                  status="FAILED")

    def _current_version(self, subject: dict) -> int:
        """The Vault's current version after the rotation (0 if none, or if the Vault cannot say now)."""
        try:
            return account_passwords.history(self.subject_path(subject)).current or 0
        except errors.ApiError:
            return 0

    def driver(self, subject: dict):
        return ldap_driver.DirectoryDriver()

    def credentials(self, subject: dict) -> dict[str, str]:
        """The endpoints' bind passwords (what a host's main account is to its accounts)."""
        return bind_passwords.read(subject["domain_id"], subject["endpoints"])

    def target(self, subject: dict, old_password, credentials) -> ldap_driver.DirectoryTarget:
        """The account's DN, its domain's endpoints in rotation order and the account's binding."""
        bound = subject["bound_endpoints"]
        return ldap_driver.DirectoryTarget(
            dn=subject["dn"], endpoints=tuple(endpoint_of(e, credentials or {}) for e in subject["ordered_endpoints"]),
            bound_to=frozenset(bound) if bound is not None else None)

    def adopt_endpoint(self, db, subject: dict, credentials) -> dict:
        """Bound to the endpoints whose bind password is bound now (no other password of the
        account exists to protect)."""
        if subject["bound_endpoints"] is not None:
            return subject
        usable = [key for key in map(bind_passwords.key, subject["ordered_endpoints"]) if key in credentials]
        if usable:  # (none: this try fails unbound, and a later one, with endpoints fixed, binds then)
            with db.transaction() as cur:
                managed_store.bind_to_endpoints(cur, [subject["account_id"]], usable, only_if_unbound=True)
        return {**subject, "bound_endpoints": usable}


def _listed_item() -> ItemJson:
    """A managed directory account as /secrets lists it: its view, with its times (slots in list_accounts' order)."""
    slots = {"path": "\x01path", "username": "\x01username", "email": "\x01email", "full_name": "\x01full_name",
             "domain_id": "\x01domain", "domain_name": "\x01domain_name",
             "created": datetime(1001, 1, 1, tzinfo=timezone.utc), "updated": datetime(1001, 1, 2, tzinfo=timezone.utc)}
    view = DirectoryAccounts().view({"domain_id": slots["domain_id"], "id": "", "username": slots["username"],
                                     "email": slots["email"], "full_name": slots["full_name"],
                                     "domain_name": slots["domain_name"]})
    return ItemJson(AccountSecret(), {**view, "path": slots["path"], "created": slots["created"],
                                      "updated": slots["updated"]}, slots)


_LISTED = _listed_item()
