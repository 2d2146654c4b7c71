"""Host accounts (`hosts/{host_id}/{account}`, HOST_SECRET) as an account family.

Who may use one: holders of its host's access roles. Its password is changed on its host by
the driver of the host's protocol, logged in as the account itself or, where the host says
so, as its main account.
"""
from __future__ import annotations

from datetime import datetime, timezone

from common import errors
from secrets_manager_service import account_passwords, drivers, names
from secrets_manager_service.account_secrets import store
from secrets_manager_service.account_secrets.schemas import AccountSecret
from secrets_manager_service.accounts import queue_store
from secrets_manager_service.accounts.kinds import HOST
from secrets_manager_service.accounts.state_store import RotationStates
from secrets_manager_service.drivers import binding
from secrets_manager_service.drivers.registry import driver_for
from secrets_manager_service.listing import ItemJson, quoted
from secrets_manager_service.rotation import store as rotation_store

HOST_SECRET = "HOST_SECRET"
MAIN = "main"  # the credentials' key of the main account's password


class HostAccounts:
    kind = HOST
    no_password_hint = "store one with set-password"
    revoke_reason = "the holder no longer may use the account"
    release_reason = rotation_store.RELEASE
    within = "host_id"
    states = RotationStates(HOST)

    # --- checkouts ---------------------------------------------------------------------------
    def claims(self, path: str) -> bool:
        return True  # the fallback: what no other family claims is refused as a bad host path

    def parse(self, path: str):
        parsed = names.parse_secret_path(path)
        if parsed is None:
            raise errors.ApiError("path must be hosts/{host_id}/{account}", code="VALUE_INCORRECT_FORMAT",
                                  property="path").with_status(400)
        return parsed

    def find_account(self, db, key) -> dict | None:
        return store.find_account(db, *key)

    def find_checkout(self, db, checkout_id, *, lock: bool = False) -> dict | None:
        return store.find_checkout(db, checkout_id, lock=lock)

    def accounts_by_id(self, db, account_ids: list) -> dict:
        return {row["account_id"]: row for row in store.find_accounts(db, account_ids)}

    def usable(self, account: dict) -> bool:
        return True

    def account_id(self, account: dict):
        return account["account_id"]

    def path(self, account: dict) -> str:
        return names.secret_path(account["host_id"], account["account"])

    def view(self, account: dict) -> dict:
        # HostSecrets have one address and no external or instance ids of their own.
        return {
            "path": self.path(account),
            "type": HOST_SECRET,
            "username": account["account"],
            "email": "",
            "full_name": "",
            "host": {"id": account["host_id"], "addresses": [account["address"]], "common_name": account["address"],
                     "external_id": "", "instance_id": ""},
        }

    def list_accounts(self, db, *, role_ids, keywords, username, within, sortkey, sortdir, offset, limit):
        total, rows = store.list_accounts(db, role_ids=role_ids, host_id=within, username=username,
                                          keywords=list(keywords), sortkey=sortkey, sortdir=sortdir, offset=offset,
                                          limit=limit)
        listed, item = [], _LISTED.format
        for row in rows:  # (its columns are NOT NULL: quoted as they are)
            path = self.path(row)
            listed.append({"path": path, "username": row["account"], "sort_time": row.get("sort_time"),
                           "json": item(quoted(path), quoted(row["account"]), quoted(row["host_id"]),
                                        quoted(row["address"]), quoted(row["created"]), quoted(row["updated"]))})
        return total, listed

    def lock(self, cur, account_id) -> dict | None:
        return store.lock_account(cur, account_id)

    def queue_release(self, cur, account_ids: list) -> None:
        queue_store.enqueue_selected(cur, self.kind, rotation_store.released_unused(account_ids), self.release_reason)

    # --- rotations ---------------------------------------------------------------------------
    def claim_due(self, cur) -> dict | None:
        return rotation_store.claim_due(cur)

    def subject(self, cur, account_id) -> dict | None:
        return rotation_store.rotation_subject(cur, account_id)

    def subject_path(self, subject: dict) -> str:
        return self.path(subject)

    def enqueue_scheduled(self, cur) -> int:
        return queue_store.enqueue_all(cur, self.kind, rotation_store.due_by_schedule(cur), rotation_store.SCHEDULE)

    def record_success(self, cur, account_id, *, subject, interrupted, interrupted_at, reason) -> None:
        rotation_store.mark_rotated(cur, account_id, interrupted=interrupted, interrupted_at=interrupted_at)

    def record_failure(self, cur, account_id, *, subject, details, retry_in, reason) -> None:
        rotation_store.mark_failed(cur, account_id, details=details, retry_in=retry_in)

    def driver(self, subject: dict):
        return driver_for(subject["protocol"])

    def credentials(self, subject: dict) -> dict[str, str]:
        if subject["use_main_account"] and subject["main_account"]:
            password = account_passwords.current(names.secret_path(subject["host_id"], subject["main_account"]))
            if password is not None:
                return {MAIN: password}
        return {}

    def target(self, subject: dict, old_password, credentials) -> drivers.Target:
        # The account's passwords and, when it is used, the main account's go to one endpoint: the
        # target is bound only where both bindings agree.
        bound_to = subject["bound_endpoint"]
        if subject["use_main_account"] and subject["main_bound_endpoint"] != bound_to:
            bound_to = None
        return drivers.Target(
            address=subject["address"], port=subject["port"], account=subject["account"], old_password=old_password,
            main_account=subject["main_account"], main_password=(credentials or {}).get(MAIN),
            use_main_account=subject["use_main_account"], script=subject["script"],
            operating_system=subject["operating_system"],
            certificate_validation_options=subject["certificate_validation_options"],
            bound_to=bound_to,
        )

    def adopt_endpoint(self, db, subject: dict, credentials) -> dict:
        if subject["bound_endpoint"] is not None:
            return subject
        fingerprint = binding.host_row_fingerprint(subject)
        with db.transaction() as cur:
            rotation_store.bind_account(cur, subject["account_id"], fingerprint)
        return {**subject, "bound_endpoint": fingerprint}


def _listed_item() -> ItemJson:
    """A host account as /secrets lists it: its view, with its times (slots in list_accounts' order)."""
    slots = {"path": "\x01path", "username": "\x01username", "host_id": "\x01host", "address": "\x01address",
             "created": datetime(1001, 1, 1, tzinfo=timezone.utc), "updated": datetime(1001, 1, 2, tzinfo=timezone.utc)}
    view = HostAccounts().view({"host_id": slots["host_id"], "account": slots["username"], "address": slots["address"]})
    return ItemJson(AccountSecret(), {**view, "path": slots["path"], "created": slots["created"],
                                      "updated": slots["updated"]}, slots)


_LISTED = _listed_item()
