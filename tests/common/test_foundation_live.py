"""Foundation behaviour that needs real peers: JWKS over HTTP, racing migrations, JSON logs."""
from __future__ import annotations

import io
import json
import logging
import threading
from importlib import resources

import psycopg
import pytest

from common import auth, errors, logs
from common.db import Database
from tests import support


@pytest.mark.slow
def test_keys_from_a_jwks_url(data_dir, tokens):
    with support.gunicorn("common.devtools.issuer.wsgi:app", support.service_settings(data_dir), health_path="/auth/api/v1/status") as base:
        source = auth.JwksSource(url=f"{base}/auth/api/v1/oauth/jwks")
        validator = auth.TokenValidator(source, issuer=support.ISSUER, audience=support.AUDIENCE)
        assert validator.validate(tokens("user", sub="from-url")).sub == "from-url"
    # The issuer is gone: cached keys still verify, and new lookups fail as 401, not 500.
    assert validator.validate(tokens("user", sub="still-cached-keys")).sub == "still-cached-keys"
    with pytest.raises(errors.Unauthorized):
        auth.JwksSource(url=f"{base}/auth/api/v1/oauth/jwks").key_set()


def test_replicas_migrating_together_apply_each_migration_once(db_server):
    with support.fresh_database(db_server, "migrate_race") as url:
        databases = [Database(url, service="vault", migrations_package="vault_service") for _ in range(4)]
        results, failures = [], []

        def migrate(db):
            try:
                results.append(db.migrate())
            except Exception as exc:  # collected and asserted below
                failures.append(exc)

        try:
            threads = [threading.Thread(target=migrate, args=(db,)) for db in databases]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not failures
            applied = [name for result in results for name in result]
            assert sorted(applied) == sorted(set(applied)) and "vault/0001_initial.sql" in applied
            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT service, version FROM schema_migrations ORDER BY 1, 2").fetchall()
            # Every migration file of both sets, once each.
            files = [("common", int(f.name[:4])) for f in resources.files("common").joinpath("migrations").iterdir()
                     if f.name.endswith(".sql")]
            files += [("vault", int(f.name[:4])) for f in resources.files("vault_service").joinpath("migrations").iterdir()
                      if f.name.endswith(".sql")]
            assert rows == sorted(files) and ("vault", 1) in rows
        finally:
            for db in databases:
                db.close()


@pytest.fixture()
def json_log_lines():
    """Every log line the app writes during the test, as the JSON formatter renders it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def test_logs_are_json_with_request_id_and_principal_and_no_secret(client, tokens, json_log_lines):
    role = support.new_role()
    secret_value = "log-leak-canary-" + support.unique("v")
    sub = "cccccccc-0000-4000-8000-000000000003"
    headers = tokens.headers("admin user", sub=sub, roles=[role])
    name = support.unique("logged")
    client.post("/vault/api/v1/secrets", headers=headers,
                json={"name": name, "data": {"password": secret_value}, "read_roles": [role]})
    read = client.get(f"/vault/api/v1/secrets/{name}", headers={**headers, "X-Request-ID": "req-123"})
    assert read.status_code == 200
    lines = json_log_lines()
    audit_lines = [line for line in lines if line.get("message") == "audit event"]
    read_line = next(line for line in audit_lines if line["audit"]["action"] == "secret.read")
    assert read_line["request_id"] == "req-123" and read_line["principal"] == sub
    assert read_line["audit"]["target"] == f"secret:{name}" and read_line["audit"]["outcome"] == "success"
    assert secret_value not in json.dumps(lines)


def test_an_unhandled_error_logs_no_message_text(vault_config, json_log_lines):
    from vault_service.app import create_app

    secret_value = "exception-canary-" + support.unique("x")
    app = create_app(vault_config)

    @app.route("/boom-for-test")
    def boom():
        raise RuntimeError(f"failed while holding {secret_value}")

    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500 and response.json["error_code"] == "GENERAL_ERROR"
    assert secret_value not in response.get_data(as_text=True)
    lines = json_log_lines()
    assert any(line.get("exception_type") == "RuntimeError" for line in lines)
    assert secret_value not in json.dumps(lines)
