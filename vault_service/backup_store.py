"""The Vault's backup queries: the master keys its data keys need, and every stored version."""
from __future__ import annotations

from collections.abc import Iterator

import psycopg
from psycopg.rows import dict_row


def master_key_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Secrets per master key id that wraps their data keys."""
    rows = conn.execute("SELECT dek_key_id, count(*) FROM vault_secrets GROUP BY 1 ORDER BY 1").fetchall()
    return {key_id: n for key_id, n in rows}


def stored_versions(url: str) -> Iterator[dict]:
    """{id, dek_key_id, dek_wrapped, version, ciphertext} of every version that still has data,
    through a server-side cursor of its own connection: a million versions stream through
    instead of landing in memory at once."""
    with psycopg.connect(url) as conn, conn.cursor(name="verify_restore", row_factory=dict_row) as cur:
        cur.execute("""SELECT s.id, s.dek_key_id, s.dek_wrapped, v.version, v.ciphertext
                         FROM vault_secrets s JOIN vault_secret_versions v ON v.secret_id = s.id
                        WHERE v.ciphertext IS NOT NULL""")
        yield from cur
