"""SQL for ACL policies, external groups and their change counter (migration 0005).

Every change bumps vault_acl_generation in its own transaction, so a process that sees the
counter move reloads everything it compiled (vault_service.acl.cache)."""
from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb

from common.db import Database

_BUMP = "UPDATE vault_acl_generation SET generation = generation + 1"
_GROUP_COLUMNS = "id, name, type, policies, metadata, created, updated"


def generation(db: Database) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT generation FROM vault_acl_generation")
        return cur.fetchone()["generation"]


def snapshot(db: Database) -> tuple[int, dict[str, list[dict]], dict[str, list[str]]]:
    """(generation, {policy: rules}, {group name: policy names}), the generation read first, so
    the rest is at least as new as it (a change in between only makes the next check reload)."""
    with db.cursor() as cur:
        cur.execute("SELECT generation FROM vault_acl_generation")
        counter = cur.fetchone()["generation"]
        cur.execute("SELECT name, rules FROM vault_acl_policies")
        policies = {row["name"]: row["rules"] for row in cur.fetchall()}
        cur.execute("SELECT name, policies FROM vault_acl_groups")
        groups = {row["name"]: list(row["policies"]) for row in cur.fetchall()}
    return counter, policies, groups


# --- policies ---------------------------------------------------------------------

def find_policy(db: Database, name: str) -> dict | None:
    with db.cursor() as cur:
        cur.execute("SELECT name, policy FROM vault_acl_policies WHERE name = %(name)s", {"name": name})
        return cur.fetchone()


def policy_names(db: Database) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT name FROM vault_acl_policies ORDER BY name")
        return [row["name"] for row in cur.fetchall()]


def upsert_policy(cur, *, name: str, text: str, rules: list[dict], by: str) -> None:
    cur.execute(
        """INSERT INTO vault_acl_policies (name, policy, rules, updated_by) VALUES (%(name)s, %(text)s, %(rules)s, %(by)s)
           ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, rules = excluded.rules, updated = now(),
                                            updated_by = excluded.updated_by""",
        {"name": name, "text": text, "rules": Jsonb(rules), "by": by})
    cur.execute(_BUMP)


def delete_policy(cur, name: str) -> bool:
    return _delete(cur, "vault_acl_policies", name)


def _delete(cur, table: str, name: str) -> bool:
    """Delete the row of `table` (one of ours) named `name`; whether there was one."""
    cur.execute(f"DELETE FROM {table} WHERE name = %(name)s", {"name": name})
    deleted = cur.rowcount > 0
    if deleted:
        cur.execute(_BUMP)
    return deleted


# --- groups -----------------------------------------------------------------------

def find_group(db_or_cur, name: str, *, lock: bool = False) -> dict | None:
    query = f"SELECT {_GROUP_COLUMNS} FROM vault_acl_groups WHERE name = %(name)s" + (" FOR UPDATE" if lock else "")
    if isinstance(db_or_cur, Database):
        with db_or_cur.cursor() as cur:
            cur.execute(query, {"name": name})
            return cur.fetchone()
    db_or_cur.execute(query, {"name": name})
    return db_or_cur.fetchone()


def group_names(db: Database) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT name FROM vault_acl_groups ORDER BY name")
        return [row["name"] for row in cur.fetchall()]


def insert_group(cur, *, name: str, group_type: str, policies: list[str], metadata: dict, by: str) -> str | None:
    """The new group's id; None if another request created one of that name meanwhile."""
    group_id = str(uuid.uuid4())
    cur.execute(
        """INSERT INTO vault_acl_groups (id, name, type, policies, metadata, updated_by)
           VALUES (%(id)s, %(name)s, %(type)s, %(policies)s, %(metadata)s, %(by)s) ON CONFLICT (name) DO NOTHING""",
        {"id": group_id, "name": name, "type": group_type, "policies": policies, "metadata": Jsonb(metadata),
         "by": by})
    if cur.rowcount == 0:
        return None
    cur.execute(_BUMP)
    return group_id


def update_group(cur, group_id, *, policies: list[str] | None, metadata: dict | None, by: str) -> None:
    """Set the given fields (None = keep)."""
    cur.execute(
        """UPDATE vault_acl_groups SET policies = coalesce(%(policies)s, policies),
                  metadata = coalesce(%(metadata)s, metadata), updated = now(), updated_by = %(by)s
            WHERE id = %(id)s""",
        {"id": group_id, "policies": policies, "metadata": None if metadata is None else Jsonb(metadata), "by": by})
    cur.execute(_BUMP)


def delete_group(cur, name: str) -> bool:
    return _delete(cur, "vault_acl_groups", name)
