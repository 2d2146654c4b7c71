"""SQL of the write-ahead steps of rotations under way (sm_rotation_states), keyed by account kind.

Written in transactions of their own while the worker's claim on the queue stays open, so each
step is durable the moment it is reached (rotations.py says what the steps mean).
"""
from __future__ import annotations

from common.db import Database
from secrets_manager_service.accounts.kinds import FOREIGN_KEY

_COLUMNS = "account_id, rotation_id, step, previous_version, pending_version, reason, started, updated"


class RotationStates:
    """The rotation states of one account kind."""

    def __init__(self, kind: str):
        self.kind = kind

    def find(self, db: Database, account_id) -> dict | None:
        with db.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM sm_rotation_states WHERE account_kind = %(kind)s AND account_id = %(id)s",
                        {"kind": self.kind, "id": account_id})
            return cur.fetchone()

    def begin(self, db: Database, account_id, rotation_id, *, previous_version: int | None, reason: str) -> None:
        with db.transaction() as cur:
            cur.execute(
                f"""INSERT INTO sm_rotation_states (account_kind, {FOREIGN_KEY[self.kind]}, rotation_id, step,
                                                    previous_version, reason)
                    VALUES (%(kind)s, %(id)s, %(rotation)s, 'storing', %(previous)s, %(reason)s)""",
                {"kind": self.kind, "id": account_id, "rotation": rotation_id, "previous": previous_version,
                 "reason": reason},
            )

    def advance(self, db: Database, account_id, rotation_id, step: str, *, pending_version: int | None = None) -> bool:
        """Record that the rotation reached `step`; False if it is no longer the account's rotation
        (a set-password or a deletion ended it meanwhile)."""
        with db.transaction() as cur:
            cur.execute(
                """UPDATE sm_rotation_states SET step = %(step)s, updated = now(),
                          pending_version = coalesce(%(pending)s, pending_version)
                    WHERE account_kind = %(kind)s AND account_id = %(id)s AND rotation_id = %(rotation)s""",
                {"kind": self.kind, "id": account_id, "rotation": rotation_id, "step": step,
                 "pending": pending_version},
            )
            return cur.rowcount == 1

    def clear(self, cur, account_id, rotation_id=None) -> None:
        """The rotation under way is over (whatever its end); with `rotation_id`, only that one."""
        cur.execute(
            """DELETE FROM sm_rotation_states
                WHERE account_kind = %(kind)s AND account_id = %(id)s
                  AND (%(rotation)s::uuid IS NULL OR rotation_id = %(rotation)s::uuid)""",
            {"kind": self.kind, "id": account_id, "rotation": rotation_id},
        )
