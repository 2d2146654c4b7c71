"""SQL for secrets and their versions; shared by the v1 and the versioned API.

Rows are dicts with the columns of `vault_secrets`, plus `read_roles_named` /
`write_roles_named` (the roles with their registry names) and, where a version is
joined, `v_*` columns. `find_*` return None when nothing matches.
"""
from __future__ import annotations

import json

from psycopg import sql
from psycopg.types.json import Jsonb

from common import audit, search_tokens
from common.db import DURABLE_COMMIT, Database, fetch_counted_page, fetch_page, like_escaped, write_alone
from common.timefmt import rfc3339_sql
from vault_service.names import RESERVED_OWNER
from vault_service.secrets import rights
from vault_service.secrets.rights import SHARED  # noqa: F401  (owner_id of the shared namespace; callers name it here)


# A role list with its registry entries, in the secret's order, as [[id, name, 'true'|'false'], ...]
# (roles not in the registry left out). A text array costs the database and psycopg far less
# than the same built as jsonb (about a quarter of a v1 read's statement); service.named_roles()
# makes the objects the API shows. Linear in the list's length: the list is walked once with
# its positions and joined to the registry (an array_position() per role, as before, made a
# secret holding 20,000 roles, older data, take longer than the statement timeout); a role
# listed twice (older data written by SQL) is shown once, at its first position. Each role is
# looked up by its key (the OFFSET 0 keeps the lookup a lookup): a join left to the planner
# hashed the whole registry for every row shown, 2,100 roles x 2 lists x 50 rows, 30 ms of a
# page at a million secrets.
_NAMED_ROLES = """
    ARRAY(SELECT ARRAY[u.id, r.name, r.deleted::text]
            FROM (SELECT DISTINCT ON (u.id) u.id, u.pos FROM unnest(s.{col}) WITH ORDINALITY AS u(id, pos)
                   ORDER BY u.id, u.pos) u,
                 LATERAL (SELECT r.name, r.deleted FROM vault_roles r WHERE r.id = u.id OFFSET 0) r
           ORDER BY u.pos) AS {col}_named"""

_BARE_COLUMNS = (
    "s.id, s.owner_id, s.name, s.read_roles, s.write_roles, s.author, s.updated_by, s.created, s.updated, "
    "s.dek_key_id, s.dek_wrapped, s.current_version, s.max_versions, s.delete_version_after, "
    "s.cas_required, s.custom_metadata"
)
# What reads render: the bare columns plus the roles with their registry names.
_SECRET_COLUMNS = (
    _BARE_COLUMNS + ", " + _NAMED_ROLES.format(col="read_roles") + ", " + _NAMED_ROLES.format(col="write_roles")
)

# A version is live while it is neither destroyed nor past its deletion time (a version scheduled
# for destruction has one: it is deleted until the schedule is cancelled).
LIVE = "(v.destroyed = false AND (v.deletion_time IS NULL OR v.deletion_time > now()))"
# A scheduled destruction whose time has come: destroyed when the secret is next touched, or by
# `vault-admin destroy-due`, whichever comes first (destroy_due).
DUE = "(v.destroy_at <= now())"

# The newest live version, or live version %(version)s (PrivX v2 reads) ...
_NEWEST_LIVE = f"""{LIVE} AND (%(version)s::int IS NULL OR v.version = %(version)s::int)
            ORDER BY v.version DESC LIMIT 1"""
# ... or exactly version %(version)s, else the current one, live or not (HashiCorp KV v2 reads:
# no fallback to an older version; a deleted or destroyed one is reported as such).
_EXACT = "v.version = coalesce(nullif(%(version)s::int, 0), s.current_version)"

DEFAULT_MAX_VERSIONS = 10
# The mount's settings (vault_kv_config, one row) that apply to every shared secret:
# the delete_version_after a new version gets is the shorter non-zero one of the mount's and
# the secret's, none when the mount's is negative.
_MOUNT_JOIN = "LEFT JOIN vault_kv_config c ON s.owner_id = ''"
_EFFECTIVE_DELETE_AFTER = """CASE
           WHEN coalesce(c.delete_version_after, 0) < 0 THEN 0
           WHEN coalesce(c.delete_version_after, 0) = 0 THEN s.delete_version_after
           WHEN s.delete_version_after = 0 THEN c.delete_version_after
           ELSE least(s.delete_version_after, c.delete_version_after) END"""


def _with_version(secret_columns: str, *, exact: bool = False) -> str:
    """The secret with a version joined as v_* (see _NEWEST_LIVE and _EXACT), plus v_live."""
    return f"""
    SELECT {secret_columns},
           v.version AS v_version, v.ciphertext AS v_ciphertext, v.created AS v_created,
           v.created_by AS v_created_by, v.deletion_time AS v_deletion_time, v.destroyed AS v_destroyed,
           coalesce({LIVE}, false) AS v_live, coalesce({DUE}, false) AS v_due
      FROM vault_secrets s
      LEFT JOIN LATERAL (
           SELECT * FROM vault_secret_versions v
            WHERE v.secret_id = s.id AND {_EXACT if exact else _NEWEST_LIVE}) v ON true
     WHERE s.owner_id = %(owner)s AND s.name = %(name)s"""


