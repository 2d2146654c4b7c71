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
from secrets_manager_service import account_passwords
from secrets_manager_service.drivers import ldap as ldap_driver
from secrets_manager_service.rotation import service as rotation
from secrets_manager_service.rotation.kinds import Kind
from secrets_manager_service.rotation.store import LIVE_CHECKOUT, RotationStates
from secrets_manager_service.target_domains import bind_passwords, managed_passwords
from secrets_manager_service.target_domains import managed_store as store
from secrets_manager_service.target_domains.endpoints import endpoint_of, endpoints_in_order

log = logging.getLogger(__name__)

MAX_ROTATIONS_PER_PASS = 100
CHECKOUT_RELEASE = "CHECKOUT_RELEASE"
# Rotations the queue may run: of enabled accounts still in the directory, in enabled domains.
_ROTATABLE = """m.enabled AND NOT a.removed AND d.enabled"""
_JOINS = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
            JOIN sm_target_domains d ON d.id = m.domain_id JOIN sm_password_policies p ON p.id = m.password_policy_id"""


def claim_due(cur) -> dict | None:
    cur.execute(
        f"""SELECT r.managed_account_id AS account_id, r.trigger AS reason, r.attempts FROM sm_td_rotations r
              JOIN {_JOINS} ON m.id = r.managed_account_id
             WHERE r.due <= now() AND {_ROTATABLE}
             ORDER BY r.due LIMIT 1 FOR UPDATE OF r SKIP LOCKED""")
    return cur.fetchone()


def subject(cur, managed_id) -> dict | None:
    cur.execute(
        f"""SELECT m.id AS account_id, m.domain_id, a.dn, a.username, d.endpoints, m.bound_endpoints,
                   p.password_min_length,
                   p.password_max_length, p.use_special_characters, p.use_lower_case, p.use_upper_case,
                   p.use_numbers, p.max_versions, p.number_of_retries, p.retry_interval, p.verify_after_rotation,
                   EXISTS (SELECT 1 FROM sm_td_checkouts c WHERE c.managed_account_id = m.id AND {LIVE_CHECKOUT})
                       AS checked_out
              FROM {_JOINS} WHERE m.id = %(id)s""", {"id": managed_id})
    found = cur.fetchone()
    if found is not None:
        ordered = endpoints_in_order({"endpoints": found["endpoints"]}, "rotation_priority")
        found["ordered_endpoints"] = ordered
        found["protocol"] = ordered[0]["type"] if ordered else "LDAP"  # the metrics' label
    return found


def drop(cur, managed_id) -> None:
    cur.execute("DELETE FROM sm_td_rotations WHERE managed_account_id = %(id)s", {"id": managed_id})


def _current_version(subject: dict) -> int:
    """The Vault's current version after the rotation (0 if none, or if the Vault cannot say now)."""
    try:
        return account_passwords.history(path(subject)).current or 0
    except errors.ApiError:
        return 0


def record_success(cur, managed_id, *, subject, interrupted, interrupted_at) -> None:
    cur.execute(
        """UPDATE sm_td_managed_accounts SET state = 'ACTIVE', last_rotated = now(), updated = now(),
                  last_error = CASE WHEN %(details)s::text IS NULL THEN NULL
                               ELSE greatest(last_error, coalesce(%(at)s::timestamptz, now())) END,
                  last_error_details = %(details)s, rotation_given_up = NULL
            WHERE id = %(id)s""", {"id": managed_id, "details": interrupted, "at": interrupted_at})
    store.add_history(cur, managed_id, version=_current_version(subject), trigger=_trigger(cur, managed_id),
                      status="SUCCESS")
    drop(cur, managed_id)


def record_failure(cur, managed_id, *, subject, details, retry_in) -> None:
    """The error (dated now) on the account; FAILED once the retries ran out; retried after `retry_in`."""
    cur.execute(
        """UPDATE sm_td_managed_accounts SET last_error = now(), last_error_details = %(details)s,
                  state = CASE WHEN %(retry)s::bigint IS NULL THEN 'FAILED' ELSE state END,
                  rotation_given_up = CASE WHEN %(retry)s::bigint IS NULL THEN now() END
            WHERE id = %(id)s""", {"id": managed_id, "details": details, "retry": retry_in})
    store.add_history(cur, managed_id, version=_current_version(subject), trigger=_trigger(cur, managed_id),
                      status="FAILED")
    if retry_in is None:
        drop(cur, managed_id)
    else:
        cur.execute("""UPDATE sm_td_rotations SET attempts = attempts + 1, due = now() + make_interval(secs => %(retry)s)
                        WHERE managed_account_id = %(id)s""", {"id": managed_id, "retry": retry_in})


def _trigger(cur, managed_id) -> str:
    cur.execute("SELECT trigger FROM sm_td_rotations WHERE managed_account_id = %(id)s", {"id": managed_id})
    row = cur.fetchone()
    return row["trigger"] if row else "MANUAL"


def path(subject: dict) -> str:
    return managed_passwords.path(subject["domain_id"], subject["account_id"])


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
    claim_due=claim_due,
    subject=subject,
    drop=drop,
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
        cur.execute(
            f"""INSERT INTO sm_td_rotations (managed_account_id, trigger)
                SELECT m.id, 'SCHEDULED' FROM {_JOINS}
                 WHERE {_ROTATABLE} AND m.rotation_enabled AND p.rotation_interval > 0
                   AND greatest(coalesce(m.last_rotated, m.created), coalesce(m.rotation_given_up, m.created))
                       + make_interval(secs => p.rotation_interval) <= now()
                ON CONFLICT (managed_account_id) DO NOTHING""")
        return cur.rowcount


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
