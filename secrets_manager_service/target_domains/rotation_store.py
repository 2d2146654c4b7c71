"""SQL of directory accounts' rotations: which are due and may run, a rotation's subject, what
is queued when, and how a rotation's end is written on the managed account (`state`,
`last_error`, `rotation_given_up`).

The queue and the write-ahead states are the shared tables (accounts.queue_store,
accounts.state_store); these queries read and write directory rows of them (`account_kind`
'directory'). Rows to rotate are claimed with FOR UPDATE SKIP LOCKED.
"""
from __future__ import annotations

from secrets_manager_service.accounts.kinds import DIRECTORY, LIVE_CHECKOUT

# Rotations the queue may run: of enabled accounts still in the directory, in enabled domains.
_ROTATABLE = """m.enabled AND NOT a.removed AND d.enabled"""
_JOINS = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
            JOIN sm_target_domains d ON d.id = m.domain_id JOIN sm_password_policies p ON p.id = m.password_policy_id"""


def claim_due(cur) -> dict | None:
    """The next due rotation of a rotatable account, locked; None if none is due."""
    cur.execute(
        f"""SELECT r.account_id, r.reason, r.attempts FROM sm_rotations r
              JOIN {_JOINS} ON m.id = r.managed_account_id
             WHERE r.account_kind = %(kind)s AND r.due <= now() AND {_ROTATABLE}
             ORDER BY r.due LIMIT 1 FOR UPDATE OF r SKIP LOCKED""", {"kind": DIRECTORY})
    return cur.fetchone()


def subject(cur, managed_id) -> dict | None:
    """The account, its domain's endpoints and its policy's rotation settings; None if it is gone."""
    cur.execute(
        f"""SELECT m.id AS account_id, m.domain_id, a.dn, a.username, d.endpoints, m.bound_endpoints,
                   p.password_min_length,
                   p.password_max_length, p.use_special_characters, p.use_lower_case, p.use_upper_case,
                   p.use_numbers, p.max_versions, p.number_of_retries, p.retry_interval, p.verify_after_rotation,
                   EXISTS (SELECT 1 FROM sm_checkouts c
                            WHERE c.account_kind = %(kind)s AND c.account_id = m.id AND {LIVE_CHECKOUT}) AS checked_out
              FROM {_JOINS} WHERE m.id = %(id)s""", {"kind": DIRECTORY, "id": managed_id})
    return cur.fetchone()


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


def due_by_schedule(cur) -> list:
    """The rotatable accounts whose password is older than their policy's interval."""
    cur.execute(
        f"""SELECT m.id FROM {_JOINS}
             WHERE {_ROTATABLE} AND m.rotation_enabled AND p.rotation_interval > 0
               AND greatest(coalesce(m.last_rotated, m.created), coalesce(m.rotation_given_up, m.created))
                   + make_interval(secs => p.rotation_interval) <= now()""")
    return [row["id"] for row in cur.fetchall()]