_WITH_VERSION = _with_version(_SECRET_COLUMNS)

def listed_time(column: str) -> str:
    """A timestamptz as common.timefmt.rfc3339 writes it (whole seconds, UTC, `Z`; a year
    before 1000 unpadded, as strftime's %Y), made by the database: a list shows two a row."""
    return rfc3339_sql(column)


# What a listed secret renders and unseals with (service.list_page, sealing.unseal), and no more:
# a page of a hundred rows parses each column a hundred times (issue 25). The id as text: it is
# only ever the data key's associated data, which takes its text; the times as their text.
_LISTED_COLUMNS = (
    "s.id::text AS id, s.owner_id, s.name, s.read_roles, s.write_roles, s.author, s.updated_by, "
    f"{listed_time('s.created')} AS created, {listed_time('s.updated')} AS updated, "
    "s.dek_key_id, s.dek_wrapped, " + _NAMED_ROLES.format(col="read_roles") + ", " + _NAMED_ROLES.format(col="write_roles")
)


def _audited_read(*, secret_columns: str, outcome: str, returned: str, exact: bool = False) -> str:
    """One statement for a read and its audit event, so a read costs one round trip.

    `outcome` decides (in SQL) how the read ends; the event is inserted whatever it is.
    Only `returned` comes back: a read parses and ships just what it renders.
    """
    return f"""
        WITH found AS ({_with_version(secret_columns, exact=exact)}),
        decided AS (SELECT f.*, {outcome} AS outcome FROM (SELECT 1) AS one LEFT JOIN found f ON true),
        logged AS (
            INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
            SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, %(a_action)s, %(a_target)s, d.outcome,
                   jsonb_build_object('version', coalesce(d.v_version, %(version)s::int))
              FROM decided d)
        SELECT {returned}, outcome FROM decided"""


_SEALING_COLUMNS = "id, dek_key_id, dek_wrapped, v_version, v_ciphertext"  # what unseal() needs

# Who may read and who sees the secret `s`, for the caller's %(a_roles)s, %(a_principal)s (its sub)
# and %(a_manager)s (admin or vaultManage): the rule of vault_service.secrets.rights, in SQL.
MAY_READ = rights.sql("read")
MAY_SEE = rights.sql_sees()

# A v1 read, one statement with its audit event (failing closed, like every read). Access is
# decided first, from the secret's row alone; only a read that will succeed goes on to the role
# names and the ciphertext. So a secret the caller may not see costs what a missing one does
# (both are 404): the time of an answer does not tell that such a secret exists, however many
# roles or versions it holds. A 'denied' read (403: the caller may see the secret) fetches
# nothing either: it returns nothing.
V1_READ = f"""
    WITH decided AS MATERIALIZED (
        SELECT s.id, CASE WHEN s.id IS NULL THEN 'not_found'
                          WHEN {MAY_READ} THEN 'success'
                          WHEN {MAY_SEE} THEN 'denied'
                          ELSE 'not_found' END AS outcome
          FROM (SELECT 1) AS one
          LEFT JOIN vault_secrets s ON s.owner_id = %(owner)s AND s.name = %(name)s),
    found AS MATERIALIZED (
        SELECT {_SECRET_COLUMNS}, v.version AS v_version, v.ciphertext AS v_ciphertext
          FROM decided d
          JOIN vault_secrets s ON s.id = d.id AND d.outcome = 'success'
          LEFT JOIN LATERAL (
               SELECT v.version, v.ciphertext FROM vault_secret_versions v
                WHERE v.secret_id = s.id AND {_NEWEST_LIVE}) v ON true),
    logged AS (
        INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
        SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, %(a_action)s, %(a_target)s, d.outcome,
               jsonb_build_object('version', (SELECT f.v_version FROM found f))
          FROM decided d)
    SELECT f.id, f.dek_key_id, f.dek_wrapped, f.v_version, f.v_ciphertext, f.owner_id, f.name, f.author,
           f.updated_by, f.created, f.updated, f.read_roles_named, f.write_roles_named, d.outcome
      FROM decided d LEFT JOIN found f ON true"""
# A versioned read: its callers hold the scope already, so found (and live) is all that
# matters, and no role names are looked up.
V2_READ = _audited_read(
    secret_columns="s.id, s.dek_key_id, s.dek_wrapped",
    outcome="CASE WHEN f.v_version IS NULL THEN 'not_found' ELSE 'success' END",
    returned=f"{_SEALING_COLUMNS}, v_created, v_deletion_time, v_destroyed",
)
# A HashiCorp KV v2 read: exactly the version asked for (else the current one); a deleted or
# destroyed one comes back with v_live false (and outcome not_found) so it can be described.
KV_READ = _audited_read(
    secret_columns="s.id, s.dek_key_id, s.dek_wrapped, s.custom_metadata",
    outcome="CASE WHEN f.v_live THEN 'success' ELSE 'not_found' END",
    returned=f"{_SEALING_COLUMNS}, v_created, v_deletion_time, v_destroyed, v_live, v_due, custom_metadata",
    exact=True,
)


