"""`GET /secret/live/{path}` (ours): every live version's data at once, for the Secrets Manager's
checkouts, in one audited statement; the `service` scope only."""
from __future__ import annotations

import uuid

from tests.vault.helpers import V1, assert_error, unique


def _write(client, headers, path, data):
    response = client.post(f"{V1}/secret/data/{path}", headers=headers, json={"data": data})
    assert response.status_code == 200, response.json
    return response.json["version"]


def test_every_live_version_newest_first_with_the_custom_metadata(client, tokens, sql):
    service = tokens.headers("service")
    path = f"hosts/{uuid.uuid4()}/root"  # the reserved part, as the Secrets Manager keeps passwords
    for n in range(1, 5):
        _write(client, service, path, {"password": f"pw-{n}"})
    client.post(f"{V1}/secret/metadata/{path}", headers=service, json={"custom_metadata": {"current_version": "3"}})
    client.post(f"{V1}/secret/delete/{path}", headers=service, json={"versions": [2]})
    client.post(f"{V1}/secret/destroy/{path}", headers=service, json={"versions": [1]})
    response = client.get(f"{V1}/secret/live/{path}", headers=service)
    assert response.status_code == 200, response.json
    body = response.json
    assert list(body) == ["custom_metadata", "versions"]
    assert body["custom_metadata"] == {"current_version": "3"}
    assert [(v["version"], v["data"]) for v in body["versions"]] == [(4, {"password": "pw-4"}), (3, {"password": "pw-3"})]
    versions = {v["version"]: v for v in client.get(f"{V1}/secret/metadata/{path}", headers=service).json["versions"]}
    assert all(v["created"] == versions[v["version"]]["created"] for v in body["versions"])
    # One read, one audit event, naming the versions it returned.
    events = sql.execute("SELECT action, outcome, details FROM audit_events WHERE target = %s AND action = 'secret.read'",
                         (f"secret:{path}",)).fetchall()
    assert events == [("secret.read", "success", {"versions": [4, 3]})]


def test_missing_secret_is_404_and_audited_and_one_without_live_versions_is_empty(client, tokens, sql):
    service = tokens.headers("service")
    path = unique("live/none")
    assert_error(client.get(f"{V1}/secret/live/{path}", headers=service), 404, "OBJECT_NOT_FOUND")
    assert sql.execute("SELECT outcome FROM audit_events WHERE target = %s", (f"secret:{path}",)).fetchall() == [("not_found",)]
    _write(client, service, path, {"a": 1})
    client.post(f"{V1}/secret/delete/{path}", headers=service, json={"versions": [1]})
    assert client.get(f"{V1}/secret/live/{path}", headers=service).json == {"custom_metadata": {}, "versions": []}


def test_only_the_service_scope_and_no_policy(client, tokens):
    service = tokens.headers("service")
    path = unique("live/scoped")
    _write(client, service, path, {"a": 1})
    for scope in ("admin", "hostsManage", "vaultManage", "user"):
        assert_error(client.get(f"{V1}/secret/live/{path}", headers=tokens.headers(scope)), 403, "PERMISSION_DENIED")
    assert_error(client.get(f"{V1}/secret/live/{path}"), 401, "UNAUTHORIZED")
