"""GET /roles (ours): the roles the Vault's registry knows, so that a user can choose read and
write roles by name; and a secret given a role nobody holds can always be repaired by an admin."""
from __future__ import annotations

import time

from tests import support
from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique
from vault_service.app import create_app


def test_roles_learnt_from_tokens_are_listed_by_name(client, tokens):
    tag = unique("rolelist").lower()
    roles = [{"id": f"{tag}-id-{i}", "name": f"{tag} {name}"} for i, name in enumerate(("ops", "dev", "audit"))]
    client.get(f"{V1}/secrets", headers=tokens.headers("user", roles=roles))  # the Vault learns them
    listing = client.get(f"{V1}/roles", query_string={"keywords": tag}, headers=tokens.headers("user"))
    assert listing.status_code == 200
    assert listing.json == {"count": 3, "items": [roles[2], roles[1], roles[0]]}  # by name
    # Each keyword is a substring of the id or of the name (any case); all must match.
    by_id = client.get(f"{V1}/roles", query_string={"keywords": f"{tag}-ID-1"}, headers=tokens.headers("admin"))
    assert by_id.json == {"count": 1, "items": [roles[1]]}
    both = client.get(f"{V1}/roles", query_string={"keywords": f"{tag},AUD"}, headers=tokens.headers("vaultManage"))
    assert both.json == {"count": 1, "items": [roles[2]]}
    page = client.get(f"{V1}/roles", query_string={"keywords": tag, "offset": 1, "limit": 1},
                      headers=tokens.headers("user"))
    assert page.json == {"count": 3, "items": [roles[1]]}
    # LIKE's wildcards are plain characters in a keyword.
    assert client.get(f"{V1}/roles", query_string={"keywords": f"{tag}%"}, headers=tokens.headers("user")).json == {
        "count": 0, "items": []}


def test_roles_need_a_user_admin_or_vault_manage_token(client, tokens):
    assert client.get(f"{V1}/roles").status_code == 401
    assert_error(client.get(f"{V1}/roles", headers=tokens.headers("service")), 403, "PERMISSION_DENIED")
    assert_error(client.get(f"{V1}/roles", query_string={"limit": 0}, headers=tokens.headers("user")), 400,
                 "VALUE_OUT_OF_BOUNDS", "limit")


def test_an_admin_can_always_repair_a_secrets_roles(client, tokens):
    """A role id that no one holds (a typo, say) makes a secret unreadable to everyone; the API
    still accepts it (the contract), and an admin, who needs no role, can put the right ones."""
    readers = new_role("readers")
    name = create_shared(client, tokens, read_roles=[{"id": "ROLE_ID"}], write_roles=[{"id": "ROLE_ID"}],
                         data={"password": "pw"})
    reader = tokens.headers("user", roles=[readers])
    assert client.get(f"{V1}/secrets/{name}", headers=reader).status_code == 404  # unreadable to the role's holders
    repaired = client.put(f"{V1}/secrets/{name}", headers=tokens.headers("admin"),
                          json={"read_roles": [readers], "write_roles": [readers]})
    assert repaired.status_code == 200
    read = client.get(f"{V1}/secrets/{name}", headers=reader)
    assert read.status_code == 200 and read.json["data"] == {"password": "pw"}
    assert [r["id"] for r in read.json["read_roles"]] == [readers["id"]]


# --- role learning: the request pipeline's step after authentication (common.auth.current_principal)

def test_roles_are_learnt_once_per_token_and_process(client, tokens, sql):
    role = new_role("learnt-once")
    first_token = tokens.headers("user", roles=[role])
    assert client.get(f"{V1}/roles", headers=first_token).status_code == 200
    assert sql.execute("DELETE FROM vault_roles WHERE id = %s", [role["id"]]).rowcount == 1
    # A token this process knows costs no query: its roles are not written again ...
    assert client.get(f"{V1}/roles", headers=first_token).status_code == 200
    assert sql.execute("SELECT count(*) FROM vault_roles WHERE id = %s", [role["id"]]).fetchone()[0] == 0
    # ... and a new one's are.
    assert client.get(f"{V1}/roles", headers=tokens.headers("user", roles=[role])).status_code == 200
    assert sql.execute("SELECT name FROM vault_roles WHERE id = %s", [role["id"]]).fetchone()[0] == role["name"]


def test_a_database_outage_while_learning_roles_changes_no_answer(vault_db, vault_config, tokens):
    """A new token's roles cannot be recorded while the database is down. That decides no
    answer: a read that needs the database is its 503 (under /v1/ too, where a failed
    authentication is a 403), a route that needs none answers, and the token's next request,
    the database back, learns the roles."""
    link, through_link = support.cuttable_database(vault_db)
    app = create_app({**vault_config, "DATABASE_URL": through_link, "DB_POOL_TIMEOUT_SECONDS": "1"})
    try:
        client = app.test_client()
        known = tokens.headers("user", roles=[new_role("known")])
        assert client.get(f"{V1}/roles", headers=known).status_code == 200
        link.reject()
        role = new_role("learnt-late")
        newcomer = tokens.headers("user", roles=[role])
        assert_error(client.get(f"{V1}/secrets", headers=newcomer), 503, "DATABASE_ERROR")
        kv_read = client.get(f"/v1/secret/data/{unique('kv')}", headers=newcomer)
        assert kv_read.status_code == 503 and kv_read.json == {"errors": ["storage unavailable"]}
        for caller in (known, newcomer):
            assert client.get("/v1/sys/mounts", headers=caller).status_code == 200
        link.restore()
        deadline = time.monotonic() + 30
        while (listing := client.get(f"{V1}/roles", query_string={"keywords": role["name"]}, headers=newcomer)).status_code == 503:
            assert time.monotonic() < deadline, "the Vault did not find its database back"
            time.sleep(0.2)
        assert listing.json == {"count": 1, "items": [role]}
    finally:
        app.extensions["db"].close()
        link.cut()
