"""SQL of managed directory accounts (`sm_td_managed_accounts`), their rotation history and queue.

Rows carry the table's columns plus their scanned account's directory fields (`username`,
`email`, `full_name`, `sam_account_name`, `source_id`, `security_id`, `additional_data`, `dn`,
`removed`), `api_state` (REMOVED while the scanned account is, else `state`), the domain's
`domain_name`, the policy's `policy_name`, `max_versions`, `max_concurrent_checkouts`,
`max_checkout_duration`, `rotate_on_release`, and `live_checkouts`, `locked_since`.
`find_*` return None when nothing matches.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from common.db import Database, fetch_page
from secrets_manager_service.accounts import queue_store
from secrets_manager_service.accounts.checkout_store import CHECKOUT_BESIDE, split_checkout
from secrets_manager_service.accounts.kinds import DIRECTORY, LIVE_CHECKOUT as LIVE
from secrets_manager_service.target_domains.scanned.store import keyword_filters, time_filters
from secrets_manager_service.target_domains.domains.store import rows

API_STATE = "CASE WHEN a.removed THEN 'REMOVED' ELSE m.state END"
_COLUMNS = f"""m.*, a.username, a.email, a.full_name, a.sam_account_name, a.source_id, a.security_id,
               a.additional_data, a.dn, a.removed, {API_STATE} AS api_state, d.name AS domain_name,
               d.enabled AS domain_enabled, p.name AS policy_name, p.max_versions, p.max_concurrent_checkouts,
               p.max_checkout_duration, p.rotate_on_release,
               (SELECT count(*) FROM sm_checkouts c WHERE c.managed_account_id = m.id AND {LIVE}) AS live_checkouts,
               (SELECT max(c.created) FROM sm_checkouts c WHERE c.managed_account_id = m.id AND {LIVE}) AS locked_since"""
_SOURCE = """sm_td_managed_accounts m JOIN sm_td_accounts a ON a.id = m.account_id
             JOIN sm_target_domains d ON d.id = m.domain_id JOIN sm_password_policies p ON p.id = m.password_policy_id"""
SORT_COLUMNS = {
    "username": "lower(a.username) {dir}, m.id",
    "state": f"{API_STATE} {{dir}}, lower(a.username), m.id",
    "created": "m.created {dir}, m.id",
    "updated": "m.updated {dir}, m.id",
}
SETTINGS = ("enabled", "rotation_enabled", "explicit_checkout", "disable_rdp_cert_auth", "password_policy_id", "comment")
HISTORY_KEPT = 50


def list_managed(db: Database, domain_id, *, keywords: list[str] = (), filters: dict | None = None, sortkey: str,
                 sortdir: str, offset: int, limit: int):
    filters = filters or {}
    where, params = ["m.domain_id = %(domain)s"], {"domain": domain_id}
    keyword_filters("a", keywords, where, params)
    time_filters("m", filters, where, params)
    if filters.get("state"):
        where.append(f"{API_STATE} = %(state)s")
        params["state"] = filters["state"]
    for flag in ("enabled", "rotation_enabled", "explicit_checkout"):
        if filters.get(flag) is not None:
            where.append(f"m.{flag} = %({flag})s")  # flag names are ours, never the client's
            params[flag] = filters[flag]
    return fetch_page(db, columns=_COLUMNS, source=_SOURCE, where=" AND ".join(where),
                      order=SORT_COLUMNS[sortkey].format(dir=sortdir), params=params, offset=offset, limit=limit)


def find_managed(db_or_cur, domain_id, managed_id) -> dict | None:
    rows = managed_in(db_or_cur, domain_id, [managed_id])
    return rows[0] if rows else None


def managed_in(db_or_cur, domain_id, ids: list, *, lock: bool = False) -> list[dict]:
    query = f"SELECT {_COLUMNS} FROM {_SOURCE} WHERE m.domain_id = %(domain)s AND m.id = ANY (%(ids)s)"
    if lock:
        query += " FOR UPDATE OF m"
    return rows(db_or_cur, query, {"domain": domain_id, "ids": list(ids)})


def find_by_id(db_or_cur, managed_id, *, lock: bool = False) -> dict | None:
    """The managed account whatever its domain (for checkouts and the worker)."""
    query = f"SELECT {_COLUMNS} FROM {_SOURCE} WHERE m.id = %(id)s" + (" FOR UPDATE OF m" if lock else "")
    found = rows(db_or_cur, query, {"id": managed_id})
    return found[0] if found else None


def find_checkout(db_or_cur, checkout_id, *, lock: bool = False) -> dict | None:
    """The live checkout of a managed account with this id and its account under "account" (as
    find_by_id's), in one statement; None if there is none. With `lock` (on a transaction's
    cursor), the account's row is locked as find_by_id locks it."""
    found = rows(db_or_cur, f"""SELECT {CHECKOUT_BESIDE}, {_COLUMNS} FROM sm_checkouts c
                                  JOIN {_SOURCE} ON m.id = c.managed_account_id
                                 WHERE c.id = %(id)s AND c.account_kind = '{DIRECTORY}' AND {LIVE}"""
                 + (" FOR UPDATE OF m" if lock else ""), {"id": checkout_id})
    return split_checkout(found[0]) if found else None


