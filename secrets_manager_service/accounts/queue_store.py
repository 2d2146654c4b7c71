"""SQL of the rotation queue (sm_rotations): at most one pending rotation per account, keyed by kind.

A worker claims one due row with FOR UPDATE SKIP LOCKED (each family's claim_due, whose store
knows which of its accounts may rotate) and keeps it locked while it rotates, so any number of
workers share the queue, and a worker that dies lets its row go back to the queue. The queue
reasons are each kind's own words (migration 0012).
"""
from __future__ import annotations

from secrets_manager_service.accounts.kinds import FOREIGN_KEY


def enqueue(cur, kind: str, account_id, reason: str, *, restart: bool) -> None:
    """Queue a rotation due now; `restart`: an explicit request also restarts a queued one's retries."""
    conflict = "DO UPDATE SET reason = excluded.reason, due = now(), attempts = 0" if restart else "DO NOTHING"
    cur.execute(
        f"""INSERT INTO sm_rotations (account_kind, {FOREIGN_KEY[kind]}, reason) VALUES (%(kind)s, %(id)s, %(reason)s)
            ON CONFLICT (account_kind, account_id) {conflict}""",
        {"kind": kind, "id": account_id, "reason": reason},
    )


def enqueue_all(cur, kind: str, account_ids: list, reason: str) -> int:
    """Queue a rotation due now of each account that has none queued; how many were queued."""
    cur.execute(
        f"""INSERT INTO sm_rotations (account_kind, {FOREIGN_KEY[kind]}, reason)
            SELECT %(kind)s, id, %(reason)s FROM unnest(%(ids)s::uuid[]) AS id
            ON CONFLICT (account_kind, account_id) DO NOTHING""",
        {"kind": kind, "ids": list(account_ids), "reason": reason},
    )
    return cur.rowcount


def enqueue_selected(cur, kind: str, selected: tuple[str, dict], reason: str) -> int:
    """enqueue_all of the ids a (query, params) selects as `id`, in one statement; how many were queued."""
    query, params = selected
    cur.execute(
        f"""INSERT INTO sm_rotations (account_kind, {FOREIGN_KEY[kind]}, reason)
            SELECT %(queue_kind)s, selected.id, %(queue_reason)s FROM ({query}) AS selected
            ON CONFLICT (account_kind, account_id) DO NOTHING""",
        {**params, "queue_kind": kind, "queue_reason": reason},
    )
    return cur.rowcount


def reason_of(cur, kind: str, account_id) -> str | None:
    """Why the account's queued rotation runs; None when none is queued."""
    cur.execute("SELECT reason FROM sm_rotations WHERE account_kind = %(kind)s AND account_id = %(id)s",
                {"kind": kind, "id": account_id})
    row = cur.fetchone()
    return row["reason"] if row else None


def drop(cur, kind: str, account_id) -> None:
    """The account's queued rotation is done with."""
    cur.execute("DELETE FROM sm_rotations WHERE account_kind = %(kind)s AND account_id = %(id)s",
                {"kind": kind, "id": account_id})


def retry_later(cur, kind: str, account_id, retry_in: int) -> None:
    """One more attempt counted; the queued rotation is due again `retry_in` seconds from now.

    Now is the clock's, not the transaction's start (now()): the claim's transaction lasts as long
    as the rotation tried, and a retry due from its start could be due again at once."""
    cur.execute(
        """UPDATE sm_rotations SET attempts = attempts + 1,
                  due = clock_timestamp() + make_interval(secs => %(retry)s)
            WHERE account_kind = %(kind)s AND account_id = %(id)s""",
        {"kind": kind, "id": account_id, "retry": retry_in},
    )
