"""The rotation flow: rotating one account's password of any family, written ahead.

A rotation (after CyberArk's CPM) moves through steps, each committed before the
next begins (a row of sm_rotation_states, accounts.state_store):

  storing  the rotation is recorded; the new password is written to the Vault above
           the current version, as a *pending* version (account_passwords)
  pending  the Vault holds it; now the target is changed
  changed  the target took it; it is verified (if the policy says so) and marked
           current in the Vault; then the state goes with the account's success

So the target is never touched before the Vault holds the new password, and the old
one stays current until the target took the new one: at no moment is the only copy of
a working password in memory. The worker's claim on the job is a row lock that dies
with its connection, so a worker killed or a Vault lost at any step leaves the state
and the job behind; the next pass reconciles: it asks the target which of the pending
and the previous password it accepts, makes that one current and discards the other's
version if it never worked. Failures are kept on the account (`last_error` = when,
`last_error_details` = what, never a password) and retried per the policy's
`number_of_retries` and `retry_interval`; an unfinished rotation is retried whatever
the count. Expiries and rotations are audited as the worker's doing.

Passwords go only to the endpoint they were set for (drivers.binding): before anything is
written, the driver is asked whether the target's stored passwords are bound to its endpoint;
if not, the rotation fails at once with NOT_BOUND and nothing is sent (the drivers check again
before every connection, so reconciliations and checkouts' questions obey it too). An account
with no password yet binds the one about to be generated to its current endpoint first.

Every function takes the account family (accounts.family) and the dependencies (Deps: the
database, the Vault's password versions, the generator, the audit trail), so the rules are
tested fast against fake families (tests/secrets_manager/test_account_flows.py).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, g, has_app_context

from common import audit, errors, metrics
from common.web import database
from secrets_manager_service import account_passwords, drivers, passwords
from secrets_manager_service.accounts import queue_store
from secrets_manager_service.accounts.family import AccountFamily
from secrets_manager_service.drivers import binding

log = logging.getLogger(__name__)

MAX_ROTATIONS_PER_PASS = 100
WORKER = "secrets-manager-worker"  # the audit trail's principal for what the worker does
# An unfinished rotation (a state the target or the Vault could not settle yet) is looked at
# again at least this often, whatever the policy's retry_interval.
RECONCILE_RETRY_SECONDS = 30

# What last_error_details says (the driver's or the Vault client's safe fact follows in brackets).
VAULT_DOWN = "the Vault is unreachable; the password was not changed"
TARGET_UNREACHABLE = "the target could not be reached; the password was not changed"
TARGET_REFUSED = "the target refused the new password; the password was not changed"
NOT_MADE_CURRENT = ("the target took the new password, but the Vault could not yet be told it is current; "
                    "the Vault keeps it as the pending version and the next pass makes it current")
UNSETTLED = ("the target could not be asked which password it accepts; the Vault keeps the previous and the "
             "pending password and the next pass asks again")
VAULT_DOWN_UNFINISHED = ("the Vault is unreachable; the rotation is unfinished: the Vault keeps the previous and "
                         "the pending password, and the next pass asks the target which one it accepts")
NEITHER = ("neither the pending nor the previous password logs in to the target; the Vault keeps both; "
           "set the password on the target and store it with set-password")
NOT_BOUND = "the password was not changed: the stored passwords are not bound to the target's endpoint"

# Where a test may stop the worker (SM_WORKER_PAUSE_AT); see checkpoint().
CHECKPOINTS = ("before_pending_write", "before_target_change", "target_accepted", "before_mark_current")


_paused = set()


def checkpoint(step: str) -> None:
    """A test hook, off unless SM_WORKER_PAUSE_AT names `step` (one of CHECKPOINTS).

    Then the worker stops here the first time it comes by: it creates
    `<SM_WORKER_PAUSE_DIR>/<step>.reached` and waits until `<step>.go` exists, so a test can
    cut the Vault or SIGKILL the worker at exactly this step of a real rotation.
    """
    if not has_app_context():
        return
    config = current_app.config
    if config.get("SM_WORKER_PAUSE_AT") != step or step in _paused:
        return
    _paused.add(step)
    folder = Path(config["SM_WORKER_PAUSE_DIR"])
    (folder / f"{step}.reached").touch()
    log.warning("paused at a test checkpoint", extra={"checkpoint": step})
    while not (folder / f"{step}.go").exists():
        time.sleep(0.05)



@dataclass(frozen=True)
class Deps:
    """What the rotation rules work with: the database (transactions and cursors), the Vault's
    password versions (account_passwords' functions), the password generator, the audit trail
    and the test checkpoint."""

    db: Any
    vault: Any = account_passwords
    generate: Callable[[dict], str] = passwords.generate_password
    audit: Callable[..., None] = audit.record
    checkpoint: Callable[[str], None] = field(default=checkpoint)


def run_due(family: AccountFamily, deps: Deps) -> dict[str, int]:
    """Run the family's due rotations (at most MAX_ROTATIONS_PER_PASS): how many ended how."""
    outcomes = {"rotated": 0, "failed": 0, "skipped": 0}
    for _ in range(MAX_ROTATIONS_PER_PASS):
        outcome = run_one_due(family, deps)
        if outcome is None:
            break
        outcomes[outcome] += 1
    return outcomes


def enqueue_scheduled(family: AccountFamily, deps: Deps) -> int:
    """Queue a rotation of each of the family's accounts whose password is older than its policy's interval."""
    with deps.db.transaction() as cur:
        return family.enqueue_scheduled(cur)


def app_deps() -> Deps:
    """The running app's: its database and Vault."""
    return Deps(db=database())



class _Failed(Exception):
    """A rotation that did not end: `error` is safe to store and show. `unfinished`: its state
    stays for a later pass to reconcile (the Vault or the target could not settle it now)."""

    def __init__(self, error: str, details: str = "", *, unfinished: bool = False):
        super().__init__(error)
        self.error, self.details, self.unfinished = error, details, unfinished

    def text(self) -> str:
        return f"{self.error} ({self.details})" if self.details and self.details not in self.error else self.error


def run_one_due(family: AccountFamily, deps: Deps) -> str | None:
    """Claim and run one due rotation of the family's: "rotated", "failed" or "skipped"; None when none is due."""
    with deps.db.transaction() as cur:
        job = family.claim_due(cur)  # locked until this transaction ends: the claim dies with the worker
        if job is None:
            return None
        subject = family.subject(cur, job["account_id"])
        if subject is None:  # a guard only: deleting the account cascades to the job, which waits for our lock
            return "skipped"
        # One request id per rotation, sent with every Vault call, so both audit trails join up.
        if has_app_context():
            g.request_id = os.urandom(16).hex()
        state = family.states.find(deps.db, job["account_id"])
        if state is None and job["reason"] == family.release_reason and subject["checked_out"]:
            # Someone checked it out again since the release; the next release queues it anew.
            queue_store.drop(cur, family.kind, job["account_id"])
            return "skipped"
        interrupted = None
        try:
            done = False
            if state is not None:
                done, interrupted = _reconcile(family, deps, subject, state)
            if not done:
                _rotate(family, deps, subject, job["reason"])
        except _Failed as failure:
            retry_in = subject["retry_interval"] if job["attempts"] < subject["number_of_retries"] else None
            if failure.unfinished:
                retry_in = min(RECONCILE_RETRY_SECONDS, retry_in if retry_in is not None else RECONCILE_RETRY_SECONDS)
            else:
                family.states.clear(cur, job["account_id"])
            log.warning("rotation failed", extra={"account_id": str(subject["account_id"]), "error": failure.error,
                                                  "unfinished": failure.unfinished, "will_retry": retry_in is not None})
            family.record_failure(cur, job["account_id"], subject=subject, details=failure.text(), retry_in=retry_in,
                                  reason=job["reason"])
            if retry_in is None:
                queue_store.drop(cur, family.kind, job["account_id"])
            else:
                queue_store.retry_later(cur, family.kind, job["account_id"], retry_in)
            _audit(cur, family, deps, subject, audit.FAILED, reason=job["reason"], error=failure.error,
                   retry=retry_in is not None, unfinished=failure.unfinished)
            metrics.ROTATIONS.labels(subject["protocol"], "failed").inc()
            return "failed"
        family.states.clear(cur, job["account_id"])
        family.record_success(cur, job["account_id"], subject=subject, interrupted=interrupted,
                              interrupted_at=state["updated"] if state else None, reason=job["reason"])
        queue_store.drop(cur, family.kind, job["account_id"])
        _audit(cur, family, deps, subject, audit.SUCCESS, reason=job["reason"],
               **({"reconciled": state["step"], "note": interrupted} if interrupted else {}))
        metrics.ROTATIONS.labels(subject["protocol"], "success").inc()
        log.info("rotated", extra={"account_id": str(subject["account_id"]), "reason": job["reason"]})
        return "rotated"


def _audit(cur, family: AccountFamily, deps: Deps, subject: dict, outcome: str, **details) -> None:
    request_id = g.get("request_id") if has_app_context() else None
    deps.audit("password.rotate", family.subject_path(subject), outcome, cur=cur,
               principal=WORKER, details={"request_id": request_id, **details})


def _rotate(family: AccountFamily, deps: Deps, subject: dict, reason: str) -> None:
    path, account_id = family.subject_path(subject), subject["account_id"]
    try:
        found = deps.vault.history(path)
        old_password = deps.vault.read_version(path, found.current)
        credentials = family.credentials(subject)
    except errors.ApiError as exc:
        raise _Failed(VAULT_DOWN, exc.message) from None
    try:
        new_password = deps.generate(subject)
    except ValueError as exc:
        raise _Failed("the password policy cannot generate a password", str(exc)) from None
    if old_password is None:
        try:
            subject = family.adopt_endpoint(deps.db, subject, credentials)
        except errors.ApiError as exc:
            raise _Failed("the rotation could not be recorded", exc.message) from None
    target = family.target(subject, old_password, credentials)
    driver = family.driver(subject)
    try:
        driver.check_bound(target)
    except binding.NotBound as exc:
        raise _Failed(NOT_BOUND, str(exc)) from None
    db = deps.db
    rotation_id = uuid.uuid4()

    family.states.begin(db, account_id, rotation_id, previous_version=found.current, reason=reason)
    deps.checkpoint("before_pending_write")
    try:
        pending = deps.vault.write_pending(path, new_password, current_version=found.current,
                                                  max_versions=subject["max_versions"])
    except errors.ApiError as exc:
        # The write may have landed: the state says `storing`, and the next pass discards what it left.
        raise _Failed(VAULT_DOWN, exc.message, unfinished=True) from None
    _advance(family, db, subject, rotation_id, "pending", pending_version=pending)
    deps.checkpoint("before_target_change")

    try:
        driver.rotate(target, new_password)
    except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the worker; its message may hold a password
        failure = exc if isinstance(exc, drivers.RotationFailed) else drivers.RotationFailed(
            f"{type(exc).__name__} in the driver")
        if not failure.unchanged and _settle(family, deps, subject, driver, target, pending, new_password, old_password):
            pass  # the target took it after all; carry on as if it had said so
        else:
            if failure.unchanged:
                _discard(family, deps, subject, pending)
            error = TARGET_UNREACHABLE if isinstance(failure, drivers.TargetUnreachable) else TARGET_REFUSED
            raise _Failed(error, str(failure)) from None
    _advance(family, db, subject, rotation_id, "changed")
    deps.checkpoint("target_accepted")

    if subject["verify_after_rotation"]:
        try:
            works = driver.verify(target, new_password)
        except Exception as exc:  # noqa: BLE001 - as in rotate
            detail = str(exc) if isinstance(exc, drivers.RotationFailed) else f"{type(exc).__name__} in the driver"
            raise _Failed(UNSETTLED, f"verification failed: {detail}", unfinished=True) from None
        if not works and not _settle(family, deps, subject, driver, target, pending, new_password, old_password):
            raise _Failed("the target does not accept the new password; the previous one stays current",
                          "verification after rotation failed")
    deps.checkpoint("before_mark_current")
    _make_current(family, deps, subject, pending)


def _advance(family: AccountFamily, db, subject: dict, rotation_id, step: str, **kwargs) -> None:
    if not family.states.advance(db, subject["account_id"], rotation_id, step, **kwargs):
        raise _Failed("the rotation was superseded by a set-password or a change of the host")


def _make_current(family: AccountFamily, deps: Deps, subject: dict, version: int) -> None:
    try:
        deps.vault.make_current(family.subject_path(subject), version,
                                       max_versions=subject["max_versions"])
    except errors.ApiError as exc:
        raise _Failed(NOT_MADE_CURRENT, exc.message, unfinished=True) from None


def _discard(family: AccountFamily, deps: Deps, subject: dict, version: int) -> None:
    """Destroy a pending version the target certainly did not take; if the Vault cannot, later."""
    try:
        deps.vault.discard(family.subject_path(subject), [version])
    except errors.ApiError as exc:
        raise _Failed(VAULT_DOWN + "; the pending version is discarded by the next pass", exc.message,
                      unfinished=True) from None


def _settle(family: AccountFamily, deps: Deps, subject: dict, driver, target: drivers.Target, pending: int,
            pending_password: str | None, previous_password: str | None) -> bool:
    """Ask the target which password it accepts: True if the pending one (now current in the Vault),
    False if the previous one (the pending version discarded); _Failed(unfinished) if it cannot tell."""
    try:
        if pending_password is not None and driver.verify(target, pending_password):
            _make_current(family, deps, subject, pending)
            return True
        if previous_password is not None and driver.verify(target, previous_password):
            _discard(family, deps, subject, pending)
            return False
    except drivers.RotationFailed as exc:
        raise _Failed(UNSETTLED, str(exc), unfinished=True) from None
    except _Failed:
        raise
    except Exception as exc:  # noqa: BLE001 - as in rotate
        raise _Failed(UNSETTLED, f"{type(exc).__name__} in the driver", unfinished=True) from None
    raise _Failed(NEITHER, unfinished=True)


def _reconcile(family: AccountFamily, deps: Deps, subject: dict, state: dict) -> tuple[bool, str]:
    """Finish a rotation a worker or the Vault left at `state["step"]`: (done, what happened).

    Not done: nothing had reached the target (`storing`); what it left in the Vault is
    discarded and a new rotation may start. Done: the target accepts the pending password,
    now current. _Failed: the previous password stays current, or it cannot be told yet.
    """
    path = family.subject_path(subject)
    previous, pending = state["previous_version"], state["pending_version"]
    if state["step"] == "storing" or pending is None:
        try:
            found = deps.vault.history(path)
            deps.vault.discard(path, [v for v in found.live if v > (previous or 0)])
        except errors.ApiError as exc:
            raise _Failed(VAULT_DOWN, exc.message, unfinished=True) from None
        with deps.db.transaction() as cur:
            family.states.clear(cur, subject["account_id"], state["rotation_id"])
        return False, ("an earlier try was interrupted before the target was changed (step 'storing'); "
                       "nothing had reached the target, and a new try rotated the password")
    try:
        pending_password = deps.vault.read_version(path, pending)
        previous_password = deps.vault.read_version(path, previous)
        credentials = family.credentials(subject)
    except errors.ApiError as exc:
        raise _Failed(NOT_MADE_CURRENT if state["step"] == "changed" else VAULT_DOWN_UNFINISHED, exc.message,
                      unfinished=True) from None
    driver = family.driver(subject)
    target = family.target(subject, previous_password, credentials)
    if _settle(family, deps, subject, driver, target, pending, pending_password, previous_password):
        return True, (f"the rotation was interrupted after the step '{state['step']}'; a later pass found that the "
                      "target accepts the new password and made it current")
    raise _Failed(f"the rotation was interrupted after the step '{state['step']}'; the target kept the previous "
                  "password, which stays current")


def store_set_password(family: AccountFamily, deps: Deps, account_id, path: str, password: str, *,
                       max_versions: int) -> int:
    """Store a password the target has (set-password) as the current version; returns it.

    It is the target's truth: a rotation under way is over (its worker stops at its next step),
    and its pending password, which never became current, goes. The caller clears the rotation's
    state (family.states.clear) in the transaction that records the change.
    """
    version = deps.vault.store(path, password, max_versions=max_versions)
    end_unfinished(family, deps, account_id, path, version)
    return version


def end_unfinished(family: AccountFamily, deps: Deps, account_id, path: str, version: int) -> None:
    """`version` was stored as is (the target's truth): a rotation under way is over, and its pending
    password, which never became current, goes (the caller clears the state in its transaction)."""
    unfinished = family.states.find(deps.db, account_id)
    if unfinished is not None and unfinished["pending_version"] and unfinished["pending_version"] != version:
        deps.vault.discard(path, [unfinished["pending_version"]])


# accepted_pending's `state` when the caller has not read it (accepted_pending reads it then).
UNREAD = object()


def state_carried(account: dict):
    """The rotation state an account row carries (a family's checkout rows may: `rotation_step`,
    `rotation_pending`), as states.find gives it: None when no rotation is under way; UNREAD when
    the row does not carry it."""
    if "rotation_step" not in account:
        return UNREAD
    step = account["rotation_step"]
    return None if step is None else {"step": step, "pending_version": account["rotation_pending"]}


def accepted_pending(family: AccountFamily, deps: Deps, account_id, state=UNREAD) -> int | None:
    """The pending version of a rotation under way if the target accepts it (checkouts hand it out
    then), else None. Asks the target only while that is not known from the rotation's step.
    `state`: the account's rotation state if the caller has it (states.find's, or None)."""
    if state is UNREAD:
        state = family.states.find(deps.db, account_id)
    if state is None or state["pending_version"] is None or state["step"] == "storing":
        return None
    if state["step"] == "changed":
        return state["pending_version"]
    with deps.db.cursor() as cur:
        subject = family.subject(cur, account_id)
    if subject is None:
        return None
    password = deps.vault.read_version(family.subject_path(subject), state["pending_version"])
    if password is None:
        return None
    try:
        driver = family.driver(subject)
        return state["pending_version"] if driver.verify(family.target(subject, None, None), password) else None
    except Exception:  # noqa: BLE001 - the target cannot tell: the current password is the best guess
        return None