def insert_managed(cur, managed_id, domain_id, account_id, settings: dict, roles: list[dict], state: str,
                   by: str) -> None:
    columns = ", ".join(SETTINGS)
    values = ", ".join(f"%({c})s" for c in SETTINGS)
    cur.execute(
        f"""INSERT INTO sm_td_managed_accounts (id, domain_id, account_id, {columns}, access_roles, access_role_ids,
                                                state, author, updated_by)
            VALUES (%(id)s, %(domain)s, %(account)s, {values}, %(roles)s, %(role_ids)s, %(state)s, %(by)s, %(by)s)""",
        {**{c: settings[c] for c in SETTINGS}, "id": managed_id, "domain": domain_id, "account": account_id,
         "roles": Jsonb(roles), "role_ids": [r["id"] for r in roles], "state": state, "by": by})


def change(cur, domain_id, ids: list, changes: dict, roles: list[dict] | None, by: str) -> None:
    assignments = [f"{c} = %({c})s" for c in changes]
    params = {**changes, "domain": domain_id, "ids": list(ids), "by": by}
    if roles is not None:
        assignments += ["access_roles = %(roles)s", "access_role_ids = %(role_ids)s"]
        params.update(roles=Jsonb(roles), role_ids=[r["id"] for r in roles])
    if not assignments:
        return
    cur.execute(f"""UPDATE sm_td_managed_accounts SET {', '.join(assignments)}, updated = now(), updated_by = %(by)s
                     WHERE domain_id = %(domain)s AND id = ANY (%(ids)s)""", params)


def delete_managed(cur, domain_id, ids: list) -> int:
    cur.execute("DELETE FROM sm_td_managed_accounts WHERE domain_id = %(domain)s AND id = ANY (%(ids)s)",
                {"domain": domain_id, "ids": list(ids)})
    return cur.rowcount


def bind_to_endpoints(cur, managed_ids: list, fingerprints: list[str], *, only_if_unbound: bool = False) -> None:
    """The accounts' stored passwords were set for the endpoints `fingerprints` (drivers.binding)."""
    cur.execute(f"""UPDATE sm_td_managed_accounts SET bound_endpoints = %(fps)s
                     WHERE id = ANY (%(ids)s) {"AND bound_endpoints IS NULL" if only_if_unbound else ""}""",
                {"ids": list(managed_ids), "fps": fingerprints})


def set_state(cur, managed_id, state: str) -> None:
    cur.execute("UPDATE sm_td_managed_accounts SET state = %(state)s, updated = now() WHERE id = %(id)s",
                {"id": managed_id, "state": state})


def managed_ids(db: Database, domain_id) -> list:
    """The ids of the domain's managed accounts (whose Vault secrets go before the domain does)."""
    with db.cursor() as cur:
        cur.execute("SELECT id FROM sm_td_managed_accounts WHERE domain_id = %(id)s", {"id": domain_id})
        return [row["id"] for row in cur.fetchall()]


# --- rotation history ----------------------------------------------------------------

def add_history(cur, managed_id, *, version: int, trigger: str, status: str) -> None:
    """One event, newest first; only the last HISTORY_KEPT are kept."""
    cur.execute("""INSERT INTO sm_td_rotation_history (managed_account_id, version, trigger, status)
                   VALUES (%(id)s, %(version)s, %(trigger)s, %(status)s)""",
                {"id": managed_id, "version": version, "trigger": trigger, "status": status})
    cur.execute("""DELETE FROM sm_td_rotation_history WHERE managed_account_id = %(id)s AND id NOT IN (
                       SELECT id FROM sm_td_rotation_history WHERE managed_account_id = %(id)s
                        ORDER BY id DESC LIMIT %(kept)s)""", {"id": managed_id, "kept": HISTORY_KEPT})


def histories(db: Database, ids: list) -> dict:
    """{managed id: [event]} newest first."""
    with db.cursor() as cur:
        cur.execute("""SELECT managed_account_id, version, rotated, trigger, status FROM sm_td_rotation_history
                        WHERE managed_account_id = ANY (%(ids)s) ORDER BY id DESC""", {"ids": list(ids)})
        found: dict = {}
        for row in cur.fetchall():
            found.setdefault(row.pop("managed_account_id"), []).append(row)
        return found


def live_checkouts(db: Database, ids: list) -> dict:
    """{managed id: [checkout row]} of the accounts' live checkouts, newest first."""
    with db.cursor() as cur:
        cur.execute(f"""SELECT c.* FROM sm_checkouts c WHERE c.managed_account_id = ANY (%(ids)s) AND {LIVE}
                         ORDER BY c.created DESC""", {"ids": list(ids)})
        found: dict = {}
        for row in cur.fetchall():
            found.setdefault(row["managed_account_id"], []).append(row)
        return found


# --- the rotation queue ------------------------------------------------------------------

def enqueue(cur, managed_id, trigger: str) -> None:
    """Queue a rotation due now; an explicit request restarts a queued one's retries."""
    queue_store.enqueue(cur, DIRECTORY, managed_id, trigger, restart=True)
