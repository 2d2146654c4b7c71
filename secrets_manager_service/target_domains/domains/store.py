"""SQL of target domains (`sm_target_domains`); their scan queue (`sm_td_scans`) is scans.store's.

Domain rows carry the table's columns plus `policy_name` (the auto-onboarding policy's).
`find_*` return None when nothing matches.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from common.db import Database, fetch_page

SETTINGS = ("name", "domain_name", "enabled", "periodic_scan", "periodic_scan_interval", "auto_onboarding",
            "auto_onboarding_policy_id", "endpoints", "comment")
_COLUMNS = "d.*, p.name AS policy_name"
_SOURCE = "sm_target_domains d LEFT JOIN sm_password_policies p ON p.id = d.auto_onboarding_policy_id"
SORT_COLUMNS = {
    "name": "lower(d.name) {dir}, d.id",
    "domain_name": "lower(d.domain_name) {dir}, lower(d.name), d.id",
    "created": "d.created {dir}, d.id",
    "updated": "d.updated {dir}, d.id",
}


def rows(db_or_cur, query: str, params: dict) -> list[dict]:
    """The rows of `query`, on a cursor of an open transaction or in autocommit on a Database."""
    if isinstance(db_or_cur, Database):
        with db_or_cur.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    db_or_cur.execute(query, params)
    return db_or_cur.fetchall()


def _params(settings: dict) -> dict:
    return {**{c: settings[c] for c in SETTINGS}, "endpoints": Jsonb(settings["endpoints"])}


def insert_domain(cur, domain_id, settings: dict, by: str) -> None:
    columns = ", ".join(SETTINGS)
    values = ", ".join(f"%({c})s" for c in SETTINGS)
    cur.execute(f"""INSERT INTO sm_target_domains (id, {columns}, author, updated_by)
                    VALUES (%(id)s, {values}, %(by)s, %(by)s)""", {**_params(settings), "id": domain_id, "by": by})


def update_domain(cur, domain_id, settings: dict, by: str) -> bool:
    assignments = ", ".join(f"{c} = %({c})s" for c in SETTINGS)
    cur.execute(f"UPDATE sm_target_domains SET {assignments}, updated = now(), updated_by = %(by)s WHERE id = %(id)s",
                {**_params(settings), "id": domain_id, "by": by})
    return cur.rowcount == 1


def find_domain(db_or_cur, domain_id, *, lock: bool = False) -> dict | None:
    query = f"SELECT {_COLUMNS} FROM {_SOURCE} WHERE d.id = %(id)s" + (" FOR UPDATE OF d" if lock else "")
    found = rows(db_or_cur, query, {"id": domain_id})
    return found[0] if found else None


def list_domains(db: Database, *, keywords: list[str] = (), flags: dict | None = None, sortkey: str, sortdir: str,
                 offset: int, limit: int):
    where, params = ["true"], {}
    for i, keyword in enumerate(keywords):
        where.append(f"strpos(lower(d.name || ' ' || d.domain_name || ' ' || d.comment), %(kw{i})s) > 0")
        params[f"kw{i}"] = keyword
    for flag, value in (flags or {}).items():
        where.append(f"d.{flag} = %({flag})s")  # flag names come from the schema, never from the client
        params[flag] = value
    return fetch_page(db, columns=_COLUMNS, source=_SOURCE, where=" AND ".join(where),
                      order=SORT_COLUMNS[sortkey].format(dir=sortdir), params=params, offset=offset, limit=limit)


def resolve(db: Database, names: list[str]) -> list[dict]:
    with db.cursor() as cur:
        cur.execute("""SELECT id, name FROM sm_target_domains WHERE lower(name) = ANY (%(names)s)
                       ORDER BY lower(name)""", {"names": [n.lower() for n in names]})
        return cur.fetchall()


def delete_domain(cur, domain_id) -> bool:
    """Delete the domain with its accounts, checkouts, queued scans and rotations (the foreign keys cascade)."""
    cur.execute("DELETE FROM sm_target_domains WHERE id = %(id)s", {"id": domain_id})
    return cur.rowcount == 1
