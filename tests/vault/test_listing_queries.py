"""The list, search and keys queries made for a million secrets (trigram keyword search,
per-owner counts, index ranges for keys) answer exactly what the plain queries did."""
from __future__ import annotations

import uuid

from tests.vault.helpers import V1, create_shared, new_role


def _shared_count(vault_app) -> int:
    with vault_app.extensions["db"].cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM vault_secrets WHERE owner_id = ''")
        return cur.fetchone()["n"]


def _admin_list_count(client, tokens) -> int:
    response = client.get(f"{V1}/secrets?limit=1", headers=tokens.headers("admin"))
    assert response.status_code == 200, response.json
    return response.json["count"]


def test_an_admins_list_counts_every_shared_secret_through_creates_deletes_and_failures(client, tokens, vault_app):
    assert _admin_list_count(client, tokens) == _shared_count(vault_app)
    admin = tokens.headers("admin")
    names = [create_shared(client, tokens) for _ in range(3)]
    assert _admin_list_count(client, tokens) == _shared_count(vault_app)
    # A refused create (the name is taken) and personal secrets change nothing.
    assert client.post(f"{V1}/secrets", headers=admin, json={"name": names[0], "data": {}}).status_code == 409
    owner = str(uuid.uuid4())
    assert client.post(f"{V1}/user/{owner}/secrets", headers=tokens.headers("user", sub=owner),
                       json={"name": "mine", "data": {}}).status_code == 201
    # The versioned API creates shared secrets too.
    assert client.post(f"{V1}/secret/data/counted/{uuid.uuid4().hex}", headers=tokens.headers("service"),
                       json={"data": {"k": "v"}}).status_code == 200
    for name in names[:2]:
        assert client.delete(f"{V1}/secrets/{name}", headers=admin).status_code == 200
    assert _admin_list_count(client, tokens) == _shared_count(vault_app)
    personal = client.get(f"{V1}/user/{owner}/secrets", headers=tokens.headers("user", sub=owner)).json
    assert personal["count"] == 1 and [i["name"] for i in personal["items"]] == ["mine"]


def test_an_offset_past_the_end_still_gives_the_total(client, tokens, vault_app):
    response = client.get(f"{V1}/secrets?offset=100000000", headers=tokens.headers("admin"))
    assert response.status_code == 200
    assert response.json == {"count": _shared_count(vault_app), "items": []}


def test_a_keyword_is_a_literal_substring_not_a_pattern(client, tokens):
    role = new_role()
    tag = uuid.uuid4().hex[:8]
    underscore = create_shared(client, tokens, name=f"k{tag}a_b", read_roles=[role])
    create_shared(client, tokens, name=f"k{tag}axb", read_roles=[role])
    user = tokens.headers("user", roles=[role])

    def found(keywords):
        response = client.post(f"{V1}/search/secrets", headers=user, json={"keywords": keywords})
        assert response.status_code == 200, response.json
        return sorted(i["name"] for i in response.json["items"])

    assert found(f"{tag}a_b") == [underscore]
    assert found(f"{tag}%") == []
    assert found("\\") == []
    assert len(found(f"k{tag}")) == 2
    assert found(f"K{tag}A_") == [underscore]  # still case-insensitive


def test_keys_of_a_folder_whose_name_has_a_like_wildcard(client, tokens):
    svc = tokens.headers("service")
    tag = uuid.uuid4().hex[:8]
    for path in (f"f{tag}/a_b/one", f"f{tag}/a_b/sub/two", f"f{tag}/axb/other"):
        assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {}}).status_code == 200
    response = client.get(f"{V1}/secret/keys/f{tag}/a_b", headers=svc)
    assert response.status_code == 200
    assert response.json["keys"] == ["one", "sub/"]
    assert client.get(f"{V1}/secret/keys/f{tag}", headers=svc).json["keys"] == ["a_b/", "axb/"]
