"""SQL of directory accounts' rotations: the queue (`sm_td_rotations`) and how a rotation's end
is written on the managed account (`state`, `last_error`, `rotation_given_up`).

The rules that decide when these run are rotation.service's (target_domains.rotations names
this family's parts for it); rows to rotate are claimed with FOR UPDATE SKIP LOCKED.
"""
from __future__ import annotations

from secrets_manager_service.rotation.store import LIVE_CHECKOUT

# Rotations the queue may run: of enabled accounts still in the directory, in enabled domains.
_ROTATABLE = """m.enabled AND NOT a.removed AND d.enabled"""
_JOINS = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
            JOIN sm_target_domains d ON d.id = m.domain_id JOIN sm_password_policies p ON p.id = m.password_policy_id"""


def claim_due(cur) -> dict | None:
    """The next due rotation of a rotatable account, locked; None if none is due."""
    cur.execute(
        f"""SELECT r.managed_account_id AS account_id, r.trigger AS reason, r.attempts FROM sm_td_rotations r
              JOIN {_JOINS} ON m.id = r.managed_account_id
             WHERE r.due <= now() AND {_ROTATABLE}
             ORDER BY r.due LIMIT 1 FOR UPDATE OF r SKIP LOCKED""")
    return cur.fetchone()


def subject(cur, managed_id) -> dict | None:
    """The account, its domain's endpoints and its policy's rotation settings; None if it is gone."""
    cur.execute(
        f"""SELECT m.id AS account_id, m.domain_id, a.dn, a.username, d.endpoints, m.bound_endpoints,
                   p.password_min_length,
                   p.password_max_length, p.use_special_characters, p.use_lower_case, p.use_upper_case,
                   p.use_numbers, p.max_versions, p.number_of_retries, p.retry_interval, p.verify_after_rotation,
                   EXISTS (SELECT 1 FROM sm_td_checkouts c WHERE c.managed_account_id = m.id AND {LIVE_CHECKOUT})
                       AS checked_out
              FROM {_JOINS} WHERE m.id = %(id)s""", {"id": managed_id})
    return cur.fetchone()


def drop(cur, managed_id) -> None:
    """The account's queued rotation is done with."""
    cur.execute("DELETE FROM sm_td_rotations WHERE managed_account_id = %(id)s", {"id": managed_id})


def trigger(cur, managed_id) -> str:
    """Why the account's queued rotation runs (MANUAL when none is queued)."""
    cur.execute("SELECT trigger FROM sm_td_rotations WHERE managed_account_id = %(id)s", {"id": managed_id})
    row = cur.fetchone()
    return row["trigger"] if row else "MANUAL"


def mark_rotated(cur, managed_id, *, interrupted: str | None, interrupted_at) -> None:
    """ACTIVE and rotated now; an interruption the rotation survived stays shown as the last error."""
    cur.execute(
        """UPDATE sm_td_managed_accounts SET state = 'ACTIVE', last_rotated = now(), updated = now(),
                  last_error = CASE WHEN %(details)s::text IS NULL THEN NULL
                               ELSE greatest(last_error, coalesce(%(at)s::timestamptz, now())) END,
                  last_error_details = %(details)s, rotation_given_up = NULL
            WHERE id = %(id)s""", {"id": managed_id, "details": interrupted, "at": interrupted_at})


def mark_failed(cur, managed_id, *, details: str, retry_in) -> None:
    """The error, dated now; FAILED and given up when there is no retry (retry_in None)."""
    cur.execute(
        """UPDATE sm_td_managed_accounts SET last_error = now(), last_error_details = %(details)s,
                  state = CASE WHEN %(retry)s::bigint IS NULL THEN 'FAILED' ELSE state END,
                  rotation_given_up = CASE WHEN %(retry)s::bigint IS NULL THEN now() END
            WHERE id = %(id)s""", {"id": managed_id, "details": details, "retry": retry_in})


def retry_later(cur, managed_id, retry_in) -> None:
    """One more attempt counted; the queued rotation is due again in retry_in seconds."""
    cur.execute("""UPDATE sm_td_rotations SET attempts = attempts + 1, due = now() + make_interval(secs => %(retry)s)
                    WHERE managed_account_id = %(id)s""", {"id": managed_id, "retry": retry_in})


def enqueue_scheduled(cur) -> int:
    """Queue SCHEDULED rotations of accounts whose password is older than their policy's interval."""
    cur.execute(
        f"""INSERT INTO sm_td_rotations (managed_account_id, trigger)
            SELECT m.id, 'SCHEDULED' FROM {_JOINS}
             WHERE {_ROTATABLE} AND m.rotation_enabled AND p.rotation_interval > 0
               AND greatest(coalesce(m.last_rotated, m.created), coalesce(m.rotation_given_up, m.created))
                   + make_interval(secs => p.rotation_interval) <= now()
            ON CONFLICT (managed_account_id) DO NOTHING""")
    return cur.rowcount
