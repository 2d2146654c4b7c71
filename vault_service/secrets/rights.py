"""Who may read, change and see a v1 secret, stated once.

The rule, as a table: a personal secret's rights are its owner's alone (no role reaches it);
a shared secret's right is held by the callers with one of the roles in its column below. A
caller sees a secret it may read or change, and managers (admin, vaultManage) see every one
(without its data). From this one statement come the SQL the reads decide with before they
fetch anything (store.MAY_READ, MAY_SEE) and the checks lists and writes make in Python
(service.can_read, can_write); tests/vault/test_access_rules.py runs both over every case.
"""
from __future__ import annotations

from common.auth import Principal

SHARED = ""  # owner_id of the shared namespace
# Which roles of a shared secret grant each right.
ROLE_COLUMN = {"read": "read_roles", "write": "write_roles"}
# The rights through which a caller who is not a manager sees a secret.
SEEN_THROUGH = ("read", "write")


def holds(right: str, principal: Principal, secret: dict) -> bool:
    """The rule in Python, for a secret's row (owner_id and the role columns)."""
    if secret["owner_id"] != SHARED:
        return secret["owner_id"] == principal.sub
    return principal.holds_any_role(secret[ROLE_COLUMN[right]])


def sql(right: str) -> str:
    """The rule in SQL for the secret row `s`, with %(a_roles)s (the caller's role ids, text[])
    and %(a_principal)s (its sub)."""
    return (f"CASE WHEN s.owner_id = '{SHARED}' THEN s.{ROLE_COLUMN[right]} && %(a_roles)s::text[] "
            f"ELSE s.owner_id = %(a_principal)s END")


def sql_sees() -> str:
    """Who sees the secret `s`, in SQL: a holder of any right of SEEN_THROUGH, or %(a_manager)s."""
    return "(" + " OR ".join(f"({sql(right)})" for right in SEEN_THROUGH) + " OR %(a_manager)s)"
