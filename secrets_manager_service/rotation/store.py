"""SQL of the rotation queue and of the worker's periodic work.

`sm_rotations` holds at most one pending rotation per account. A worker claims
one due row with FOR UPDATE SKIP LOCKED and keeps it locked while it rotates,
so any number of workers share the queue, and a worker that dies simply lets
its row go back to the queue.
"""
from __future__ import annotations

from common.db import Database

MANUAL, RELEASE, SCHEDULE = "manual", "release", "schedule"

# A checkout is live until it is released or its time is up, whether or not the worker has marked it yet.
LIVE_CHECKOUT = "(c.ended IS NULL AND c.expires > now())"


def enqueue(cur, account_id, reason: str) -> None:
    """Queue a rotation due now. A manual request also restarts a queued one's retries."""
    if reason == MANUAL:
        conflict = "DO UPDATE SET reason = excluded.reason, due = now(), attempts = 0"
    else:
        conflict = "DO NOTHING"
    cur.execute(
        f"""INSERT INTO sm_rotations (account_id, reason) VALUES (%(id)s, %(reason)s)
            ON CONFLICT (account_id) {conflict}""",
        {"id": account_id, "reason": reason},
    )


def enqueue_if_unused(cur, account_id) -> None:
    """After a checkout ended: queue a release rotation if the policy asks and no live checkout is left."""
    cur.execute(
        f"""INSERT INTO sm_rotations (account_id, reason)
            SELECT a.id, %(reason)s FROM sm_accounts a
              JOIN sm_hosts h ON h.id = a.host_id JOIN sm_password_policies p ON p.id = h.password_policy_id
             WHERE a.id = %(id)s AND p.rotate_on_release
               AND NOT EXISTS (SELECT 1 FROM sm_checkouts c WHERE c.account_id = a.id AND {LIVE_CHECKOUT})
            ON CONFLICT (account_id) DO NOTHING""",
        {"id": account_id, "reason": RELEASE},
    )


def expire_checkouts(cur) -> list[dict]:
    """Mark ended every checkout past its time; queue release rotations where that ended the last one.

    Returns the ended checkouts: `id, user_id, host_id, account`.
    """
    cur.execute(
        f"""WITH ended AS (
                UPDATE sm_checkouts SET ended = expires
                 WHERE ended IS NULL AND expires <= now()
             RETURNING id, user_id, account_id),
            queued AS (
                INSERT INTO sm_rotations (account_id, reason)
                SELECT DISTINCT a.id, %(reason)s FROM ended e
                  JOIN sm_accounts a ON a.id = e.account_id
                  JOIN sm_hosts h ON h.id = a.host_id
                  JOIN sm_password_policies p ON p.id = h.password_policy_id
                 WHERE p.rotate_on_release
                   -- The rows just ended are past `expires`, so this snapshot already counts them as over.
                   AND NOT EXISTS (SELECT 1 FROM sm_checkouts c WHERE c.account_id = a.id AND {LIVE_CHECKOUT})
                ON CONFLICT (account_id) DO NOTHING)
            SELECT e.id, e.user_id, a.host_id, a.account FROM ended e JOIN sm_accounts a ON a.id = e.account_id""",
        {"reason": RELEASE},
    )
    return cur.fetchall()


