"""SQL of host accounts' rotations: what is queued when, a rotation's subject, and how its end is
written on the account (`last_rotated`, `last_error`, `rotation_given_up`).

The queue and the write-ahead states are the shared tables (accounts.queue_store,
accounts.state_store); these queries write host rows of them (`account_kind` 'host').
"""
from __future__ import annotations

from secrets_manager_service.accounts.kinds import HOST, LIVE_CHECKOUT

MANUAL, RELEASE, SCHEDULE = "manual", "release", "schedule"


def released_unused(account_ids: list) -> tuple[str, dict]:
    """(query, params) selecting `id` of those of these accounts whose checkouts ended, whose policy
    asks for a rotation on release and which no live checkout holds any more (a query, so that
    queueing them is one statement: queue_store.enqueue_selected)."""
    return (f"""SELECT a.id FROM sm_accounts a
                  JOIN sm_hosts h ON h.id = a.host_id JOIN sm_password_policies p ON p.id = h.password_policy_id
                 WHERE a.id = ANY (%(ids)s) AND p.rotate_on_release
                   AND NOT EXISTS (SELECT 1 FROM sm_checkouts c
                                    WHERE c.account_kind = %(kind)s AND c.account_id = a.id AND {LIVE_CHECKOUT})""",
            {"kind": HOST, "ids": list(account_ids)})


def due_by_schedule(cur) -> list:
    """The accounts whose password is older than their policy's rotation_interval.

    After retries ran out, the next scheduled try waits a full interval too, so a
    broken target is not hammered every pass.
    """
    cur.execute(
        """SELECT a.id FROM sm_accounts a
             JOIN sm_hosts h ON h.id = a.host_id JOIN sm_password_policies p ON p.id = h.password_policy_id
            WHERE p.rotation_interval > 0
              AND greatest(coalesce(a.last_rotated, a.created), coalesce(a.rotation_given_up, a.created))
                  + make_interval(secs => p.rotation_interval) <= now()"""
    )
    return [row["id"] for row in cur.fetchall()]


def claim_due(cur) -> dict | None:
    """One due host rotation no other worker holds, locked until the caller's transaction ends."""
    cur.execute(
        """SELECT account_id, reason, attempts FROM sm_rotations
            WHERE account_kind = %(kind)s AND due <= now() ORDER BY due LIMIT 1 FOR UPDATE SKIP LOCKED""",
        {"kind": HOST},
    )
    return cur.fetchone()


def rotation_subject(cur, account_id) -> dict | None:
    """Everything a rotation needs about the account, its host, policy and template (no password)."""
    cur.execute(
        f"""SELECT a.id AS account_id, a.account, h.id AS host_id, h.address, h.port, h.operating_system,
                   h.protocol, h.certificate_validation_options, h.use_main_account, h.main_account,
                   a.bound_endpoint, (SELECT ma.bound_endpoint FROM sm_accounts ma
                                       WHERE ma.host_id = h.id AND ma.account = h.main_account) AS main_bound_endpoint,
                   t.script, p.password_min_length, p.password_max_length, p.use_special_characters,
                   p.use_lower_case, p.use_upper_case, p.use_numbers, p.max_versions, p.number_of_retries,
                   p.retry_interval, p.verify_after_rotation,
                   EXISTS (SELECT 1 FROM sm_checkouts c
                            WHERE c.account_kind = %(kind)s AND c.account_id = a.id AND {LIVE_CHECKOUT}) AS checked_out
              FROM sm_accounts a JOIN sm_hosts h ON h.id = a.host_id
              JOIN sm_password_policies p ON p.id = h.password_policy_id
              LEFT JOIN sm_script_templates t ON t.id = h.script_template_id
             WHERE a.id = %(id)s""",
        {"kind": HOST, "id": account_id},
    )
    return cur.fetchone()


def bind_account(cur, account_id, fingerprint: str) -> None:
    """Bind an account with no stored password yet to its host's endpoint (drivers.binding)."""
    cur.execute("UPDATE sm_accounts SET bound_endpoint = %(fp)s WHERE id = %(id)s AND bound_endpoint IS NULL",
                {"id": account_id, "fp": fingerprint})


def mark_rotated(cur, account_id, *, interrupted: str | None = None, interrupted_at=None) -> None:
    """The rotation is over and its password current. `interrupted`: what went wrong on the way
    (it ended by reconciliation), kept as the last error, dated `interrupted_at` or when a
    retry recorded the failure, whichever is later."""
    cur.execute(
        """UPDATE sm_accounts SET last_rotated = now(), updated = now(),
                  last_error = CASE WHEN %(details)s::text IS NULL THEN NULL
                               ELSE greatest(last_error, coalesce(%(at)s::timestamptz, now())) END,
                  last_error_details = %(details)s, rotation_given_up = NULL
            WHERE id = %(id)s""",
        {"id": account_id, "details": interrupted, "at": interrupted_at},
    )


def mark_failed(cur, account_id, *, details: str, retry_in: int | None) -> None:
    """Keep the (password-free) error on the account, dated now; given up if there is no retry."""
    cur.execute(
        """UPDATE sm_accounts SET last_error = now(), last_error_details = %(details)s,
                  rotation_given_up = CASE WHEN %(retry)s::bigint IS NULL THEN now() END
            WHERE id = %(id)s""",
        {"id": account_id, "details": details, "retry": retry_in},
    )

