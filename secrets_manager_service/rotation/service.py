"""Rotating one account's password, and the worker's periodic pass.

A rotation reads the current password from the Vault, generates a new one,
has the host's driver set it on the target, and only after the target took it
writes it to the Vault as the newest version (then verifies it, if the policy
says so). Until that write, the old password stays the Vault's newest
version. A failure is kept on the account as `last_error` (never a password)
and retried per the policy's `number_of_retries` and `retry_interval`.
Expiries and rotations are audited as the worker's doing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from common import audit, errors, metrics
from common.web import database
from secrets_manager_service import account_passwords, drivers, names, passwords
from secrets_manager_service.rotation import store

log = logging.getLogger(__name__)

# After the target took a new password, storing it in the Vault is retried this long
# beyond the client's own retries: a password only the target knows would lock everyone out.
STORE_RETRY_SECONDS = (1, 2, 4, 8)
MAX_ROTATIONS_PER_PASS = 100
WORKER = "secrets-manager-worker"  # the audit trail's principal for what the worker does


class _Failed(Exception):
    """A rotation that did not happen: `error` and `details` are safe to store and show."""

    def __init__(self, error: str, details: str = ""):
        super().__init__(error)
        self.error, self.details = error, details


@dataclass
class PassResult:
    expired: int = 0
    scheduled: int = 0
    rotated: int = 0
    failed: int = 0
    skipped: int = 0


def run_pass() -> PassResult:
    """One pass of the worker: expire checkouts, queue scheduled rotations, run the due ones."""
    db = database()
    result = PassResult(expired=expire_checkouts(), scheduled=store.enqueue_scheduled(db))
    for _ in range(MAX_ROTATIONS_PER_PASS):
        outcome = run_one_due()
        if outcome is None:
            break
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def expire_checkouts() -> int:
    with database().transaction() as cur:
        ended = store.expire_checkouts(cur)
        for row in ended:
            audit.record("checkout.expire", names.secret_path(row["host_id"], row["account"]), cur=cur,
                         principal=WORKER, details={"checkout_id": str(row["id"]), "holder": row["user_id"]})
    if ended:
        metrics.CHECKOUTS.labels("expire", "success").inc(len(ended))
    return len(ended)


def run_one_due() -> str | None:
    """Claim and run one due rotation: "rotated", "failed" or "skipped"; None when none is due."""
    with database().transaction() as cur:
        job = store.claim_due(cur)
        if job is None:
            return None
        subject = store.rotation_subject(cur, job["account_id"])
        if subject is None:  # a guard only: deleting the account cascades to the job, which waits for our lock
            return "skipped"
        if job["reason"] == store.RELEASE and subject["checked_out"]:
            # Someone checked it out again since the release; the next release queues it anew.
            store.drop(cur, job["account_id"])
            return "skipped"
        try:
            _rotate(subject)
        except _Failed as failure:
            retry_in = subject["retry_interval"] if job["attempts"] < subject["number_of_retries"] else None
            log.warning("rotation failed", extra={"account_id": str(subject["account_id"]), "error": failure.error,
                                                  "will_retry": retry_in is not None})
            store.record_failure(cur, job["account_id"], error=failure.error, details=failure.details,
                                 retry_in=retry_in)
            _audit(cur, subject, audit.FAILED, reason=job["reason"], error=failure.error, retry=retry_in is not None)
            metrics.ROTATIONS.labels(subject["protocol"], "failed").inc()
            return "failed"
        store.record_success(cur, job["account_id"])
        _audit(cur, subject, audit.SUCCESS, reason=job["reason"])
        metrics.ROTATIONS.labels(subject["protocol"], "success").inc()
        log.info("rotated", extra={"account_id": str(subject["account_id"]), "reason": job["reason"]})
        return "rotated"


def _audit(cur, subject: dict, outcome: str, **details) -> None:
    audit.record("password.rotate", names.secret_path(subject["host_id"], subject["account"]), outcome, cur=cur,
                 principal=WORKER, details=details)


def _rotate(subject: dict) -> None:
    host_id, account = subject["host_id"], subject["account"]
    try:
        old_password = account_passwords.current(host_id, account)
        main_password = None
        if subject["use_main_account"] and subject["main_account"]:
            main_password = account_passwords.current(host_id, subject["main_account"])
    except errors.ApiError as exc:
        raise _Failed("the Vault is unreachable; the password was not changed", exc.message) from None
    try:
        new_password = passwords.generate_password(subject)
    except ValueError as exc:
        raise _Failed("the password policy cannot generate a password", str(exc)) from None
    target = drivers.Target(
        address=subject["address"], port=subject["port"], account=account, old_password=old_password,
        main_account=subject["main_account"], main_password=main_password,
        use_main_account=subject["use_main_account"], script=subject["script"],
        operating_system=subject["operating_system"],
        certificate_validation_options=subject["certificate_validation_options"],
    )
    try:
        driver = drivers.driver_for(subject["protocol"])
        driver.rotate(target, new_password)
    except drivers.RotationFailed as exc:
        raise _Failed("the target refused the new password", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the worker; its message may hold a password
        raise _Failed("the target refused the new password", f"{type(exc).__name__} in the driver") from None
    _store_accepted(subject, new_password)
    if subject["verify_after_rotation"]:
        _verify(driver, target, new_password)


def _store_accepted(subject: dict, new_password: str) -> None:
    """Write the password the target has just accepted, trying hard: nobody else knows it."""
    for pause in (*STORE_RETRY_SECONDS, None):
        try:
            account_passwords.store(subject["host_id"], subject["account"], new_password,
                                    max_versions=subject["max_versions"])
            return
        except errors.ApiError as exc:
            if pause is None:
                log.error("the target took a new password that the Vault could not store",
                          extra={"account_id": str(subject["account_id"])})
                raise _Failed("the target took a new password but the Vault could not store it; "
                              "reset the password on the host and store it with set-password", exc.message) from None
            time.sleep(pause)


def _verify(driver, target: drivers.Target, new_password: str) -> None:
    try:
        works = driver.verify(target, new_password)
    except drivers.RotationFailed as exc:
        raise _Failed("the new password could not be verified", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - as in rotate
        raise _Failed("the new password could not be verified", f"{type(exc).__name__} in the driver") from None
    if not works:
        raise _Failed("the target does not accept the new password", "verification after rotation failed")
