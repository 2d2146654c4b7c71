"""Rotating managed directory accounts: the DIRECTORY kind of rotation.service's write-ahead rules.

The rules (pending version in the Vault before the directory changes, current only once
it took it, reconciliation after any failure) are rotation.service's; this module says
where a directory account's queue row (`sm_td_rotations`), committed steps
(`sm_td_rotation_states`) and secret are, that the driver is the LDAP one (Password
Modify or unicodePwd through the endpoints in `rotation_priority` order, bound as
`ldap_bind_dn`), and how an end is recorded: `state`, `last_error`, `rotation_history`.

The account's passwords go only to the endpoints they are bound to (`bound_endpoints`,
drivers.binding): those of the domain when its password was stored, or, for an account
without one, those whose bind password is bound when its first password is generated.
"""
from __future__ import annotations

import logging

from common import errors
from common.web import database
from secrets_manager_service import account_passwords, names
from secrets_manager_service.drivers import ldap as ldap_driver
from secrets_manager_service.rotation import service as rotation
from secrets_manager_service.rotation.kinds import Kind
from secrets_manager_service.rotation.store import RotationStates
from secrets_manager_service.target_domains import bind_passwords
from secrets_manager_service.target_domains import managed_store as store
from secrets_manager_service.target_domains import rotation_store
from secrets_manager_service.target_domains.endpoints import endpoint_of, endpoints_in_order

log = logging.getLogger(__name__)

MAX_ROTATIONS_PER_PASS = 100
CHECKOUT_RELEASE = "CHECKOUT_RELEASE"


def subject(cur, managed_id) -> dict | None:
    found = rotation_store.subject(cur, managed_id)
    if found is not None:
        ordered = endpoints_in_order({"endpoints": found["endpoints"]}, "rotation_priority")
        found["ordered_endpoints"] = ordered
        found["protocol"] = ordered[0]["type"] if ordered else "LDAP"  # the metrics' label
    return found


def _current_version(subject: dict) -> int:
    """The Vault's current version after the rotation (0 if none, or if the Vault cannot say now)."""
    try:
        return account_passwords.history(path(subject)).current or 0
    except errors.ApiError:
        return 0


def record_success(cur, managed_id, *, subject, interrupted, interrupted_at) -> None:
    rotation_store.mark_rotated(cur, managed_id, interrupted=interrupted, interrupted_at=interrupted_at)
    store.add_history(cur, managed_id, version=_current_version(subject), trigger=rotation_store.trigger(cur, managed_id),
                      status="SUCCESS")
    rotation_store.drop(cur, managed_id)


def record_failure(cur, managed_id, *, subject, details, retry_in) -> None:
    """The error (dated now) on the account; FAILED once the retries ran out; retried after `retry_in`."""
    rotation_store.mark_failed(cur, managed_id, details=details, retry_in=retry_in)
    store.add_history(cur, managed_id, version=_current_version(subject), trigger=rotation_store.trigger(cur, managed_id),
                      status="FAILED")
    if retry_in is None:
        rotation_store.drop(cur, managed_id)
    else:
        rotation_store.retry_later(cur, managed_id, retry_in)


def path(subject: dict) -> str:
    return names.directory_secret_path(subject["domain_id"], subject["account_id"])


def bind_credentials(subject: dict) -> dict[str, str]:
    """What the driver logs in with (the "main account" of a host): the endpoints' bind passwords."""
    return bind_passwords.read(subject["domain_id"], subject["endpoints"])


def target(subject: dict, old_password, credentials) -> ldap_driver.DirectoryTarget:
    """The account's DN, its domain's endpoints in rotation order and the account's binding
    (without credentials, only a verification can be done: it binds as the account itself)."""
    bound = subject["bound_endpoints"]
    return ldap_driver.DirectoryTarget(
        dn=subject["dn"], endpoints=tuple(endpoint_of(e, credentials or {}) for e in subject["ordered_endpoints"]),
        bound_to=frozenset(bound) if bound is not None else None)


def adopt_endpoints(subject: dict, credentials: dict[str, str]) -> dict:
    """An account with no password yet: the one about to be generated is bound to the endpoints
    whose bind password is bound now (no other password of the account exists to protect)."""
    if subject["bound_endpoints"] is not None:
        return subject
    usable = [key for key in map(bind_passwords.key, subject["ordered_endpoints"]) if key in credentials]
    if usable:  # (none: this try fails unbound, and a later one, with endpoints fixed, binds then)
        with database().transaction() as cur:
            store.bind_to_endpoints(cur, [subject["account_id"]], usable, only_if_unbound=True)
    return {**subject, "bound_endpoints": usable}


DIRECTORY = Kind(
    name="directory",
    claim_due=rotation_store.claim_due,
    subject=subject,
    drop=rotation_store.drop,
    record_success=record_success,
    record_failure=record_failure,
    states=RotationStates("sm_td_rotation_states", "managed_account_id"),
    path=path,
    driver=lambda subject: ldap_driver.DirectoryDriver(),
    target=target,
    main_password=bind_credentials,
    adopt_endpoint=adopt_endpoints,
    release_reason=CHECKOUT_RELEASE,
)


def enqueue_scheduled() -> int:
    """Queue SCHEDULED rotations of accounts whose password is older than their policy's interval."""
    with database().transaction() as cur:
        return rotation_store.enqueue_scheduled(cur)


def run_due() -> tuple[int, int]:
    """Run the due directory rotations: (rotated, failed)."""
    rotated = failed = 0
    for _ in range(MAX_ROTATIONS_PER_PASS):
        outcome = rotation.run_one_due(DIRECTORY)
        if outcome is None:
            break
        rotated += outcome == "rotated"
        failed += outcome == "failed"
    return rotated, failed


def accepted_pending(managed_id) -> int | None:
    return rotation.accepted_pending(managed_id, DIRECTORY)