def find_secret_audited(db: Database, owner: str, name: str, *, version: int | None, event: dict,
                        statement: str, roles: list[str] | None = None, manager: bool = False) -> dict:
    """A read (V1_READ or V2_READ) with its audit event; the row always exists and carries
    `outcome` (its `id` is None when nothing was found). V1_READ needs the caller's `roles`."""
    params = {"owner": owner, "name": name, "version": version,
              **{f"a_{key}": event[key] for key in ("service", "request_id", "principal", "action", "target")}}
    if roles is not None:
        params.update(a_roles=roles, a_manager=manager)
    with audit.failing_closed(event["action"], event["target"]), db.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchone()


def find_visible(db: Database, owner: str, name: str, *, roles: list[str], principal: str, manager: bool,
                 named: bool) -> dict | None:
    """The secret if the caller may see it (MAY_SEE), else None. Visibility is decided from the
    row alone before anything else is read, so a hidden secret costs what a missing one does;
    `named`: with its roles' registry names (what metadata renders)."""
    with db.cursor() as cur:
        cur.execute(
            f"""WITH visible AS MATERIALIZED (
                    SELECT s.id FROM vault_secrets s WHERE s.owner_id = %(owner)s AND s.name = %(name)s AND {MAY_SEE})
                SELECT {_SECRET_COLUMNS if named else _BARE_COLUMNS} FROM visible JOIN vault_secrets s ON s.id = visible.id""",
            {"owner": owner, "name": name, "a_roles": roles, "a_principal": principal, "a_manager": manager},
        )
        return cur.fetchone()


def find_secret(db: Database, owner: str, name: str, *, version: int | None = None) -> dict | None:
    """The secret with its newest live version (or live version `version`) joined as v_*."""
    with db.cursor() as cur:
        cur.execute(_WITH_VERSION, {"owner": owner, "name": name, "version": version})
        return cur.fetchone()


def lock_secret(cur, owner: str, name: str) -> dict | None:
    """The secret row (without role names: writers never render them), locked for the transaction,
    with what the mount's settings make of it: `mount_cas_required`, `effective_delete_after`;
    `has_due_versions` (a scheduled destruction whose time has come), so that a write pays for
    destroy_due only when there is something to destroy, not with a round trip of its own; and
    `row_version`, which changes with every change of the row (see add_version)."""
    cur.execute(_for_write(_BARE_COLUMNS) + " FOR UPDATE OF s", {"owner": owner, "name": name})
    return cur.fetchone()


def secret_for_write(cur, owner: str, name: str) -> dict | None:
    """What a new version needs of lock_secret()'s row (the id as text), without the lock, for a
    write that is one statement on its own (add_version with `unchanged_since`): the row read is
    still the secret's then, or nothing is written."""
    cur.execute(_SECRET_FOR_WRITE, {"owner": owner, "name": name})
    return cur.fetchone()


def _for_write(secret_columns: str) -> str:
    # The row's xmin (the transaction that wrote this version of it) tells whether a row is still
    # the one read: every UPDATE of it writes a new version, with a new xmin; a lock does not.
    return f"""SELECT {secret_columns}, s.xmin::text AS row_version,
                      coalesce(c.cas_required, false) AS mount_cas_required,
                      {_EFFECTIVE_DELETE_AFTER} AS effective_delete_after,
                      EXISTS (SELECT 1 FROM vault_secret_versions v WHERE v.secret_id = s.id AND {DUE}) AS has_due_versions
                 FROM vault_secrets s {_MOUNT_JOIN}
                WHERE s.owner_id = %(owner)s AND s.name = %(name)s"""


# Each column is parsed on every write: only what add_version, the check-and-set rules, sealing
# and the answer use (issue 25).
_SECRET_FOR_WRITE = _for_write("s.id::text AS id, s.dek_key_id, s.dek_wrapped, s.current_version, s.max_versions, "
                               "s.cas_required, s.custom_metadata")


def insert_secret(cur, *, secret_id: str, owner: str, name: str, read_roles: list[str], write_roles: list[str],
                  author: str, dek_key_id: str, dek_wrapped: bytes, if_absent: bool = False) -> bool:
    """Insert a new secret; with if_absent, False (no error) when the name is taken."""
    conflict = "ON CONFLICT (owner_id, name) DO NOTHING" if if_absent else ""
    cur.execute(
        # A new shared secret starts with the mount's default max_versions.
        f"""INSERT INTO vault_secrets (id, owner_id, name, read_roles, write_roles, author, updated_by, dek_key_id,
                                       dek_wrapped, max_versions)
            VALUES (%(id)s, %(owner)s, %(name)s, %(read)s, %(write)s, %(author)s, %(author)s, %(kid)s, %(wrapped)s,
                    coalesce((SELECT nullif(c.max_versions, 0) FROM vault_kv_config c WHERE %(owner)s = ''),
                             {DEFAULT_MAX_VERSIONS}))
            {conflict}""",
        {"id": secret_id, "owner": owner, "name": name, "read": read_roles, "write": write_roles,
         "author": author, "kid": dek_key_id, "wrapped": dek_wrapped},
    )
    return cur.rowcount == 1


