"""GET /roles (ours): the roles the Vault's registry knows, so that a user can choose read and
write roles by name; and a secret given a role nobody holds can always be repaired by an admin."""
from __future__ import annotations

from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


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