def enqueue_scheduled(db: Database) -> int:
    """Queue a rotation for every account whose password is older than its policy's rotation_interval.

    After retries ran out, the next scheduled try waits a full interval too, so a
    broken target is not hammered every pass.
    """
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO sm_rotations (account_id, reason)
               SELECT a.id, %(reason)s FROM sm_accounts a
                 JOIN sm_hosts h ON h.id = a.host_id JOIN sm_password_policies p ON p.id = h.password_policy_id
                WHERE p.rotation_interval > 0
                  AND greatest(coalesce(a.last_rotated, a.created), coalesce(a.rotation_given_up, a.created))
                      + make_interval(secs => p.rotation_interval) <= now()
               ON CONFLICT (account_id) DO NOTHING""",
            {"reason": SCHEDULE},
        )
        return cur.rowcount


def claim_due(cur) -> dict | None:
    """One due rotation no other worker holds, locked until the caller's transaction ends."""
    cur.execute(
        """SELECT account_id, reason, attempts FROM sm_rotations
            WHERE due <= now() ORDER BY due LIMIT 1 FOR UPDATE SKIP LOCKED"""
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
                   EXISTS (SELECT 1 FROM sm_checkouts c WHERE c.account_id = a.id AND {LIVE_CHECKOUT}) AS checked_out
              FROM sm_accounts a JOIN sm_hosts h ON h.id = a.host_id
              JOIN sm_password_policies p ON p.id = h.password_policy_id
              LEFT JOIN sm_script_templates t ON t.id = h.script_template_id
             WHERE a.id = %(id)s""",
        {"id": account_id},
    )
    return cur.fetchone()


def bind_account(cur, account_id, fingerprint: str) -> None:
    """Bind an account with no stored password yet to its host's endpoint (drivers.binding)."""
    cur.execute("UPDATE sm_accounts SET bound_endpoint = %(fp)s WHERE id = %(id)s AND bound_endpoint IS NULL",
                {"id": account_id, "fp": fingerprint})


def drop(cur, account_id) -> None:
    cur.execute("DELETE FROM sm_rotations WHERE account_id = %(id)s", {"id": account_id})


def record_success(cur, account_id, *, interrupted: str | None = None, interrupted_at=None) -> None:
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
    drop(cur, account_id)


def record_failure(cur, account_id, *, details: str, retry_in: int | None) -> None:
    """Keep the (password-free) error on the account, dated now; retry after `retry_in` seconds, or give up if None."""
    cur.execute(
        """UPDATE sm_accounts SET last_error = now(), last_error_details = %(details)s,
                  rotation_given_up = CASE WHEN %(retry)s::bigint IS NULL THEN now() END
            WHERE id = %(id)s""",
        {"id": account_id, "details": details, "retry": retry_in},
    )
    if retry_in is None:
        drop(cur, account_id)
    else:
        cur.execute(
            """UPDATE sm_rotations SET attempts = attempts + 1, due = now() + make_interval(secs => %(retry)s)
                WHERE account_id = %(id)s""",
            {"id": account_id, "retry": retry_in},
        )


# --- a rotation's committed steps (sm_rotation_states) ----------------------
# Written in transactions of their own while the worker's claim on sm_rotations stays open,
# so each step is durable the moment it is reached.


class RotationStates:
    """The committed steps of rotations under way, in `table` keyed by `key` (an account's id).

    Host accounts' are sm_rotation_states (account_id); managed directory accounts' have a table
    of the same shape (their own foreign key), so the same rules serve both.
    """

    def __init__(self, table: str, key: str):
        self.table, self.key = table, key
        self._columns = f"{key} AS account_id, rotation_id, step, previous_version, pending_version, reason, started, updated"

    def find(self, db: Database, account_id) -> dict | None:
        with db.cursor() as cur:
            cur.execute(f"SELECT {self._columns} FROM {self.table} WHERE {self.key} = %(id)s", {"id": account_id})
            return cur.fetchone()

    def begin(self, db: Database, account_id, rotation_id, *, previous_version: int | None, reason: str) -> None:
        with db.transaction() as cur:
            cur.execute(
                f"""INSERT INTO {self.table} ({self.key}, rotation_id, step, previous_version, reason)
                    VALUES (%(id)s, %(rotation)s, 'storing', %(previous)s, %(reason)s)""",
                {"id": account_id, "rotation": rotation_id, "previous": previous_version, "reason": reason},
            )

    def advance(self, db: Database, account_id, rotation_id, step: str, *, pending_version: int | None = None) -> bool:
        """Record that the rotation reached `step`; False if it is no longer the account's rotation
        (a set-password or a deletion ended it meanwhile)."""
        with db.transaction() as cur:
            cur.execute(
                f"""UPDATE {self.table} SET step = %(step)s, updated = now(),
                           pending_version = coalesce(%(pending)s, pending_version)
                     WHERE {self.key} = %(id)s AND rotation_id = %(rotation)s""",
                {"id": account_id, "rotation": rotation_id, "step": step, "pending": pending_version},
            )
            return cur.rowcount == 1

    def clear(self, cur, account_id, rotation_id=None) -> None:
        """The rotation under way is over (whatever its end); with `rotation_id`, only that one."""
        cur.execute(
            f"""DELETE FROM {self.table}
                 WHERE {self.key} = %(id)s AND (%(rotation)s::uuid IS NULL OR rotation_id = %(rotation)s::uuid)""",
            {"id": account_id, "rotation": rotation_id},
        )


HOST_STATES = RotationStates("sm_rotation_states", "account_id")
find_state = HOST_STATES.find
begin_state = HOST_STATES.begin
advance_state = HOST_STATES.advance
clear_state = HOST_STATES.clear