def add_version(cur, secret: dict, *, version: int, ciphertext: bytes, created_by: str, entry_keys: list[str],
                description: str = "", password_spec: dict | None = None, audit_event: dict | None = None,
                unchanged_since: str | None = None) -> dict | None:
    """Write `version` (its data's sorted `entry_keys`, never a value), make it current, drop
    versions past max_versions and, if given, record `audit_event` — one statement, so one round
    trip; returns the version row.

    In the caller's transaction (the secret locked by lock_secret); or, with `unchanged_since`
    (the `row_version` secret_for_write read), as a transaction of its own on an autocommit cursor
    (common.db.write_alone: durable, one round trip instead of BEGIN, the lock, this and COMMIT)
    that writes only if the secret's row is still the one read: None, and nothing written, when
    another change came between (the caller then takes the lock and decides again)."""
    event = audit_event or {}
    params = {"id": secret["id"], "version": version, "ct": ciphertext, "by": created_by,
              "keys": json.dumps(sorted(entry_keys)), "description": description,
              "spec": Jsonb(password_spec) if password_spec is not None else None,
              "dva": secret["effective_delete_after"], "max": secret["max_versions"], "row_version": unchanged_since,
              **{f"a_{key}": event.get(key) for key in ("service", "request_id", "principal", "action", "target")}}
    with audit.failing_closed(event.get("action", "secret.write"), event.get("target", "")):
        if unchanged_since is None:
            cur.execute(_ADD_VERSION, params)
        else:
            write_alone(cur, _ADD_VERSION, params)
        return cur.fetchone()


# Everything hangs on `bumped`: when the secret's row is not the one expected (`row_version`),
# nothing is written at all. The entry keys come as a JSON array: psycopg works out a Python list's
# array type element by element, which cost a write more than the rest of its parameters.
_ADD_VERSION = f"""
    WITH bumped AS (
        UPDATE vault_secrets s SET current_version = %(version)s, updated = now(), updated_by = %(by)s
         WHERE s.id = %(id)s AND (%(row_version)s::text IS NULL OR s.xmin::text = %(row_version)s::text)
           AND {DURABLE_COMMIT}
        RETURNING s.id),
    pruned AS (
        DELETE FROM vault_secret_versions v USING bumped b
         WHERE v.secret_id = b.id AND %(max)s > 0 AND v.version <= %(version)s - %(max)s),
    logged AS (
        INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
        SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, %(a_action)s, %(a_target)s, 'success',
               jsonb_build_object('version', %(version)s)
          FROM bumped WHERE %(a_action)s::text IS NOT NULL)
    INSERT INTO vault_secret_versions (secret_id, version, ciphertext, created_by, deletion_time,
                                       payload_entry_keys, description, password_spec)
    SELECT b.id, %(version)s, %(ct)s, %(by)s, CASE WHEN %(dva)s > 0 THEN now() + make_interval(secs => %(dva)s) END,
           ARRAY(SELECT e.key FROM jsonb_array_elements_text(%(keys)s::jsonb) WITH ORDINALITY AS e(key, n) ORDER BY e.n),
           %(description)s, %(spec)s
      FROM bumped b
    RETURNING version, created, deletion_time, destroyed"""


def prune_versions(cur, secret_id, max_versions: int, *, newest: int) -> None:
    """Permanently remove versions older than the newest `max_versions` (0 keeps all)."""
    if max_versions and newest > max_versions:
        cur.execute(
            "DELETE FROM vault_secret_versions WHERE secret_id = %(id)s AND version <= %(cutoff)s",
            {"id": secret_id, "cutoff": newest - max_versions},
        )


def update_roles(cur, secret_id, *, read_roles: list[str] | None, write_roles: list[str] | None, by: str) -> None:
    cur.execute(
        """UPDATE vault_secrets SET read_roles = coalesce(%(read)s, read_roles),
                  write_roles = coalesce(%(write)s, write_roles), updated = now(), updated_by = %(by)s
            WHERE id = %(id)s""",
        {"id": secret_id, "read": read_roles, "write": write_roles, "by": by},
    )


