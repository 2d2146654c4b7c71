"""POST /search/secrets: keywords, owners, filters, paging in query or body."""
from __future__ import annotations

import uuid

import pytest

from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


def _search(client, headers, body=None, query=""):
    response = client.post(f"{V1}/search/secrets{query}", headers=headers, json=body if body is not None else {})
    assert response.status_code == 200, response.json
    return response.json


def test_keywords_match_name_substrings_case_insensitively(client, tokens):
    role = new_role()
    tag = uuid.uuid4().hex[:8]
    a = create_shared(client, tokens, name=f"Alpha-{tag}-db", read_roles=[role])
    b = create_shared(client, tokens, name=f"beta-{tag}-db", read_roles=[role])
    user = tokens.headers("user", roles=[role])
    assert {i["name"] for i in _search(client, user, {"keywords": f"{tag}"})["items"]} == {a, b}
    assert [i["name"] for i in _search(client, user, {"keywords": f"ALPHA,{tag}"})["items"]] == [a]
    assert [i["name"] for i in _search(client, user, {"keywords": f"beta {tag}"})["items"]] == [b]
    assert all("data" not in i for i in _search(client, user, {"keywords": tag})["items"])


def test_filters(client, tokens):
    reader, writer = new_role(), new_role()
    tag = unique("flt")
    readable = create_shared(client, tokens, name=f"{tag}-r", read_roles=[reader])
    writable = create_shared(client, tokens, name=f"{tag}-w", write_roles=[writer])
    sub = str(uuid.uuid4())
    owner = tokens.headers("user", sub=sub, roles=[reader, writer])
    client.post(f"{V1}/user/{sub}/secrets", headers=owner, json={"name": f"{tag}-mine", "data": {}})

    def names(filter_):
        return {i["name"] for i in _search(client, owner, {"keywords": tag, "filter": filter_})["items"]}

    assert names("") == {readable, writable, f"{tag}-mine"}
    assert names("shared") == {readable, writable}
    assert names("PERSONAL") == {f"{tag}-mine"}
    assert names("readable") == {readable, f"{tag}-mine"}
    assert names("writable") == {writable, f"{tag}-mine"}
    assert names("accessible") == {readable, writable, f"{tag}-mine"}


def test_owner_filter_and_admin_sees_personal_secrets(client, tokens):
    tag = unique("own")
    sub = str(uuid.uuid4())
    client.post(f"{V1}/user/{sub}/secrets", headers=tokens.headers("user", sub=sub), json={"name": f"{tag}-x", "data": {}})
    found = _search(client, tokens.headers("admin"), {"keywords": tag, "owner_id": [sub]})
    assert [(i["name"], i["owner_id"]) for i in found["items"]] == [(f"{tag}-x", sub)]
    assert _search(client, tokens.headers("user"), {"keywords": tag})["count"] == 0


def test_paging_from_query_or_body_and_unset_values(client, tokens):
    role = new_role()
    tag = unique("pg")
    names = [create_shared(client, tokens, name=f"{tag}-{i}", read_roles=[role]) for i in range(3)]
    user = tokens.headers("user", roles=[role])
    assert [i["name"] for i in _search(client, user, {"keywords": tag}, "?limit=1&offset=1")["items"]] == [names[1]]
    body = _search(client, user, {"keywords": tag, "limit": 1, "offset": 2, "sortdir": "desc"})
    assert [i["name"] for i in body["items"]] == [names[0]] and body["count"] == 3
    unset = _search(client, user, {"keywords": tag, "limit": 0, "offset": None, "sortkey": "", "filter": ""})
    assert unset["count"] == 3 and len(unset["items"]) == 3


@pytest.mark.parametrize("body, prop, code", [
    ({"limit": 101}, "limit", "VALUE_OUT_OF_BOUNDS"),
    ({"sortkey": "data"}, "sortkey", "VALUE_INCORRECT_FORMAT"),
    ({"filter": "everything"}, "filter", "VALUE_INCORRECT_FORMAT"),
    ({"keywords": 5}, "keywords", "VALUE_INCORRECT_TYPE"),
    ({"owner_id": "not-a-list"}, "owner_id", "VALUE_INCORRECT_TYPE"),
    ({"unknown": 1}, "unknown", "INVALID_REQUEST_DATA"),
])
def test_bad_search_bodies_are_400(client, tokens, body, prop, code):
    response = client.post(f"{V1}/search/secrets", headers=tokens.headers("user"), json=body)
    assert_error(response, 400, code, prop)


def test_a_personal_secret_is_found_by_its_owner_only_whatever_its_roles(client, tokens):
    """Issue 9: a role listed in B's personal secret gave its holders B's secret in search, while
    every /user/B/... route refuses them. Search shows exactly what the other routes show."""
    role = new_role()
    tag = unique("leak")
    owner_sub = str(uuid.uuid4())
    owner = tokens.headers("user", sub=owner_sub)
    created = client.post(f"{V1}/user/{owner_sub}/secrets", headers=owner, json={
        "name": f"{tag}-b", "data": {"pw": "b-only"}, "read_roles": [role], "write_roles": [role]})
    assert created.status_code == 201, created.json
    holder = tokens.headers("user", roles=[role])
    for body in ({"keywords": tag}, {"keywords": tag, "filter": "personal"}, {"owner_id": [owner_sub]},
                 {"keywords": tag, "filter": "readable"}, {"keywords": tag, "filter": "writable"},
                 {"keywords": tag, "filter": "accessible"}):
        assert _search(client, holder, body) == {"count": 0, "items": []}, body
    # The routes agree: the role holder cannot reach it there either.
    assert client.get(f"{V1}/user/{owner_sub}/secrets/{tag}-b", headers=holder).status_code == 403
    # Its owner finds it; admin and vaultManage see it without data, as on the metadata routes.
    assert [i["name"] for i in _search(client, owner, {"keywords": tag, "filter": "readable"})["items"]] == [f"{tag}-b"]
    for scope in ("admin", "vaultManage"):
        items = _search(client, tokens.headers(scope), {"keywords": tag, "filter": "personal"})["items"]
        assert [(i["name"], i["owner_id"]) for i in items] == [(f"{tag}-b", owner_sub)]
        assert all("data" not in i for i in items)
