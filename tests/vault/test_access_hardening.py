"""Holes found by attack (issue 18), through the real gunicorn stack (deploy/gunicorn/vault.conf.py):
personal data is the owner's alone, every list in a request is bounded (and what older data holds
beyond the bounds still renders in linear time), and a driver's limit is a 400, never an outage."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.edges import expect, served
from tests.vault.helpers import V1, new_role, unique

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(vault_config):
    with served("vault_service.wsgi:app", vault_config, conf="vault.conf.py", health_path=f"{V1}/status") as url:
        yield url + V1


# --- personal data is the owner's alone --------------------------------------------------------

def test_personal_data_is_the_owners_alone_whatever_roles_and_scopes(base, tokens):
    owner_id, role = str(uuid.uuid4()), new_role("shared-with")
    owner = tokens.headers("user", sub=owner_id)
    name = unique("mine")
    created = requests.post(f"{base}/user/{owner_id}/secrets", headers=owner, json={
        "name": name, "data": {"pin": "owner-only"}, "read_roles": [role], "write_roles": [role]})
    assert created.status_code == 201, created.text
    # Every scope, with the role the owner put in read_roles and write_roles.
    for scopes in ("vaultManage", "admin", "admin vaultManage user", "user vaultAdd vaultManage"):
        other = tokens.headers(scopes, roles=[role])
        listing = requests.get(f"{base}/user/{owner_id}/secrets", headers=other)
        if listing.status_code == 200:
            assert [item["name"] for item in listing.json()["items"]] == [name]
            assert "data" not in listing.json()["items"][0], scopes
        else:
            expect(listing, 403, "PERMISSION_DENIED")
        for path in (f"/user/{owner_id}/secrets/{name}", f"/user/{owner_id}/metadata/secrets/{name}"):
            answer = requests.get(base + path, headers=other)
            assert answer.status_code in (200, 403), (scopes, path, answer.text)
            assert "owner-only" not in answer.text and "data" not in answer.json(), (scopes, path)
        searched = requests.post(f"{base}/search/secrets", headers=other, json={"keywords": name})
        assert "owner-only" not in searched.text
        # Nor may its roles change its data.
        expect(requests.put(f"{base}/user/{owner_id}/secrets/{name}", headers=other, json={"data": {"pin": "x"}}),
               403, "PERMISSION_DENIED")
    assert "owner-only" not in requests.get(f"{base}/secrets/{name}", headers=tokens.headers("user", roles=[role])).text
    mine = requests.get(f"{base}/user/{owner_id}/secrets", headers=owner).json()["items"]
    assert mine[0]["data"] == {"pin": "owner-only"}
    assert requests.get(f"{base}/user/{owner_id}/secrets/{name}", headers=owner).json()["data"] == {"pin": "owner-only"}