def update_settings(cur, secret_id, *, by: str, **settings) -> None:
    """Set max_versions / delete_version_after / cas_required / custom_metadata (None = keep)."""
    if settings.get("custom_metadata") is not None:
        settings["custom_metadata"] = Jsonb(settings["custom_metadata"])
    assignments = [
        sql.SQL("{col} = coalesce({val}, {col})").format(col=sql.Identifier(col), val=sql.Placeholder(col))
        for col in ("max_versions", "delete_version_after", "cas_required", "custom_metadata")
    ]
    cur.execute(
        sql.SQL("UPDATE vault_secrets SET {sets}, updated = now(), updated_by = %(by)s WHERE id = %(id)s").format(
            sets=sql.SQL(", ").join(assignments)),
        {"id": secret_id, "by": by, **settings},
    )


def delete_secret(cur, secret_id) -> None:
    cur.execute("DELETE FROM vault_secrets WHERE id = %(id)s", {"id": secret_id})


# A version's status, as Lockbox names it. A due destruction counts as done: the transaction that
# lists versions destroys due ones first (destroy_due), and this keeps any other reader truthful.
_STATUS = f"""CASE WHEN v.destroyed OR {DUE} THEN 'DESTROYED'
                   WHEN v.destroy_at IS NOT NULL THEN 'SCHEDULED_FOR_DESTRUCTION'
                   WHEN NOT {LIVE} THEN 'DELETED'
                   ELSE 'ACTIVE' END"""


def versions(cur_or_db, secret_id, *, newest_first: bool = False, after: int | None = None,
             limit: int | None = None) -> list[dict]:
    """Version rows with their lifecycle (`status`, `destroy_at`, `description`,
    `payload_entry_keys`, `password_spec`); `after` pages downwards when newest_first.

    No ciphertext, except `unlisted_ciphertext` for a version written before its entry keys were
    kept (migration 0006): the caller works them out once and stores them (set_entry_keys)."""
    order = "DESC" if newest_first else "ASC"
    query = f"""SELECT v.version, v.created, v.created_by, v.deletion_time, v.destroyed OR coalesce({DUE}, false) AS destroyed,
                       {_STATUS} AS status, CASE WHEN NOT coalesce({DUE}, false) THEN v.destroy_at END AS destroy_at,
                       v.description, v.password_spec,
                       CASE WHEN v.destroyed OR coalesce({DUE}, false) THEN '{{}}' ELSE v.payload_entry_keys END AS payload_entry_keys,
                       CASE WHEN v.payload_entry_keys IS NULL AND NOT v.destroyed THEN v.ciphertext END AS unlisted_ciphertext
                  FROM vault_secret_versions v
                 WHERE v.secret_id = %(id)s AND (%(after)s::int IS NULL OR v.version < %(after)s::int)
                 ORDER BY v.version {order} {'LIMIT %(limit)s' if limit else ''}"""
    params = {"id": secret_id, "after": after, "limit": limit}
    if isinstance(cur_or_db, Database):
        with cur_or_db.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    cur_or_db.execute(query, params)
    return cur_or_db.fetchall()


def soft_delete_versions(cur, secret_id, version_numbers: list[int]) -> None:
    cur.execute(
        """UPDATE vault_secret_versions SET deletion_time = now()
            WHERE secret_id = %(id)s AND version = ANY (%(versions)s) AND destroyed = false
              AND (deletion_time IS NULL OR deletion_time > now())""",
        {"id": secret_id, "versions": version_numbers},
    )


def set_entry_keys(cur, secret_id, version: int, entry_keys: list[str]) -> None:
    """Keep the entry keys of a version written before they were kept (unless destroyed meanwhile)."""
    cur.execute(
        """UPDATE vault_secret_versions SET payload_entry_keys = %(keys)s
            WHERE secret_id = %(id)s AND version = %(version)s AND payload_entry_keys IS NULL AND NOT destroyed""",
        {"id": secret_id, "version": version, "keys": sorted(entry_keys)},
    )


def undelete_versions(cur, secret_id, version_numbers: list[int]) -> None:
    """Restore versions (not destroyed ones, nor ones scheduled for destruction: only
    cancel-destroy, with destroy's scopes, brings those back); delete_version_after starts again
    from now."""
    cur.execute(
        f"""UPDATE vault_secret_versions SET deletion_time =
                   CASE WHEN e.after > 0 THEN now() + make_interval(secs => e.after) END
              FROM (SELECT {_EFFECTIVE_DELETE_AFTER} AS after FROM vault_secrets s {_MOUNT_JOIN}
                     WHERE s.id = %(id)s) e
            WHERE secret_id = %(id)s AND version = ANY (%(versions)s) AND destroyed = false AND destroy_at IS NULL""",
        {"id": secret_id, "versions": version_numbers},
    )


# --- the mount's settings ----------------------------------------------------

def mount_config(cur_or_db) -> dict:
    query = "SELECT max_versions, cas_required, delete_version_after FROM vault_kv_config"
    if isinstance(cur_or_db, Database):
        with cur_or_db.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()
    cur_or_db.execute(query)
    return cur_or_db.fetchone()


