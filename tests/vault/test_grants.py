"""The workflow engine's grants as the Vault honours them (docs/API.md "Workflow engine",
"Grants"): the Secrets Manager's service identity sends each grant's state to PUT
/grants/{request_id}; while one is live its role counts as the token's for v1 read_roles and
write_roles and for ACL policy groups on /v1; its end, or its grant_end by the Vault's own clock,
takes that away. The whole path from the Secrets Manager is tests/e2e/test_workflow_grants_e2e.py."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import all_at_once
from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Link:
    """The Secrets Manager's side of the link: numbered states of grants."""

    def __init__(self, client, tokens):
        self.client, self.tokens, self.headers, self.sequence = client, tokens, tokens.headers("service"), 0

    def put(self, request_id, user: str, role: dict, *, sequence=None, **state):
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        body = {"user_id": user, "role": role, "grant_type": "PERMANENT", "sequence": sequence, **state}
        return self.client.put(f"{V1}/grants/{request_id}", headers=self.headers, json=body)


@pytest.fixture()
def link(client, tokens):
    return Link(client, tokens)


@pytest.fixture()
def granted(client, tokens):
    """A role, a user without it, and a shared secret it reads and writes."""
    role = new_role("granted")
    user = str(uuid.uuid4())
    name = create_shared(client, tokens, data={"password": "granted-pw"}, read_roles=[role], write_roles=[role])
    return role, user, tokens.headers("user", sub=user), name


def test_a_live_grant_counts_as_the_role_and_its_end_takes_it_away(client, link, granted):
    role, user, headers, name = granted
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 404
    request_id = str(uuid.uuid4())
    answer = link.put(request_id, user, role)
    assert answer.status_code == 200 and answer.json["applied"] and answer.json["live"]
    read = client.get(f"{V1}/secrets/{name}", headers=headers)
    assert read.status_code == 200 and read.json["data"] == {"password": "granted-pw"}
    # write_roles too, and the listing.
    assert client.put(f"{V1}/secrets/{name}", headers=headers, json={"data": {"password": "new"}}).status_code == 200
    listed = client.get(f"{V1}/secrets?filter=readable", headers=headers).json
    assert name in [item["name"] for item in listed["items"]]

    ended = link.put(request_id, user, role, ended=True, end_reason="revoked")
    assert ended.status_code == 200 and ended.json["ended"] and not ended.json["live"]
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 404
    assert client.put(f"{V1}/secrets/{name}", headers=headers, json={"data": {"x": "y"}}).status_code == 404


def test_states_are_idempotent_ordered_and_an_end_is_final(client, link, granted):
    role, user, headers, name = granted
    request_id = str(uuid.uuid4())
    assert link.put(request_id, user, role, sequence=5).json["applied"]
    assert not link.put(request_id, user, role, sequence=5).json["applied"]  # the same one again
    assert not link.put(request_id, user, role, sequence=4, ended=True).json["applied"]  # an older one
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 200
    assert link.put(request_id, user, role, sequence=7, ended=True).json["applied"]
    # A start that arrives after the end (a delayed duplicate) reopens nothing.
    late = link.put(request_id, user, role, sequence=9)
    assert late.status_code == 200 and not late.json["applied"] and late.json["ended"]
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 404
    got = client.get(f"{V1}/grants/{request_id}", headers=link.headers).json
    assert got["sequence"] == 7 and got["live"] is False and got["end_reason"] == "ended"


def test_the_vault_ends_a_grant_at_grant_end_by_its_own_clock(client, link, granted):
    role, user, headers, name = granted
    end = _now() + timedelta(seconds=2)
    link.put(str(uuid.uuid4()), user, role, grant_type="TIME_RESTRICTED", grant_start=_iso(_now() - timedelta(minutes=1)),
             grant_end=_iso(end))
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 200
    deadline = time.monotonic() + 10
    while client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 200:
        assert time.monotonic() < deadline, "the grant outlived its grant_end"
        time.sleep(0.1)
    assert _now() >= end  # not a moment before
    # A window not begun yet counts for nothing either.
    link.put(str(uuid.uuid4()), user, role, grant_type="TIME_RESTRICTED", grant_start=_iso(_now() + timedelta(hours=1)),
             grant_end=_iso(_now() + timedelta(hours=2)))
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 404


