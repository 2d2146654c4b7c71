"""The kinds of account the worker rotates, and what differs between them.

rotation.service holds the write-ahead rules once; a Kind tells it where an account's
queue row, committed steps and password secret (its path, also the audit trail's target) are, which driver changes the password
on its target and how a rotation's end is recorded. Host accounts are HOSTS (here);
managed directory accounts are target_domains.rotations.DIRECTORY.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from common.web import database
from secrets_manager_service import account_passwords, drivers, names
from secrets_manager_service.drivers import binding
from secrets_manager_service.drivers.registry import driver_for
from secrets_manager_service.rotation import store


@dataclass(frozen=True)
class Kind:
    name: str
    claim_due: Callable  # (cur) -> {"account_id", "reason", "attempts"} | None, locked until the transaction ends
    subject: Callable  # (cur, account_id) -> what a rotation needs (policy fields, "protocol", "checked_out") | None
    drop: Callable  # (cur, account_id): the queued rotation is gone
    record_success: Callable  # (cur, account_id, *, subject, interrupted, interrupted_at)
    record_failure: Callable  # (cur, account_id, *, subject, details, retry_in)
    states: store.RotationStates
    path: Callable  # (subject) -> the Vault path of its password secret (account_passwords takes it)
    driver: Callable  # (subject) -> drivers.Driver
    target: Callable  # (subject, old_password, main_password) -> what the driver takes
    main_password: Callable  # (subject) -> str | None
    # (subject, main_password) -> subject: an account with no password stored yet takes its current
    # endpoint(s) as the binding (drivers.binding) of the password about to be generated for it
    adopt_endpoint: Callable
    release_reason: str  # the queue reason of a rotation after the last checkout ended


def _host_target(subject: dict, old_password: str | None, main_password: str | None) -> drivers.Target:
    # The account's passwords and, when it is used, the main account's go to one endpoint: the
    # target is bound only where both bindings agree.
    bound_to = subject["bound_endpoint"]
    if subject["use_main_account"] and subject["main_bound_endpoint"] != bound_to:
        bound_to = None
    return drivers.Target(
        address=subject["address"], port=subject["port"], account=subject["account"], old_password=old_password,
        main_account=subject["main_account"], main_password=main_password,
        use_main_account=subject["use_main_account"], script=subject["script"],
        operating_system=subject["operating_system"],
        certificate_validation_options=subject["certificate_validation_options"],
        bound_to=bound_to,
    )


def _host_adopt_endpoint(subject: dict, main_password: str | None) -> dict:
    if subject["bound_endpoint"] is not None:
        return subject
    fingerprint = binding.host_row_fingerprint(subject)
    with database().transaction() as cur:
        store.bind_account(cur, subject["account_id"], fingerprint)
    return {**subject, "bound_endpoint": fingerprint}


def _host_main_password(subject: dict) -> str | None:
    if subject["use_main_account"] and subject["main_account"]:
        return account_passwords.current(names.secret_path(subject["host_id"], subject["main_account"]))
    return None


def _host_success(cur, account_id, *, subject, interrupted, interrupted_at) -> None:
    store.record_success(cur, account_id, interrupted=interrupted, interrupted_at=interrupted_at)


def _host_failure(cur, account_id, *, subject, details, retry_in) -> None:
    store.record_failure(cur, account_id, details=details, retry_in=retry_in)


HOSTS = Kind(
    name="host",
    claim_due=store.claim_due,
    subject=store.rotation_subject,
    drop=store.drop,
    record_success=_host_success,
    record_failure=_host_failure,
    states=store.HOST_STATES,
    path=lambda subject: names.secret_path(subject["host_id"], subject["account"]),
    driver=lambda subject: driver_for(subject["protocol"]),
    target=_host_target,
    main_password=_host_main_password,
    adopt_endpoint=_host_adopt_endpoint,
    release_reason=store.RELEASE,
)