def update_mount_config(cur, *, by: str, max_versions: int | None, cas_required: bool | None,
                        delete_version_after: int | None) -> None:
    """Set the given settings (None = keep)."""
    cur.execute(
        """UPDATE vault_kv_config SET max_versions = coalesce(%(max)s, max_versions),
                  cas_required = coalesce(%(cas)s, cas_required),
                  delete_version_after = coalesce(%(dva)s, delete_version_after), updated = now(), updated_by = %(by)s""",
        {"max": max_versions, "cas": cas_required, "dva": delete_version_after, "by": by},
    )


# What destroying a version leaves of it (migration 0006's checks hold the same).
_DESTROYED = """ciphertext = NULL, destroyed = true, payload_entry_keys = '{}', destroy_at = NULL,
                deletion_time_on_cancel = NULL"""


def destroy_versions(cur, secret_id, version_numbers: list[int]) -> None:
    cur.execute(
        f"""UPDATE vault_secret_versions SET {_DESTROYED}
            WHERE secret_id = %(id)s AND version = ANY (%(versions)s) AND NOT destroyed""",
        {"id": secret_id, "versions": version_numbers},
    )


def schedule_destroy_versions(cur, secret_id, version_numbers: list[int], *, pending_period: int) -> None:
    """Schedule live or deleted versions (not destroyed or already scheduled ones) for destruction
    `pending_period` seconds from now. They count as deleted meanwhile: their deletion_time becomes now
    unless it has passed already, and cancel_destroy_versions gives the old one back."""
    cur.execute(
        f"""UPDATE vault_secret_versions v
               SET destroy_at = now() + make_interval(secs => %(pending)s),
                   deletion_time_on_cancel = v.deletion_time,
                   deletion_time = CASE WHEN {LIVE} THEN now() ELSE v.deletion_time END
             WHERE v.secret_id = %(id)s AND v.version = ANY (%(versions)s) AND NOT v.destroyed AND v.destroy_at IS NULL""",
        {"id": secret_id, "versions": version_numbers, "pending": pending_period},
    )


def cancel_destroy_versions(cur, secret_id, version_numbers: list[int]) -> None:
    """Return scheduled versions to their state before (live or deleted). The caller destroys due
    ones first (destroy_due, same transaction): their time has come, cancelling is too late."""
    cur.execute(
        """UPDATE vault_secret_versions
              SET deletion_time = deletion_time_on_cancel, deletion_time_on_cancel = NULL, destroy_at = NULL
            WHERE secret_id = %(id)s AND version = ANY (%(versions)s) AND destroy_at IS NOT NULL AND NOT destroyed""",
        {"id": secret_id, "versions": version_numbers},
    )


def destroy_due(cur, *, audit_event: dict, secret_id=None, limit: int | None = None) -> list[dict]:
    """Destroy versions whose destroy_at has come and record one audit event per secret, in one
    statement; returns `[{secret_id, version, name}]` destroyed.

    With `secret_id`: that secret's due versions (touched by a request, which holds its lock).
    Without: up to `limit` due versions of any secret, skipping rows another transaction holds
    (`vault-admin destroy-due`, any number of runs at once). `audit_event` gives the event's
    service, request_id and principal; its action and target are set here."""
    if secret_id is None and limit is None:
        raise ValueError("destroy_due: a secret_id or a limit")
    scope = "v.secret_id = %(id)s" if secret_id is not None else "true"
    locking = "" if secret_id is not None else "ORDER BY v.destroy_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
    with audit.failing_closed("secret.destroy_versions", "secret:"):
        cur.execute(
            f"""WITH due AS (
                    SELECT v.secret_id, v.version FROM vault_secret_versions v
                     WHERE {scope} AND {DUE} AND NOT v.destroyed {locking}),
                gone AS (
                    UPDATE vault_secret_versions v SET {_DESTROYED}
                      FROM due WHERE v.secret_id = due.secret_id AND v.version = due.version AND {DUE}
                    RETURNING v.secret_id, v.version),
                logged AS (
                    INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
                    SELECT %(a_service)s, %(a_request_id)s, %(a_principal)s, 'secret.destroy_versions',
                           'secret:' || s.name, 'success',
                           jsonb_build_object('versions', array_agg(g.version ORDER BY g.version), 'scheduled', true)
                      FROM gone g JOIN vault_secrets s ON s.id = g.secret_id GROUP BY s.id, s.name)
                SELECT g.secret_id, g.version, s.name FROM gone g JOIN vault_secrets s ON s.id = g.secret_id
                 ORDER BY g.secret_id, g.version""",
            {"id": secret_id, "limit": limit,
             **{f"a_{key}": audit_event.get(key) for key in ("service", "request_id", "principal")}},
        )
        return cur.fetchall()


def touch(cur, secret_id, by: str) -> None:
    cur.execute("UPDATE vault_secrets SET updated = now(), updated_by = %(by)s WHERE id = %(id)s",
                {"id": secret_id, "by": by})


# --- listing and search ----------------------------------------------------

SORT_COLUMNS = {"name": "s.name", "created": "s.created", "updated": "s.updated"}


