"""What the checkout and rotation rules need of a kind of account (an account family).

An *account* is the family's row of one account as checkouts see it (with `access_role_ids`,
who may use it; a family may read its rotation state with it, as `rotation_step` and
`rotation_pending`, so a checkout needs no statement more for it); a *subject* is what a rotation needs of it (policy fields, `protocol`,
`checked_out`, `retry_interval`, `number_of_retries`, `max_versions`, `verify_after_rotation`).
"""
from __future__ import annotations

import uuid
from typing import Any, Protocol, runtime_checkable

from secrets_manager_service.accounts.state_store import RotationStates


@runtime_checkable
class AccountFamily(Protocol):
    kind: str  # its `account_kind` in the shared tables (accounts.kinds)
    no_password_hint: str  # what to do when the Vault has no password for one of its accounts
    revoke_reason: str  # audited when a checkout ends because its holder or account may no longer be used
    release_reason: str  # the queue reason of a rotation after the last checkout ended
    within: str  # the /secrets search field that narrows a listing to this family ("host_id", "target_domain_id")
    states: RotationStates  # its rows of sm_rotation_states

    # --- checkouts ---------------------------------------------------------------------------
    def claims(self, path: str) -> bool:
        """Whether a checkout path names an account of this family."""

    def parse(self, path: str) -> Any:
        """The account key `path` names; ApiError 400 VALUE_INCORRECT_FORMAT if it cannot name one."""

    def find_account(self, db, key) -> dict | None:
        """The account `key` names, or None."""

    def find_checkout(self, db, checkout_id, *, lock: bool = False) -> dict | None:
        """The live checkout with this id if it is of one of its accounts, its account under "account"; else None.
        With `lock` (`db` a transaction's cursor), the account is locked as by `lock`."""

    def accounts_by_id(self, db, account_ids: list) -> dict[uuid.UUID, dict]:
        """The accounts with these ids that still exist, by id."""

    def usable(self, account: dict) -> bool:
        """Whether it may be checked out at all, whoever asks."""

    def account_id(self, account: dict) -> uuid.UUID:
        """The id its checkouts, queued rotation and rotation state refer to."""

    def path(self, account: dict) -> str:
        """Its checkout path, also the Vault path of its password and the audit trail's target."""

    def view(self, account: dict) -> dict:
        """Its account-secret fields as /secrets shows them."""

    def list_accounts(self, db, *, role_ids: list[str] | None, keywords: list[str], username: str | None, within,
                      sortkey: str, sortdir: str, offset: int, limit: int) -> tuple[int, list[dict]]:
        """(total, a page) of the accounts `role_ids` (None: anyone) may check out, in `within`: rows of `path`,
        `username`, `sort_time` (sorted by created or updated: that time) and `json`, the item as /secrets lists it
        (its `view` with its `created` and `updated`, encoded: listing.ItemJson)."""

    def lock(self, cur, account_id: uuid.UUID) -> dict | None:
        """Its policy's checkout limits, its row locked till the transaction ends; None if gone or unusable."""

    def queue_release(self, cur, account_ids: list) -> None:
        """Queue a release rotation of each account whose policy asks for one and no live checkout holds."""

    # --- rotations ---------------------------------------------------------------------------
    def claim_due(self, cur) -> dict | None:
        """One due queued rotation (`account_id, reason, attempts`), locked until the transaction ends."""

    def subject(self, cur, account_id: uuid.UUID) -> dict | None:
        """What a rotation of the account needs, or None once it is gone."""

    def subject_path(self, subject: dict) -> str:
        """The Vault path of the subject's password (as `path` of its account)."""

    def enqueue_scheduled(self, cur) -> int:
        """Queue a rotation of each account whose password is older than its policy's interval; how many."""

    def record_success(self, cur, account_id, *, subject: dict, interrupted: str | None, interrupted_at,
                       reason: str) -> None:
        """Record on the account that its rotation ended with its password current (`interrupted`: what went wrong)."""

    def record_failure(self, cur, account_id, *, subject: dict, details: str, retry_in: int | None,
                       reason: str) -> None:
        """Keep the (password-free) error on the account, dated now; given up when `retry_in` is None."""

    def driver(self, subject: dict) -> Any:
        """The driver that changes and checks the password on the account's target."""

    def credentials(self, subject: dict) -> dict[str, str]:
        """The passwords the driver logs in with besides the account's own, by where they apply ({}: none)."""

    def target(self, subject: dict, old_password: str | None, credentials: dict[str, str] | None) -> Any:
        """What the driver takes (without credentials it can only verify, as the account itself)."""

    def adopt_endpoint(self, db, subject: dict, credentials: dict[str, str]) -> dict:
        """For an account with no password yet: bind the coming one to its endpoint(s) now; the subject then."""
