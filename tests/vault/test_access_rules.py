"""Who may read and see a secret is stated once (vault_service.secrets.rights) and used twice: in
SQL (store.MAY_READ, MAY_SEE: reads decide before they fetch anything) and in Python
(service.can_read, can_write: lists and writes). Every combination of owner, roles and scopes
gets the same answer from both, and the answer the rule says."""
from __future__ import annotations

import itertools

from common.auth import Principal
from vault_service.secrets import service, store

OWNER = "7b0c3c9e-5d8a-4a53-9a43-2f5d4a0c1a11"
OTHER = "1f9e2b6d-3c4a-4e8b-8d2f-6a7b8c9d0e12"


def _principal(sub: str, roles: tuple[str, ...], manager: bool) -> Principal:
    return Principal(sub=sub, scopes=frozenset({"vaultManage"} if manager else {"user"}), role_ids=frozenset(roles))


def test_sql_and_python_agree_on_who_reads_and_who_sees(vault_app):
    secrets = [{"owner_id": owner, "read_roles": read, "write_roles": write}
               for owner in ("", OWNER) for read in ([], ["r"]) for write in ([], ["w"])]
    callers = [(sub, roles, manager) for sub in (OWNER, OTHER) for roles in ((), ("r",), ("w",), ("r", "w"))
               for manager in (False, True)]
    with vault_app.extensions["db"].cursor() as cur:
        for secret, (sub, roles, manager) in itertools.product(secrets, callers):
            cur.execute(f"""SELECT {store.MAY_READ} AS reads, {store.MAY_SEE} AS sees
                              FROM (SELECT %(owner)s::text AS owner_id, %(read)s::text[] AS read_roles,
                                           %(write)s::text[] AS write_roles) s""",
                        {"owner": secret["owner_id"], "read": secret["read_roles"], "write": secret["write_roles"],
                         "a_roles": list(roles), "a_principal": sub, "a_manager": manager})
            row = cur.fetchone()
            principal = _principal(sub, roles, manager)
            reads = service.can_read(principal, secret)
            sees = manager or reads or service.can_write(principal, secret)
            assert (row["reads"], row["sees"]) == (reads, sees), (secret, sub, roles, manager)
            # and both say the rule as the contract puts it (not only each other's answer)
            shared = not secret["owner_id"]
            expected_reads = bool(set(roles) & set(secret["read_roles"])) if shared else sub == secret["owner_id"]
            expected_sees = manager or expected_reads or (shared and bool(set(roles) & set(secret["write_roles"])))
            assert (reads, sees) == (expected_reads, expected_sees), (secret, sub, roles, manager)
            if secret["owner_id"] and sub != OWNER:
                assert not reads  # a personal secret's data is its owner's alone, whatever the roles
