"""SQL of the workflow engine: tables wf_workflows, wf_requests, wf_settings, wf_roles, wf_users
(migrations/0008_workflows.sql), wf_mail_outbox (0009). Rules live in service.py; this module only reads and writes."""
from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb

from common.db import Database, fetch_page, like_escaped

# --- names learned from tokens ------------------------------------------------------------------

def learn_principal(cur, principal) -> None:
    """Remember the caller's roles' names and the caller's name and roles (for display names
    and for mailing an approver role's members)."""
    if principal.roles:
        cur.execute("""INSERT INTO wf_roles (id, name) SELECT * FROM unnest(%s::text[], %s::text[])
                       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE wf_roles.name <> EXCLUDED.name""",
                    ([r.id for r in principal.roles], [r.name for r in principal.roles]))
    cur.execute("""INSERT INTO wf_users (id, name, email, role_ids) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                          role_ids = EXCLUDED.role_ids, seen = now()""",
                (principal.sub, principal.name or principal.sub, principal.email, sorted(principal.role_ids)))


def role_names(cur, role_ids) -> dict[str, str]:
    cur.execute("SELECT id, name FROM wf_roles WHERE id = ANY(%s)", (list(role_ids),))
    return {row["id"]: row["name"] for row in cur.fetchall()}


def user_name(cur, user_id: str) -> str | None:
    cur.execute("SELECT name FROM wf_users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return row["name"] if row else None


# --- workflows --------------------------------------------------------------------------------

def insert_workflow(cur, by: str, name: str, doc: dict) -> uuid.UUID:
    workflow_id = uuid.uuid4()
    cur.execute("""INSERT INTO wf_workflows (id, name, doc, created_by, updated_by)
                   VALUES (%s, %s, %s, %s, %s)""", (workflow_id, name, Jsonb(doc), by, by))
    return workflow_id


def update_workflow(cur, by: str, workflow_id, name: str, doc: dict) -> bool:
    cur.execute("""UPDATE wf_workflows SET name = %s, doc = %s, updated = now(), updated_by = %s
                   WHERE id = %s""", (name, Jsonb(doc), by, workflow_id))
    return cur.rowcount == 1


def lock_workflow(cur, workflow_id, *, exclusive: bool) -> dict | None:
    """The workflow, locked: shared by a new request, exclusive by a change or a deletion, so a
    request is never made under a workflow being deleted."""
    cur.execute(f"SELECT * FROM wf_workflows WHERE id = %s FOR {'UPDATE' if exclusive else 'SHARE'}", (workflow_id,))
    return cur.fetchone()


def workflow_for_role(cur, role_id: str, requester_role_ids: list[str]) -> dict | None:
    """The first workflow (by creation) under which one of `requester_role_ids` may request
    `role_id`, locked shared as lock_workflow does; None if there is none."""
    cur.execute("""SELECT id FROM wf_workflows
                    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(doc->'target_roles') t WHERE t->>'id' = %s)
                      AND EXISTS (SELECT 1 FROM jsonb_array_elements(doc->'requester_roles') r
                                   WHERE r->>'id' = ANY(%s))
                    ORDER BY created, id LIMIT 1""", (role_id, requester_role_ids))
    row = cur.fetchone()
    return lock_workflow(cur, row["id"], exclusive=False) if row else None


def find_workflow(db: Database, workflow_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute("SELECT * FROM wf_workflows WHERE id = %s", (workflow_id,))
        return cur.fetchone()


def workflows_page(db: Database, *, requester_roles: list[str] | None, offset: int, limit: int,
                   sortdir: str) -> tuple[int, list[dict]]:
    """A page of workflows; with `requester_roles`, only those one of these roles may request under."""
    where, params = "TRUE", {}
    if requester_roles is not None:
        where = """EXISTS (SELECT 1 FROM jsonb_array_elements(doc->'requester_roles') r
                            WHERE r->>'id' = ANY(%(roles)s))"""
        params["roles"] = requester_roles
    return fetch_page(db, columns="*", source="wf_workflows", where=where, order=f"name {sortdir}, id",
                      params=params, offset=offset, limit=limit)


def waiting_requests_of(cur, workflow_id) -> int:
    cur.execute("SELECT count(*) AS n FROM wf_requests WHERE workflow_id = %s AND status = 'WAITING'", (workflow_id,))
    return cur.fetchone()["n"]


def delete_workflow(cur, workflow_id) -> None:
    cur.execute("DELETE FROM wf_workflows WHERE id = %s", (workflow_id,))


# --- requests ---------------------------------------------------------------------------------

def active_requests(cur, workflow_id, requester_id: str) -> int:
    """The requester's requests under the workflow that are waiting or hold a grant not yet ended."""
    cur.execute("""SELECT count(*) AS n FROM wf_requests
                    WHERE workflow_id = %s AND requester_id = %s
                      AND (status = 'WAITING' OR (status = 'APPROVED' AND grant_ended IS NULL
                                                  AND (grant_end IS NULL OR grant_end > now())))""",
                (workflow_id, requester_id))
    return cur.fetchone()["n"]


def lock_requester(cur, workflow_id, requester_id: str) -> None:
    """Serialise one requester's new requests under one workflow (max_active_requests)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"wf:{workflow_id}:{requester_id}",))


def insert_request(cur, row: dict) -> uuid.UUID:
    request_id = uuid.uuid4()
    cur.execute("""INSERT INTO wf_requests (id, workflow_id, requester_id, requester_name, target_user_id,
                       target_user_name, role_id, role_name, justification, comment, grant_type, grant_start,
                       grant_end, floating_length, status, steps, updated_by)
                   VALUES (%(id)s, %(workflow_id)s, %(requester_id)s, %(requester_name)s, %(target_user_id)s,
                       %(target_user_name)s, %(role_id)s, %(role_name)s, %(justification)s, %(comment)s,
                       %(grant_type)s, %(grant_start)s, %(grant_end)s, %(floating_length)s, 'WAITING',
                       %(steps)s, %(requester_id)s)""",
                {**row, "id": request_id, "steps": Jsonb(row["steps"])})
    return request_id


def find_request(db: Database, request_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute("SELECT * FROM wf_requests WHERE id = %s", (request_id,))
        return cur.fetchone()


def lock_request(cur, request_id) -> dict | None:
    """The request, locked until the transaction ends: decisions, revokes and deletions of one
    request happen one after the other, each seeing what the one before wrote."""
    cur.execute("SELECT * FROM wf_requests WHERE id = %s FOR UPDATE", (request_id,))
    return cur.fetchone()


def save_decision(cur, request_id, *, steps: list, status: str, by: str) -> None:
    cur.execute("""UPDATE wf_requests SET steps = %s, status = %s, updated = now(), updated_by = %s
                   WHERE id = %s""", (Jsonb(steps), status, by, request_id))


def save_revoke(cur, request_id, *, by_id: str, by_name: str) -> None:
    cur.execute("""UPDATE wf_requests SET revoked = true, revoked_at = now(), revoked_by_id = %s,
                          revoked_by_name = %s, grant_ended = now(), updated = now(), updated_by = %s
                   WHERE id = %s""", (by_id, by_name, by_id, request_id))


def end_grants_of_workflow(cur, workflow_id) -> list[dict]:
    """End the live grants of a workflow's requests; the requests whose grant ended."""
    cur.execute(f"""UPDATE wf_requests SET grant_ended = now(), updated = now()
                    WHERE workflow_id = %s AND status = 'APPROVED' AND grant_ended IS NULL
                      AND (grant_end IS NULL OR grant_end > now())
                RETURNING {GRANT_COLUMNS}""", (workflow_id,))
    return cur.fetchall()


def delete_request(cur, request_id) -> None:
    cur.execute("DELETE FROM wf_requests WHERE id = %s", (request_id,))


# Who sees a request: its requester and target user, and the holders of any of its approver roles.
_MINE = "(requester_id = %(me)s OR target_user_id = %(me)s)"
_APPROVABLE = """(requester_id <> %(me)s AND target_user_id <> %(me)s AND EXISTS (
    SELECT 1 FROM jsonb_array_elements(steps) s, jsonb_array_elements(s->'approvers') a
     WHERE a->'role'->>'id' = ANY(%(roles)s) OR a->'user'->>'id' = %(me)s))"""
FILTER_CONDITIONS = {
    "requests": _MINE,
    "active_requests": f"{_MINE} AND status = 'WAITING'",
    "approvals": _APPROVABLE,
    "active_approvals": f"{_APPROVABLE} AND status = 'WAITING'",
    "all": "TRUE",
    None: f"({_MINE} OR {_APPROVABLE})",  # a search without a filter: all the caller may see
}
_SEARCHED = ("requester_name", "requester_id", "target_user_name", "target_user_id", "role_name",
             "justification", "comment")


def requests_page(db: Database, *, condition: str, me: str, roles: list[str], keywords: list[str] = (),
                  start_time=None, end_time=None, sortkey: str = "created", sortdir: str = "DESC",
                  offset: int, limit: int) -> tuple[int, list[dict]]:
    where = [condition]
    params = {"me": me, "roles": roles}
    for i, keyword in enumerate(keywords):
        params[f"k{i}"] = f"%{like_escaped(keyword)}%"
        where.append("(" + " OR ".join(f"{column} ILIKE %(k{i})s" for column in _SEARCHED) + ")")
    if start_time is not None:
        where.append("created >= %(start)s")
        params["start"] = start_time
    if end_time is not None:
        where.append("created <= %(end)s")
        params["end"] = end_time
    return fetch_page(db, columns="*", source="wf_requests", where=" AND ".join(where),
                      order=f"{sortkey} {sortdir}, id", params=params, offset=offset, limit=limit)


# --- settings ---------------------------------------------------------------------------------

def read_settings(cur) -> dict | None:
    cur.execute("SELECT doc FROM wf_settings WHERE id = 1")
    row = cur.fetchone()
    return row["doc"] if row else None


def smtp_password_ref(cur) -> tuple[int | None, str]:
    """(the Vault version of the SMTP password, a password still in plain text from before 0013)."""
    cur.execute("SELECT smtp_password_version, smtp_password FROM wf_settings WHERE id = 1")
    row = cur.fetchone()
    return (row["smtp_password_version"], row["smtp_password"]) if row else (None, "")


def write_settings(cur, by: str, doc: dict, password_version: int | None) -> None:
    """The settings; with `password_version`, that Vault version is the password from now on."""
    cur.execute("""INSERT INTO wf_settings (id, doc, smtp_password_version, updated_by) VALUES (1, %(doc)s, %(v)s::integer, %(by)s)
                   ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, updated = now(), updated_by = EXCLUDED.updated_by,
                          smtp_password_version = coalesce(%(v)s::integer, wf_settings.smtp_password_version),
                          smtp_password = CASE WHEN %(v)s::integer IS NULL THEN wf_settings.smtp_password ELSE '' END""",
                {"doc": Jsonb(doc), "v": password_version, "by": by})


def adopt_smtp_password(cur, version: int, *, replacing: str) -> bool:
    """Name the Vault version holding the plain-text password `replacing`, and forget that text,
    unless the password changed meanwhile."""
    cur.execute("""UPDATE wf_settings SET smtp_password_version = %s, smtp_password = ''
                    WHERE id = 1 AND smtp_password = %s AND smtp_password <> ''""", (version, replacing))
    return cur.rowcount == 1


# --- grants -----------------------------------------------------------------------------------

# What a grant is (its state for the Vault, and whether it is live: service.grant_is_live).
GRANT_COLUMNS = ("id, target_user_id, role_id, role_name, status, grant_type, grant_start, grant_end, floating_length, "
                 "grant_ended, revoked, updated")

def grants_of(cur, user_id: str) -> list[dict]:
    """A user's approved requests whose grant has not ended early (the partial index
    wf_requests_grants): the caller keeps those whose window holds now."""
    cur.execute(f"""SELECT {GRANT_COLUMNS} FROM wf_requests
                     WHERE target_user_id = %s AND status = 'APPROVED' AND grant_ended IS NULL""", (user_id,))
    return cur.fetchall()


def start_floating(cur, request_ids: list) -> list[dict]:
    """Start the windows of unstarted FLOATING grants now; the requests whose window this started."""
    cur.execute(f"""UPDATE wf_requests SET grant_start = now(), grant_end = now() + make_interval(hours => floating_length)
                     WHERE id = ANY(%s) AND grant_type = 'FLOATING' AND grant_start IS NULL AND grant_ended IS NULL
                 RETURNING {GRANT_COLUMNS}""",
                (request_ids,))
    return cur.fetchall()


def unstarted_floating_grants(cur, after_id, limit: int) -> list[dict]:
    """Approved FLOATING grants not yet used here (nor ended), in id order after `after_id` (None:
    from the first): the ones whose first use may have been in the Vault."""
    cur.execute("""SELECT id FROM wf_requests
                    WHERE status = 'APPROVED' AND grant_type = 'FLOATING' AND grant_start IS NULL AND grant_ended IS NULL
                      AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid)
                    ORDER BY id LIMIT %(limit)s""", {"after": after_id, "limit": limit})
    return cur.fetchall()


def adopt_earlier_start(cur, request_id, start, end) -> dict | None:
    """A FLOATING grant's window as the Vault started it, kept when it starts earlier than ours
    (or ours has not started); the row if this changed it."""
    cur.execute(f"""UPDATE wf_requests SET grant_start = %(start)s, grant_end = %(end)s
                     WHERE id = %(id)s AND grant_type = 'FLOATING' AND grant_ended IS NULL
                       AND (grant_start IS NULL OR grant_start > %(start)s)
                 RETURNING {GRANT_COLUMNS}""", {"id": request_id, "start": start, "end": end})
    return cur.fetchone()


def end_expired_grants(cur, floating_unused_lapse) -> list[dict]:
    """Mark ended the grants whose window is over (grant_end passed, or a FLOATING one unused for
    `floating_unused_lapse`); the requests this ended (each once: their grant_ended is set)."""
    cur.execute(f"""UPDATE wf_requests SET grant_ended = now()
                     WHERE status = 'APPROVED' AND grant_ended IS NULL
                       AND (grant_end <= now()
                            OR (grant_type = 'FLOATING' AND grant_start IS NULL AND updated + %s <= now()))
                 RETURNING {GRANT_COLUMNS}""", (floating_unused_lapse,))
    return cur.fetchall()


def token_roles_seen(cur, user_id: str) -> list[str] | None:
    """The roles of the user's newest token the suite has seen (None: never seen)."""
    cur.execute("SELECT role_ids FROM wf_users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return list(row["role_ids"]) if row else None


# --- grant outbox (to the Vault) ----------------------------------------------------------------

def queue_grant_state(cur, request_id, state: dict) -> None:
    """One grant change for the Vault, in the change's transaction; an end waits for its checkout sweep too."""
    cur.execute("""INSERT INTO wf_grant_outbox (request_id, state, checkouts_swept)
                   VALUES (%s, %s, CASE WHEN %s THEN NULL ELSE now() END)""",
                (request_id, Jsonb(state), bool(state["ended"])))


def lock_grant_delivery(cur) -> bool:
    """Whether this transaction may deliver (one process at a time, so states leave in order)."""
    cur.execute("SELECT pg_try_advisory_xact_lock(hashtextextended('wf:grant-outbox', 0)) AS mine")
    return cur.fetchone()["mine"]


def undelivered_grant_states(cur, limit: int) -> list[dict]:
    cur.execute("""SELECT id, request_id, state, attempts, next_attempt <= now() AS due FROM wf_grant_outbox
                    WHERE delivered IS NULL AND refused IS NULL ORDER BY id LIMIT %s""", (limit,))
    return cur.fetchall()


def grant_state_delivered(cur, state_id: int) -> None:
    cur.execute("UPDATE wf_grant_outbox SET delivered = now(), attempts = attempts + 1 WHERE id = %s", (state_id,))


def grant_state_failed(cur, state_id: int, problem: str, *, refused: bool, backoff_seconds: float) -> None:
    cur.execute("""UPDATE wf_grant_outbox SET attempts = attempts + 1, last_error = %s,
                          refused = CASE WHEN %s THEN now() END, next_attempt = now() + make_interval(secs => %s)
                    WHERE id = %s""", (problem, refused, backoff_seconds, state_id))


def claim_unswept_ends(cur, limit: int) -> list[dict]:
    """Grant ends whose checkouts are still to be ended, locked (another sweeper skips them)."""
    cur.execute("""SELECT id, request_id, state FROM wf_grant_outbox WHERE checkouts_swept IS NULL
                    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""", (limit,))
    return cur.fetchall()


def checkouts_swept(cur, state_id: int) -> None:
    cur.execute("UPDATE wf_grant_outbox SET checkouts_swept = now() WHERE id = %s", (state_id,))


# --- mail outbox ------------------------------------------------------------------------------

def queue_mail(cur, request_id, recipients: list[str], subject: str, body: str) -> None:
    cur.execute("""INSERT INTO wf_mail_outbox (request_id, recipients, subject, body) VALUES (%s, %s, %s, %s)""",
                (request_id, recipients, subject, body))


def claim_mail(cur) -> dict | None:
    """The next due mail, leased for a minute (another process skips it meanwhile)."""
    cur.execute("""UPDATE wf_mail_outbox SET next_attempt = now() + interval '60 seconds'
                    WHERE id = (SELECT id FROM wf_mail_outbox
                                 WHERE sent IS NULL AND failed IS NULL AND next_attempt <= now()
                                 ORDER BY next_attempt LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id, recipients, subject, body, attempts""")
    return cur.fetchone()


def mail_sent(cur, mail_id: int) -> None:
    cur.execute("UPDATE wf_mail_outbox SET sent = now(), attempts = attempts + 1 WHERE id = %s", (mail_id,))


def mail_failed(cur, mail_id: int, problem: str, *, give_up: bool, backoff_seconds: int) -> None:
    cur.execute("""UPDATE wf_mail_outbox SET attempts = attempts + 1, last_error = %s,
                          failed = CASE WHEN %s THEN now() END,
                          next_attempt = now() + make_interval(secs => %s)
                    WHERE id = %s""", (problem, give_up, backoff_seconds, mail_id))


def members_with_mail(cur, role_ids: list[str], excluded: list[str]) -> list[str]:
    """The mail addresses of the users seen holding any of these roles (the role's members)."""
    cur.execute("""SELECT DISTINCT email FROM wf_users
                    WHERE role_ids && %s AND email IS NOT NULL AND email <> '' AND NOT id = ANY(%s)
                    ORDER BY email""", (role_ids, excluded))
    return [row["email"] for row in cur.fetchall()]


def user_mail(cur, user_id: str) -> str | None:
    cur.execute("SELECT email FROM wf_users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return row["email"] if row and row["email"] else None