def test_a_floating_grant_starts_at_its_first_use_here_and_keeps_the_earlier_start(client, link, granted):
    role, user, headers, name = granted
    request_id = str(uuid.uuid4())
    link.put(request_id, user, role, grant_type="FLOATING", floating_length=2,
             unused_until=_iso(_now() + timedelta(days=7)))
    assert client.get(f"{V1}/grants/{request_id}", headers=link.headers).json["grant_start"] is None
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 200
    first = client.get(f"{V1}/grants/{request_id}", headers=link.headers).json
    start = datetime.fromisoformat(first["grant_start"])
    assert abs((start - _now()).total_seconds()) < 30
    assert datetime.fromisoformat(first["grant_end"]) - start == timedelta(hours=2)
    # The Secrets Manager's own first use came later: the Vault keeps its earlier window.
    later = start + timedelta(minutes=5)
    kept = link.put(request_id, user, role, grant_type="FLOATING", floating_length=2, grant_start=_iso(later),
                    grant_end=_iso(later + timedelta(hours=2))).json
    assert datetime.fromisoformat(kept["grant_start"]) == start
    # An unused FLOATING grant lapses.
    lapsed = str(uuid.uuid4())
    other = new_role("lapsed")
    name2 = create_shared(client, link.tokens, read_roles=[other])
    link.put(lapsed, user, other, grant_type="FLOATING", floating_length=2, unused_until=_iso(_now() - timedelta(seconds=1)))
    assert client.get(f"{V1}/secrets/{name2}", headers=headers).status_code == 404


def test_a_role_the_token_carries_is_not_a_use_of_the_grant(client, link, granted, tokens):
    role, user, _headers, name = granted
    request_id = str(uuid.uuid4())
    link.put(request_id, user, role, grant_type="FLOATING", floating_length=1)
    with_role = tokens.headers("user", sub=user, roles=[role])
    assert client.get(f"{V1}/secrets/{name}", headers=with_role).status_code == 200
    assert client.get(f"{V1}/grants/{request_id}", headers=link.headers).json["grant_start"] is None


def test_acl_policy_groups_count_a_granted_role(client, link, tokens):
    role, user = new_role("acl"), str(uuid.uuid4())
    admin, prefix, policy = {"X-Vault-Token": tokens("admin")}, unique("jit"), unique("jit").lower()
    assert client.put(f"/v1/sys/policies/acl/{policy}", headers=admin,
                      json={"policy": f'path "secret/data/{prefix}/*" {{\n  capabilities = ["read"]\n}}'}).status_code == 204
    assert client.put(f"/v1/identity/group/name/{role['name']}", headers=admin,
                      json={"type": "external", "policies": [policy]}).status_code == 200
    service = {"X-Vault-Token": tokens("service")}
    assert client.post(f"/v1/secret/data/{prefix}/db", headers=service, json={"data": {"pw": "kv-pw"}}).status_code == 200
    user_token = {"X-Vault-Token": tokens("user", sub=user)}
    assert client.get(f"/v1/secret/data/{prefix}/db", headers=user_token).status_code == 403
    request_id = str(uuid.uuid4())
    link.put(request_id, user, role)  # the group binds by the role's name, which the state carries
    read = client.get(f"/v1/secret/data/{prefix}/db", headers=user_token)
    assert read.status_code == 200 and read.get_json()["data"]["data"] == {"pw": "kv-pw"}
    link.put(request_id, user, role, ended=True)
    assert client.get(f"/v1/secret/data/{prefix}/db", headers=user_token).status_code == 403


def test_only_the_service_identity_reaches_the_route(client, tokens, granted):
    role, user, headers, _name = granted
    body = {"user_id": user, "role": role, "grant_type": "PERMANENT", "sequence": 1}
    path = f"{V1}/grants/{uuid.uuid4()}"
    assert client.put(path, json=body).status_code == 401
    for scopes in ("user", "admin", "vaultManage", "vaultAdd"):
        assert_error(client.put(path, headers=tokens.headers(scopes), json=body), 403, "PERMISSION_DENIED")
        assert client.get(path, headers=tokens.headers(scopes)).status_code == 403
    assert client.get(path, headers=tokens.headers("service")).status_code == 404
    service = tokens.headers("service")
    for bad in ({**body, "sequence": 0}, {**body, "grant_type": "FOREVER"}, {**body, "sequence": "1"},
                {key: value for key, value in body.items() if key != "user_id"}, {**body, "grant_start": "soon"},
                {**body, "surprise": 1}):
        assert client.put(path, headers=service, json=bad).status_code == 400
    assert client.get(path, headers=service).status_code == 404  # none of them changed anything
    assert client.put(f"{V1}/grants/not-a-uuid", headers=service, json=body).status_code == 404


def test_concurrent_states_of_one_grant_end_in_the_newest(client, link, granted):
    role, user, headers, name = granted
    request_id = str(uuid.uuid4())
    answers = all_at_once([lambda n=n: link.put(request_id, user, role, sequence=n, ended=n == 6) for n in range(1, 7)])
    assert all(answer.status_code == 200 for answer in answers)
    got = client.get(f"{V1}/grants/{request_id}", headers=link.headers).json
    # Whatever order they landed in, the end (the newest) is final once applied.
    assert got["ended"] is not None and got["sequence"] == 6
    assert client.get(f"{V1}/secrets/{name}", headers=headers).status_code == 404
