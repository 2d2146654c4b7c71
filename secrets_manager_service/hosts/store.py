"""SQL for hosts and their managed accounts.

Host rows have the columns of `sm_hosts`; account rows those of `sm_accounts`.
`find_*` return None when nothing matches.
"""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from common import errors
from common.db import Database

_HOST_SETTINGS = (
    "address", "port", "operating_system", "protocol", "certificate_validation_options", "use_main_account",
    "main_account", "password_policy_id", "script_template_id",
)
_ACCOUNT_COLUMNS = "id, host_id, account, last_rotated, last_error, last_error_details, created, created_by, updated"


def find_host(db: Database, host_id) -> dict | None:
    with db.cursor() as cur:
        cur.execute("SELECT * FROM sm_hosts WHERE id = %(id)s", {"id": host_id})
        return cur.fetchone()


def accounts_of(db: Database, host_id) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM sm_accounts WHERE host_id = %(id)s ORDER BY account",
                    {"id": host_id})
        return cur.fetchall()


def save_host(cur, host_id, settings: dict, access_roles: list[dict], by: str) -> None:
    """Insert the host, or replace every setting of an existing one (its creation stamp stays)."""
    columns = ", ".join(_HOST_SETTINGS)
    values = ", ".join(f"%({c})s" for c in _HOST_SETTINGS)
    replaced = ", ".join(f"{c} = excluded.{c}" for c in _HOST_SETTINGS)
    params = {c: settings[c] for c in _HOST_SETTINGS}
    params.update(id=host_id, by=by, roles=Jsonb(access_roles), role_ids=[r["id"] for r in access_roles])
    try:
        cur.execute(
            f"""INSERT INTO sm_hosts (id, {columns}, access_roles, access_role_ids, created_by, updated_by)
                VALUES (%(id)s, {values}, %(roles)s, %(role_ids)s, %(by)s, %(by)s)
                ON CONFLICT (id) DO UPDATE SET {replaced}, access_roles = excluded.access_roles,
                       access_role_ids = excluded.access_role_ids, updated = now(), updated_by = excluded.updated_by""",
            params,
        )
    except psycopg.errors.ForeignKeyViolation:
        # The policy or template was deleted since the service checked it.
        raise errors.InvalidRequestData("the password policy or script template does not exist",
                                        property="metadata") from None


def sync_accounts(cur, host_id, accounts: list[str], by: str) -> None:
    """Make the host's accounts exactly `accounts`: add the new ones, drop the others, keep the rest as they are."""
    cur.execute("DELETE FROM sm_accounts WHERE host_id = %(host)s AND NOT (account = ANY (%(accounts)s))",
                {"host": host_id, "accounts": accounts})
    if accounts:
        cur.execute(
            """INSERT INTO sm_accounts (id, host_id, account, created_by)
               SELECT gen_random_uuid(), %(host)s, account, %(by)s FROM unnest(%(accounts)s::text[]) AS t (account)
               ON CONFLICT (host_id, account) DO NOTHING""",
            {"host": host_id, "by": by, "accounts": accounts},
        )


def bind_accounts(cur, host_id, accounts: list[str], fingerprint: str) -> None:
    """The passwords just stored for `accounts` were set for the host endpoint `fingerprint`
    (drivers.binding): they go nowhere else."""
    cur.execute("""UPDATE sm_accounts SET bound_endpoint = %(fp)s
                    WHERE host_id = %(host)s AND account = ANY (%(accounts)s)""",
                {"host": host_id, "accounts": accounts, "fp": fingerprint})


def delete_host(cur, host_id) -> bool:
    """Delete the host with its accounts, checkouts and queued rotations; False if it did not exist."""
    cur.execute("DELETE FROM sm_hosts WHERE id = %(id)s", {"id": host_id})
    return cur.rowcount == 1


def find_account(db: Database, host_id, account: str) -> dict | None:
    """The account with its policy's max_versions and its host's endpoint (protocol, address, port,
    certificate_validation_options)."""
    with db.cursor() as cur:
        cur.execute(
            """SELECT a.id, a.host_id, a.account, p.max_versions, h.protocol, h.address, h.port,
                      h.certificate_validation_options
                 FROM sm_accounts a JOIN sm_hosts h ON h.id = a.host_id
                 JOIN sm_password_policies p ON p.id = h.password_policy_id
                WHERE a.host_id = %(host)s AND a.account = %(account)s""",
            {"host": host_id, "account": account},
        )
        return cur.fetchone()


def touch_account(cur, account_id) -> None:
    cur.execute("UPDATE sm_accounts SET updated = now() WHERE id = %(id)s", {"id": account_id})
