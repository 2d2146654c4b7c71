"""SQL of the Vault's copy of the workflow engine's grants (migration 0007). Every change bumps
vault_grant_generation in its own transaction, so a process that sees the counter move reloads
the open grants (vault_service.grants.cache)."""
from __future__ import annotations

from common.db import Database

_BUMP = "UPDATE vault_grant_generation SET generation = generation + 1"
_COLUMNS = ("request_id, user_id, role_id, role_name, grant_type, grant_start, grant_end, floating_length, "
            "unused_until, ended, end_reason, sequence, updated")


def generation(db: Database) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT generation FROM vault_grant_generation")
        return cur.fetchone()["generation"]


def snapshot(db: Database) -> tuple[int, list[dict]]:
    """(generation, the grants not ended), the generation read first: a change in between only
    makes the next check reload."""
    with db.cursor() as cur:
        cur.execute("SELECT generation FROM vault_grant_generation")
        counter = cur.fetchone()["generation"]
        cur.execute(f"SELECT {_COLUMNS} FROM vault_grants WHERE ended IS NULL")
        return counter, cur.fetchall()


def find(db: Database, request_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM vault_grants WHERE request_id = %s", (request_id,))
        return cur.fetchone()


def lock(cur, request_id) -> dict | None:
    """The grant's row, locked until the transaction ends (its states apply one after the other)."""
    cur.execute(f"SELECT {_COLUMNS} FROM vault_grants WHERE request_id = %s FOR UPDATE", (request_id,))
    return cur.fetchone()


def save(cur, row: dict) -> bool:
    """Insert or update the grant unless what is held is as new or ended (a concurrent first
    state of the same grant finds no row to lock); whether it was written."""
    cur.execute("""INSERT INTO vault_grants (request_id, user_id, role_id, role_name, grant_type, grant_start,
                       grant_end, floating_length, unused_until, ended, end_reason, sequence)
                   VALUES (%(request_id)s, %(user_id)s, %(role_id)s, %(role_name)s, %(grant_type)s, %(grant_start)s,
                       %(grant_end)s, %(floating_length)s, %(unused_until)s, %(ended)s, %(end_reason)s, %(sequence)s)
                   ON CONFLICT (request_id) DO UPDATE SET user_id = EXCLUDED.user_id, role_id = EXCLUDED.role_id,
                       role_name = EXCLUDED.role_name, grant_type = EXCLUDED.grant_type,
                       grant_start = EXCLUDED.grant_start, grant_end = EXCLUDED.grant_end,
                       floating_length = EXCLUDED.floating_length, unused_until = EXCLUDED.unused_until,
                       ended = EXCLUDED.ended, end_reason = EXCLUDED.end_reason, sequence = EXCLUDED.sequence,
                       updated = now()
                   WHERE vault_grants.sequence < EXCLUDED.sequence AND vault_grants.ended IS NULL""", row)
    if cur.rowcount != 1:
        return False
    cur.execute(_BUMP)
    return True


def start_floating(cur, request_id) -> dict | None:
    """Start an unused FLOATING grant's window now (its first use here); the row if this started it."""
    cur.execute(f"""UPDATE vault_grants SET grant_start = now(),
                           grant_end = now() + make_interval(hours => floating_length), updated = now()
                     WHERE request_id = %s AND grant_type = 'FLOATING' AND grant_start IS NULL AND ended IS NULL
                 RETURNING {_COLUMNS}""", (request_id,))
    row = cur.fetchone()
    if row is not None:
        cur.execute(_BUMP)
    return row