def search(db: Database, *, owners: list[str] | None, shared: bool | None, visible_to_roles: list[str] | None,
           viewer: str | None, readable_roles: list[str] | None, writable_roles: list[str] | None,
           keywords: list[str], sortkey: str, sortdir: str, offset: int, limit: int,
           with_version: bool) -> tuple[int, list[dict]]:
    """Secrets matching every given condition, one page, with the total count.

    visible_to_roles: restrict to secrets where one of these roles reads or writes, or
    `viewer` owns (None = no restriction, for admins). readable_roles / writable_roles
    work the same way for the `readable` / `writable` / `accessible` filters.
    """
    # The reserved part is never listed: only the Secrets Manager reaches it, and not by search.
    # Conditions on the owner alone are kept apart ({t} = the table): they also select the counts.
    by_owner, params = ["{t}.owner_id <> %(reserved)s"], {"reserved": RESERVED_OWNER}
    if owners is not None:
        by_owner.append("{t}.owner_id = ANY (%(owners)s)")
        params["owners"] = owners
    if shared is True:
        by_owner.append("{t}.owner_id = ''")
    elif shared is False:
        by_owner.append("{t}.owner_id <> ''")
    where = [condition.format(t="s") for condition in by_owner]
    # Roles grant access to shared secrets only: a personal secret is its owner's, whatever its roles
    # say (the /user/{user_id}/... routes refuse everyone else), so lists and search must not show it.
    if visible_to_roles is not None:
        where.append("(s.owner_id = %(viewer)s OR (s.owner_id = '' AND (s.read_roles && %(vis)s OR s.write_roles && %(vis)s)))")
        params["vis"] = visible_to_roles
    if readable_roles is not None or writable_roles is not None:
        access = []
        if readable_roles is not None:
            access.append("s.read_roles && %(readable)s")
            params["readable"] = readable_roles
        if writable_roles is not None:
            access.append("s.write_roles && %(writable)s")
            params["writable"] = writable_roles
        where.append(f"(s.owner_id = %(viewer)s OR (s.owner_id = '' AND ({' OR '.join(access)})))")
    params["viewer"] = viewer or "\x00none"  # never equal to a real owner id
    # A keyword is a substring of the name, as LIKE so that the trigram index (migration 0004)
    # finds it. When roles narrow the search, their secrets are found first and their names
    # matched one by one (the `|| ''` keeps the trigram index out): a few thousand names are
    # matched sooner than a common word's tens of thousands of index entries are intersected,
    # and PostgreSQL, which guesses a LIKE to match almost nothing, would pick the index.
    # Otherwise a keyword with a part after a separator (`team-0003`) is found by the name's
    # segments (migration 0009, common.search_tokens), and the LIKE only rechecks those names:
    # trigrams that nearly every name has would be intersected too, were the index left in view.
    narrowed = visible_to_roles is not None or readable_roles is not None or writable_roles is not None
    segments = None if narrowed else search_tokens.segment_query([keyword.lower() for keyword in keywords])
    if segments:
        where.append("search_segments(lower(s.name)) @@ %(segments)s::tsquery")
        params["segments"] = segments
    name = "lower(s.name || '')" if narrowed or segments else "lower(s.name)"
    for i, keyword in enumerate(keywords):
        where.append(f"{name} LIKE %(kw{i})s")
        params[f"kw{i}"] = f"%{like_escaped(keyword.lower())}%"
    order = f"{SORT_COLUMNS[sortkey]} {'DESC' if sortdir == 'DESC' else 'ASC'}, s.owner_id, s.name"
    columns = _LISTED_COLUMNS
    if with_version:
        # Subqueries, not a join: computed for the page's rows only.
        columns += ", " + ", ".join(
            f"""(SELECT v.{col} FROM vault_secret_versions v WHERE v.secret_id = s.id AND {LIVE}
                  ORDER BY v.version DESC LIMIT 1) AS v_{col}""" for col in ("version", "ciphertext"))
    conditions = " AND ".join(where)
    params.update(offset=offset, limit=limit)
    # The page's ids are chosen first, then its rows are read with their columns (role names,
    # versions), so rows an offset skips cost nothing more than an index entry.
    if len(where) == len(by_owner):
        # By owner only (an admin's list): the page is a stretch of the (owner_id, name) index,
        # the total is the per-owner count (migration 0004), not a count of a million rows.
        total = ("SELECT coalesce(sum(c.n), 0)::bigint FROM vault_secret_counts c WHERE "
                 + " AND ".join(condition.format(t="c") for condition in by_owner))
        query = f"""WITH page AS MATERIALIZED (
                        SELECT s.id FROM vault_secrets s WHERE {conditions} ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s)
                    SELECT {columns}, ({total}) AS total FROM page JOIN vault_secrets s ON s.id = page.id ORDER BY {order}"""
    else:
        # Narrowed by roles or keywords: the matches are found once (bitmap scans of the role
        # and trigram indexes), counted, and the page is a top-N sort of them. Walking the name
        # index instead, hoping to meet a hundred matches early, reads a million rows when the
        # caller's secrets sort late.
        total = f"SELECT count(*) FROM vault_secrets s WHERE {conditions}"
        query = f"""WITH matches AS MATERIALIZED (
                        SELECT s.id, s.owner_id, s.name, s.created, s.updated FROM vault_secrets s WHERE {conditions}),
                    page AS MATERIALIZED (
                        SELECT s.id FROM matches s ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s)
                    SELECT {columns}, (SELECT count(*) FROM matches) AS total
                      FROM page JOIN vault_secrets s ON s.id = page.id ORDER BY {order}"""
    return fetch_counted_page(db, query, params, total_query=f"SELECT ({total}) AS total")


