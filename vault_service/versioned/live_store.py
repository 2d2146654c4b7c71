"""SQL of the read of every live version of a secret at once (`GET /secret/live/{path}`), with its
audit event in the same statement, as every read (failing closed).

The Secrets Manager hands out an account's password history in a checkout: the current version
and those before it. Read version by version that was a metadata call and one read per version;
this is one round trip whatever the number of versions kept.
"""
from __future__ import annotations

from common import audit
from common.db import Database
from vault_service.secrets.store import LIVE

# One row per live version, newest first; a secret without live versions gives one row whose
# v_version is None; a missing secret one row whose id is None too (outcome not_found).
LIVE_READ = f"""
    WITH found AS MATERIALIZED (
        SELECT s.id, s.dek_key_id, s.dek_wrapped, s.custom_metadata
          FROM vault_secrets s WHERE s.owner_id = %(owner)s AND s.name = %(name)s),
    live AS MATERIALIZED (
        SELECT v.version, v.created, v.ciphertext
          FROM found s JOIN vault_secret_versions v ON v.secret_id = s.id
         WHERE {LIVE}),
    logged AS (
        INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
        SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, %(a_action)s, %(a_target)s,
               CASE WHEN EXISTS (SELECT 1 FROM found) THEN 'success' ELSE 'not_found' END,
               jsonb_build_object('versions', (SELECT coalesce(jsonb_agg(l.version ORDER BY l.version DESC), '[]')
                                                 FROM live l)))
    SELECT f.id, f.dek_key_id, f.dek_wrapped, f.custom_metadata,
           l.version AS v_version, l.created AS v_created, l.ciphertext AS v_ciphertext
      FROM (SELECT 1) AS one LEFT JOIN found f ON true LEFT JOIN live l ON true
     ORDER BY l.version DESC"""


def live_versions_audited(db: Database, owner: str, name: str, *, event: dict) -> list[dict]:
    """The rows of LIVE_READ (never empty), its audit event written by the same statement."""
    params = {"owner": owner, "name": name,
              **{f"a_{key}": event[key] for key in ("service", "request_id", "principal", "action", "target")}}
    with audit.failing_closed(event["action"], event["target"]), db.cursor() as cur:
        cur.execute(LIVE_READ, params)
        return cur.fetchall()
