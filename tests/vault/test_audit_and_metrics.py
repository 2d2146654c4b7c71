"""The audit trail (who, what, when, outcome; never a value; fail closed) and /metrics."""
from __future__ import annotations

import psycopg
import pytest

from tests import support
from tests.vault.helpers import V1, assert_error, create_shared, new_role, unique


def _events(client, tokens, **filters):
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    response = client.get(f"{V1}/audit-events?{query}", headers=tokens.headers("admin"))
    assert response.status_code == 200, response.json
    return response.json


def test_reads_writes_and_denials_are_audited_without_values(client, tokens):
    role = new_role()
    reader_sub = "aaaaaaaa-0000-4000-8000-000000000001"
    name = create_shared(client, tokens, data={"password": "never-in-the-audit"}, read_roles=[role])
    read = client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", sub=reader_sub, roles=[role]))
    assert read.status_code == 200
    client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[new_role()]))  # sees nothing: not_found
    writer_only = new_role()
    client.put(f"{V1}/secrets/{name}", headers=tokens.headers("admin"), json={"write_roles": [writer_only]})
    client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[writer_only]))  # sees, cannot read: denied

    body = _events(client, tokens, target=f"secret:{name}", sortdir="asc")
    outcomes = [(e["action"], e["outcome"]) for e in body["items"]]
    assert outcomes == [("secret.create", "success"), ("secret.read", "success"), ("secret.read", "not_found"),
                        ("secret.update", "success"), ("secret.read", "denied")]
    success_read = body["items"][1]
    assert success_read["principal"] == reader_sub
    assert success_read["request_id"] == read.headers["X-Request-ID"]
    assert success_read["details"] == {"version": 1}
    assert "never-in-the-audit" not in str(body)


def test_versioned_operations_are_audited(client, tokens):
    svc = tokens.headers("service")
    path = unique("audited")
    client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": 1}})
    client.get(f"{V1}/secret/data/{path}", headers=svc)
    client.post(f"{V1}/secret/destroy/{path}", headers=svc, json={"versions": [1]})
    actions = [e["action"] for e in _events(client, tokens, target=f"secret:{path}", sortdir="ASC")["items"]]
    assert actions == ["secret.write", "secret.read", "secret.destroy_versions"]


def test_audit_query_filters_paging_and_access(client, tokens):
    sub = "bbbbbbbb-0000-4000-8000-000000000002"
    svc = tokens.headers("service", sub=sub)
    for _ in range(3):
        client.post(f"{V1}/secret/data/{unique('pg')}", headers=svc, json={"data": {}})
    page = _events(client, tokens, principal=sub, action="secret.write", limit=2)
    assert page["count"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["occurred"] >= page["items"][1]["occurred"]
    assert _events(client, tokens, principal=sub, outcome="DENIED")["count"] == 0
    assert_error(client.get(f"{V1}/audit-events", headers=tokens.headers("user vaultManage")), 403, "PERMISSION_DENIED")
    assert_error(client.get(f"{V1}/audit-events?limit=101", headers=tokens.headers("admin")), 400, "VALUE_OUT_OF_BOUNDS", "limit")
    assert_error(client.get(f"{V1}/audit-events?since=yesterday", headers=tokens.headers("admin")), 400, "VALUE_INCORRECT_TYPE", "since")


@pytest.fixture()
def broken_audit_app(db_server, vault_config):
    """A Vault whose audit table rejects every row, as a full disk or a revoked grant would."""
    from vault_service.app import create_app

    with support.fresh_database(db_server, "vault_audit_fail") as url:
        app = create_app({**vault_config, "DATABASE_URL": url})
        app.extensions["db"].migrate()
        yield app, url
        app.extensions["db"].close()


def test_operations_fail_closed_when_the_audit_cannot_be_written(broken_audit_app, tokens):
    app, url = broken_audit_app
    client = app.test_client()
    svc = tokens.headers("service")
    path = unique("closed")
    assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": "one"}}).status_code == 200
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
    read = client.get(f"{V1}/secret/data/{path}", headers=svc)
    assert_error(read, 503, "DATABASE_ERROR")
    assert "one" not in read.get_data(as_text=True)
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": "two"}}), 503, "DATABASE_ERROR")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM vault_secret_versions").fetchone()[0] == 1


def test_metrics_use_route_templates_never_secret_names(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role], name=unique("metric-name-leak"))
    client.get(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role]))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/vault/api/v1/secrets/<secret_name:name>"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'db_pool_connections{service="vault",state="idle"}' in text
    assert name not in text


def test_a_made_up_method_does_not_become_a_metric_label(client):
    for method in ("BREW", "XYZZY"):
        client.open(f"{V1}/status", method=method)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="OTHER"' in text
    assert "BREW" not in text and "XYZZY" not in text