def child_keys(db: Database, owners: list[str], prefix: str) -> list[str]:
    """Direct children under `prefix` ('' = root) of the names kept under `owners`; a child with
    children ends in '/'."""
    start = f"{prefix}/" if prefix else ""
    with db.cursor() as cur:
        cur.execute(
            # One row with an array: a folder's 10,000 children are one value to parse, not 10,000 rows.
            """SELECT coalesce(array_agg(DISTINCT key ORDER BY key), '{}') AS keys
                 FROM (SELECT CASE WHEN strpos(rest, '/') > 0 THEN split_part(rest, '/', 1) || '/' ELSE rest END AS key
                         FROM (SELECT substr(name, length(%(start)s) + 1) AS rest FROM vault_secrets
                                WHERE owner_id = ANY (%(owners)s) AND name ~>=~ %(start)s AND name ~<~ %(end)s) t) k""",
            # The names under the folder are a range of the (owner_id, name text_pattern_ops) index
            # (byte order: just past `start`, which ends in '/', comes '0'), so only they are read,
            # however many there are elsewhere; and not prepared, like fetch_counted_page.
            {"start": start, "end": start[:-1] + "0" if start else "\U0010ffff", "owners": owners},
            prepare=False,
        )
        return cur.fetchone()["keys"]


# --- role registry ---------------------------------------------------------

def learn_roles(db: Database, roles: list[tuple[str, str]]) -> None:
    """Names from verified tokens are authoritative: insert or rename."""
    if not roles:
        return
    with db.cursor() as cur:
        cur.execute(
            """INSERT INTO vault_roles (id, name)
               SELECT * FROM unnest(%(ids)s::text[], %(names)s::text[])
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted = false
               WHERE vault_roles.name IS DISTINCT FROM excluded.name OR vault_roles.deleted""",
            {"ids": [r[0] for r in roles], "names": [r[1] for r in roles]},
        )


def known_roles(db: Database, *, keywords: list[str], offset: int, limit: int) -> tuple[int, list[dict]]:
    """(count, page of {id, name}) of the registry's roles, by name; each keyword (lower case) a
    substring of the id or the name."""
    where, params = ["NOT deleted"], {}
    for i, keyword in enumerate(keywords):
        where.append(f"(lower(id) LIKE %(k{i})s OR lower(name) LIKE %(k{i})s)")
        params[f"k{i}"] = f"%{like_escaped(keyword)}%"
    count, rows = fetch_page(db, columns="id, name", source="vault_roles", where=" AND ".join(where),
                             order="name, id", params=params, offset=offset, limit=limit)
    return count, [{"id": row["id"], "name": row["name"]} for row in rows]


def remember_roles(cur, roles: list[tuple[str, str]]) -> None:
    """Names sent by clients are used only for roles never seen before."""
    if roles:
        cur.execute(
            """INSERT INTO vault_roles (id, name)
               SELECT * FROM unnest(%(ids)s::text[], %(names)s::text[]) ON CONFLICT (id) DO NOTHING""",
            {"ids": [r[0] for r in roles], "names": [r[1] for r in roles]},
        )


def wrapped_keys_to_move(cur, *, not_key_id: str, after, batch: int) -> list[dict]:
    """Up to `batch` secrets after id `after` (None: from the start), in id order, whose data key
    is wrapped by another master key than `not_key_id`; locked, skipping rows a writer holds."""
    cur.execute(
        """SELECT id, dek_key_id, dek_wrapped FROM vault_secrets
            WHERE dek_key_id <> %(kid)s AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid)
            ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED""",
        {"kid": not_key_id, "after": after, "batch": batch},
    )
    return cur.fetchall()


def count_by_master_key(db: Database) -> dict[str, int]:
    """How many secrets' data keys each master key wraps."""
    with db.cursor() as cur:
        cur.execute("SELECT dek_key_id, count(*) AS n FROM vault_secrets GROUP BY dek_key_id ORDER BY dek_key_id")
        return {row["dek_key_id"]: row["n"] for row in cur.fetchall()}


def set_wrapped_key(cur, secret_id, key_id: str, wrapped: bytes) -> None:
    cur.execute("UPDATE vault_secrets SET dek_key_id = %(kid)s, dek_wrapped = %(w)s WHERE id = %(id)s",
                {"id": secret_id, "kid": key_id, "w": wrapped})
