"""SQL of scans (`sm_td_scans`): queueing one, claiming it, staging what it reads, and merging a complete scan.

A claimed scan is committed as `running` with a lease, so refreshes never wait for
it; the scanner renews the lease page by page. What it reads goes to the unlogged
`sm_td_scan_entries`, and only a complete scan merges it into `sm_td_accounts`, in one
transaction: a failed scan leaves the accounts exactly as they were.
"""
from __future__ import annotations

import json

from common.db import Database

LEASE_SECONDS = 120
MERGE_TIMEOUT_MS = 120_000  # merging 100,000 entries takes longer than the default statement timeout
ENTRY_COLUMNS = ("identity", "dn", "username", "email", "full_name", "source_id", "security_id",
                 "sam_account_name", "additional_data")
_FIELDS = ("dn", "username", "email", "full_name", "source_id", "security_id", "sam_account_name", "additional_data")


def queue_scan(cur, domain_id) -> None:
    """Queue a scan unless one is queued already; PENDING unless one is running (it says SCANNING)."""
    cur.execute("""INSERT INTO sm_td_scans (domain_id, state) VALUES (%(id)s, 'queued')
                   ON CONFLICT (domain_id) WHERE state = 'queued' DO NOTHING""", {"id": domain_id})
    cur.execute("""UPDATE sm_target_domains d SET scan_status = 'PENDING'
                    WHERE id = %(id)s AND NOT EXISTS (
                          SELECT 1 FROM sm_td_scans s WHERE s.domain_id = d.id AND s.state = 'running')""",
                {"id": domain_id})


def queue_periodic_scans(db: Database) -> int:
    """Queue a scan of every enabled periodic domain whose last scan (else creation) is an interval old.

    A failed scan counts too, so an unreachable directory is tried once an interval, not every pass.
    """
    with db.transaction() as cur:
        cur.execute(
            """WITH due AS (
                   INSERT INTO sm_td_scans (domain_id, state)
                   SELECT d.id, 'queued' FROM sm_target_domains d
                    WHERE d.enabled AND d.periodic_scan
                      AND coalesce(d.scan_ended, d.created) + make_interval(mins => d.periodic_scan_interval) <= now()
                      AND NOT EXISTS (SELECT 1 FROM sm_td_scans s WHERE s.domain_id = d.id)
                   ON CONFLICT DO NOTHING
                   RETURNING domain_id)
               UPDATE sm_target_domains SET scan_status = 'PENDING' WHERE id IN (SELECT domain_id FROM due)""")
        return cur.rowcount


def claim(cur) -> dict | None:
    """Take one queued scan of a domain that has none running; None if there is none. Commit right after."""
    # A running scan whose lease lapsed belongs to a worker that died: it is over.
    cur.execute("DELETE FROM sm_td_scans WHERE state = 'running' AND lease_until < now()")
    cur.execute(
        """SELECT s.id, s.domain_id FROM sm_td_scans s
            WHERE s.state = 'queued'
              AND NOT EXISTS (SELECT 1 FROM sm_td_scans r WHERE r.domain_id = s.domain_id AND r.state = 'running')
            ORDER BY s.queued LIMIT 1 FOR UPDATE SKIP LOCKED""")
    job = cur.fetchone()
    if job is None:
        return None
    cur.execute("""UPDATE sm_td_scans SET state = 'running', lease_until = now() + make_interval(secs => %(lease)s)
                    WHERE id = %(id)s""", {"id": job["id"], "lease": LEASE_SECONDS})
    cur.execute("UPDATE sm_target_domains SET scan_status = 'SCANNING' WHERE id = %(id)s", {"id": job["domain_id"]})
    return job


def renew(cur, scan_id) -> bool:
    """Extend the lease; False if the scan is gone (its domain was deleted)."""
    cur.execute("""UPDATE sm_td_scans SET lease_until = now() + make_interval(secs => %(lease)s)
                    WHERE id = %(id)s AND state = 'running'""", {"id": scan_id, "lease": LEASE_SECONDS})
    return cur.rowcount == 1


def stage(cur, scan_id, entries: list[dict]) -> None:
    """Append one page of entries (COPY: one round trip for the page)."""
    with cur.copy(f"COPY sm_td_scan_entries (scan_id, {', '.join(ENTRY_COLUMNS)}) FROM STDIN") as copy:
        for entry in entries:
            copy.write_row((scan_id, *(entry[c] if c != "additional_data" else json.dumps(entry[c])
                                       for c in ENTRY_COLUMNS)))


def merge(cur, scan_id, domain_id) -> dict:
    """Apply a complete scan: new entries, changed ones, and those it did not find (REMOVED).

    Returns `{"found", "new", "removed"}`.
    """
    cur.execute(f"SET LOCAL statement_timeout = {MERGE_TIMEOUT_MS}")
    fields = ", ".join(_FIELDS)
    differs = f"({', '.join('a.' + f for f in _FIELDS)}) IS DISTINCT FROM ({', '.join('excluded.' + f for f in _FIELDS)})"
    cur.execute(
        f"""WITH entries AS (
                SELECT DISTINCT ON (identity) * FROM sm_td_scan_entries WHERE scan_id = %(scan)s ORDER BY identity, dn),
            upserted AS (
                INSERT INTO sm_td_accounts AS a (id, domain_id, identity, {fields})
                SELECT gen_random_uuid(), %(domain)s, identity, {fields} FROM entries
                ON CONFLICT (domain_id, identity) DO UPDATE
                   SET {', '.join(f'{f} = excluded.{f}' for f in _FIELDS)}, removed = false, updated = now()
                 WHERE {differs} OR a.removed
                RETURNING (xmax = 0) AS inserted)
            SELECT (SELECT count(*) FROM entries) AS found,
                   (SELECT count(*) FROM upserted WHERE inserted) AS new""",
        {"scan": scan_id, "domain": domain_id})
    counts = cur.fetchone()
    cur.execute(
        """UPDATE sm_td_accounts a SET removed = true, updated = now()
            WHERE a.domain_id = %(domain)s AND NOT a.removed
              AND NOT EXISTS (SELECT 1 FROM sm_td_scan_entries e WHERE e.scan_id = %(scan)s AND e.identity = a.identity)""",
        {"scan": scan_id, "domain": domain_id})
    return {"found": counts["found"], "new": counts["new"], "removed": cur.rowcount}


def finish(cur, scan_id, domain_id, *, status: str, message: str, bind_account_dns: list[str] | None = None) -> None:
    """End the scan (its staged entries go with it) and tell the domain how it went; a DONE scan
    also records the DN(s) the directory said its bind account is (`bind_account_dns`)."""
    cur.execute("DELETE FROM sm_td_scans WHERE id = %(id)s", {"id": scan_id})
    cur.execute(
        """UPDATE sm_target_domains SET scan_status = %(status)s, scan_message = %(message)s, scan_ended = now(),
                  last_scanned = CASE WHEN %(status)s = 'DONE' THEN now() ELSE last_scanned END,
                  bind_account_dns = coalesce(%(dns)s::text[], bind_account_dns)
            WHERE id = %(domain)s""",
        {"status": status, "message": message, "domain": domain_id, "dns": bind_account_dns})
