"""Development token issuer: keys, token endpoint, JWKS, CLI and a real gunicorn run."""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey

from common.devtools.issuer import ensure_signing_key, mint_token, public_jwks
from common.devtools.issuer.app import create_issuer_app
from common.devtools.issuer.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
TOKEN_URL = "/auth/api/v1/oauth/token"
ISSUER, AUDIENCE = "test-issuer", "test-audience"
ADMIN_SUB = "00000000-0000-4000-8000-000000000a01"
ADMIN_ROLE = {"id": "00000000-0000-4000-8000-000000000001", "name": "privx-admin"}
SETTINGS_ENV = ("DATA_DIR", "AUTH_ISSUER", "AUTH_AUDIENCE", "ISSUER_CLIENTS_FILE", "ISSUER_TOKEN_TTL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # The developer's shell must not change what these tests see.
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app(tmp_path):
    return create_issuer_app({"DATA_DIR": str(tmp_path), "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE})


@pytest.fixture
def issuer_client(app):
    return app.test_client()


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def password_grant(issuer_client, username="admin", password="dev-admin-secret", **extra):
    form = {"grant_type": "password", "username": username, "password": password, **extra}
    return issuer_client.post(TOKEN_URL, data=form, headers=basic("privx-external", "dev-oauth-secret"))


def verify(token: str, jwks: dict, issuer=ISSUER, audience=AUDIENCE):
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer}, aud={"essential": True, "value": audience})
    registry.validate(decoded.claims)  # exp/nbf/iat, plus the iss/aud options above
    return VerifiedClaims(decoded.claims, header=decoded.header)


class VerifiedClaims(dict):
    """The claims, with the JOSE header they came with."""

    def __init__(self, claims: dict, *, header: dict):
        super().__init__(claims)
        self.header = header


def test_password_grant_returns_verifiable_token(issuer_client):
    before = int(time.time())
    resp = password_grant(issuer_client)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "admin user vaultManage hostsManage"
    assert resp.headers["Cache-Control"] == "no-store"

    claims = verify(body["access_token"], issuer_client.get("/auth/api/v1/oauth/jwks").get_json())
    assert claims.header == {"alg": "EdDSA", "typ": "at+jwt", "kid": claims.header["kid"]}
    assert claims["sub"] == ADMIN_SUB
    assert claims["scope"] == body["scope"]
    assert claims["roles"] == [ADMIN_ROLE]
    assert claims["client_id"] == "privx-external"
    assert claims["email"] == "admin@example.com" and claims["name"] == "Dev Admin"
    assert before <= claims["iat"] and claims["exp"] == claims["iat"] + 3600
    assert claims["jti"]


def test_both_jwks_routes_serve_the_file_set(issuer_client, tmp_path):
    on_disk = json.loads((tmp_path / "issuer" / "jwks.json").read_text())
    assert issuer_client.get("/auth/api/v1/oauth/jwks").get_json() == on_disk
    assert issuer_client.get("/.well-known/jwks.json").get_json() == on_disk
    (key,) = on_disk["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "d" not in key
    assert key["alg"] == "EdDSA" and key["use"] == "sig"
    assert key["kid"] == OKPKey.import_key(key).thumbprint()


def test_client_secret_post_is_accepted(issuer_client):
    resp = issuer_client.post(TOKEN_URL, data={
        "grant_type": "password", "username": "alice", "password": "dev-alice-secret",
        "client_id": "privx-external", "client_secret": "dev-oauth-secret",
    })
    assert resp.status_code == 200, resp.get_json()
    claims = verify(resp.get_json()["access_token"], issuer_client.get("/.well-known/jwks.json").get_json())
    assert claims["sub"] == "00000000-0000-4000-8000-000000000a02"
    assert claims["scope"] == "user"
    assert claims["roles"] == [{"id": "00000000-0000-4000-8000-000000000002", "name": "operators"}]


def test_client_credentials(issuer_client):
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                       headers=basic("secrets-manager", "dev-secrets-manager-secret"))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "service"
    claims = verify(body["access_token"], issuer_client.get("/auth/api/v1/oauth/jwks").get_json())
    assert claims["sub"] == "00000000-0000-4000-8000-000000000e02"
    assert claims["client_id"] == "secrets-manager"
    assert claims["scope"] == "service"


def test_client_credentials_of_privx_external_gives_admin(issuer_client):
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                       headers=basic("privx-external", "dev-oauth-secret"))
    assert resp.status_code == 200
    assert resp.get_json()["scope"] == "admin"


@pytest.mark.parametrize("client_id", ["privx-external", "no-such-client"])
def test_bad_client_secret_is_invalid_client(issuer_client, client_id):
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": "password", "username": "admin", "password": "dev-admin-secret"},
                       headers=basic(client_id, "wrong"))
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    # Words a user can act on, never authlib's internals ("cannot authenticate with methods: [...]").
    description = resp.get_json()["error_description"]
    assert "client_secret_basic" not in description and "methods" not in description
    if client_id == "privx-external":
        assert description.startswith("Wrong client secret")


@pytest.mark.parametrize("username,password", [("admin", "wrong"), ("nobody", "dev-admin-secret")])
def test_bad_user_credentials_are_invalid_grant(issuer_client, username, password):
    resp = password_grant(issuer_client, username=username, password=password)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"


def test_grant_type_not_allowed_for_client(issuer_client):
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": "password", "username": "admin", "password": "dev-admin-secret"},
                       headers=basic("secrets-manager", "dev-secrets-manager-secret"))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "bogus"])
def test_unknown_grant_is_unsupported(issuer_client, grant_type):
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": grant_type}, headers=basic("privx-external", "dev-oauth-secret"))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unsupported_grant_type"


def test_scope_parameter_narrows_never_widens(issuer_client):
    resp = password_grant(issuer_client, scope="user vaultManage superuser")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["scope"] == "user vaultManage"
    claims = verify(resp.get_json()["access_token"], issuer_client.get("/auth/api/v1/oauth/jwks").get_json())
    assert claims["scope"] == "user vaultManage"

    resp = password_grant(issuer_client, username="alice", password="dev-alice-secret", scope="admin")
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_scope"


def test_secrets_never_reach_the_logs(issuer_client, caplog):
    caplog.set_level(logging.DEBUG)
    assert password_grant(issuer_client).status_code == 200
    assert password_grant(issuer_client, password="dev-admin-secret-typo").status_code == 400
    assert caplog.records, "authlib logs at DEBUG; this test needs them to mean anything"
    for secret in ("dev-oauth-secret", "dev-admin-secret"):
        assert secret not in caplog.text


def test_status(issuer_client):
    assert issuer_client.get("/auth/api/v1/status").get_json() == {"status": "RUNNING"}


def test_settings_come_from_environment(tmp_path, monkeypatch):
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(json.dumps({"oauth_clients": [{
        "client_id": "c", "client_secret": "s", "grant_types": ["client_credentials"], "sub": "sub-1", "scope": "a b",
    }]}))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTH_ISSUER", "env-iss")
    monkeypatch.setenv("AUTH_AUDIENCE", "env-aud")
    monkeypatch.setenv("ISSUER_CLIENTS_FILE", str(clients_file))
    monkeypatch.setenv("ISSUER_TOKEN_TTL", "60")
    issuer_client = create_issuer_app().test_client()
    resp = issuer_client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic("c", "s"))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["expires_in"] == 60
    claims = verify(resp.get_json()["access_token"], public_jwks(tmp_path / "data"), "env-iss", "env-aud")
    assert claims["exp"] - claims["iat"] == 60 and claims["sub"] == "sub-1" and claims["scope"] == "a b"


def test_key_files_are_private(tmp_path):
    ensure_signing_key(tmp_path / "fresh")
    issuer_dir = tmp_path / "fresh" / "issuer"
    assert stat.S_IMODE(issuer_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((issuer_dir / "signing-key.json").stat().st_mode) == 0o600
    jwk = json.loads((issuer_dir / "signing-key.json").read_text())
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" in jwk
    assert jwk["kid"] == OKPKey.import_key(jwk).thumbprint()
    assert not [p for p in issuer_dir.iterdir() if p.name.startswith(".tmp-")]


def test_concurrent_first_use_agrees_on_one_key(tmp_path):
    kids, errors = [], []
    start = threading.Barrier(8)  # release all at once, so they really race to create the key

    def grab():
        start.wait()
        try:
            kids.append(ensure_signing_key(tmp_path).kid)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(kids)) == 1
    assert public_jwks(tmp_path)["keys"][0]["kid"] == kids[0]


def test_key_survives_restart(tmp_path, app):
    kid = app.test_client().get("/auth/api/v1/oauth/jwks").get_json()["keys"][0]["kid"]
    again = create_issuer_app({"DATA_DIR": str(tmp_path)})
    assert again.test_client().get("/auth/api/v1/oauth/jwks").get_json()["keys"][0]["kid"] == kid
    # A fresh process has no in-memory cache: it must read the same key from disk.
    out = subprocess.run([sys.executable, "-m", "common.devtools.issuer.cli", "jwks"], cwd=REPO, check=True,
                         capture_output=True, text=True, env={**os.environ, "DATA_DIR": str(tmp_path)}).stdout
    assert json.loads(out)["keys"][0]["kid"] == kid


def test_mint_token_claims_and_overrides(tmp_path):
    token = mint_token(tmp_path, sub="s", scopes=["a", "b", "a"], roles=[ADMIN_ROLE], issuer=ISSUER,
                       audience=AUDIENCE, ttl=120, client_id="cid", extra_claims={"tenant": "t1"})
    claims = verify(token, public_jwks(tmp_path))
    assert claims["scope"] == "a b" and claims["roles"] == [ADMIN_ROLE] and claims["client_id"] == "cid"
    assert claims["tenant"] == "t1" and claims["exp"] - claims["iat"] == 120
    assert "email" not in claims and "name" not in claims

    expired = mint_token(tmp_path, sub="s", scopes="a", issuer=ISSUER, audience=AUDIENCE, ttl=-60)
    with pytest.raises(Exception, match="expired"):
        verify(expired, public_jwks(tmp_path))


def test_mint_cli_output_verifies(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    # A folder without the issuer's key: an error, not a new key that nothing trusts.
    assert cli_main(["mint", "--sub", ADMIN_SUB]) == 1
    assert "no signing key" in capsys.readouterr().err and not (tmp_path / "issuer").exists()
    assert cli_main(["mint", "--new-key", "--sub", ADMIN_SUB, "--scope", "admin user", "--role",
                     f"{ADMIN_ROLE['id']}:privx-admin", "--email", "a@example.com", "--name", "A", "--ttl", "300"]) == 0
    token = capsys.readouterr().out.strip()
    # Defaults apply when AUTH_ISSUER/AUTH_AUDIENCE are unset.
    claims = verify(token, public_jwks(tmp_path), "privx-dev-issuer", "privx-secrets")
    assert claims["sub"] == ADMIN_SUB and claims["scope"] == "admin user" and claims["roles"] == [ADMIN_ROLE]
    assert claims["email"] == "a@example.com" and claims["name"] == "A"
    assert claims["exp"] - claims["iat"] == 300

    assert cli_main(["jwks"]) == 0
    assert json.loads(capsys.readouterr().out) == public_jwks(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_runs_gunicorn(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "common.devtools.issuer.cli", "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if requests.get(f"{base}/auth/api/v1/status", timeout=1).json() == {"status": "RUNNING"}:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "issuer did not start"
            time.sleep(0.1)

        resp = requests.post(f"{base}{TOKEN_URL}", auth=("privx-external", "dev-oauth-secret"),
                             data={"grant_type": "password", "username": "admin", "password": "dev-admin-secret"},
                             timeout=5)
        assert resp.status_code == 200, resp.text
        jwks = requests.get(f"{base}/.well-known/jwks.json", timeout=5).json()
        claims = verify(resp.json()["access_token"], jwks, "privx-dev-issuer", "privx-secrets")
        assert claims["sub"] == ADMIN_SUB
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_bad_clients_file_fails_at_startup_without_echoing_secrets(tmp_path):
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(json.dumps({"api_clients": [
        {"username": "u", "password": "hunter2", "sub": "s", "roles": [{"id": "only-an-id"}]},
    ]}))
    with pytest.raises(ValueError, match=r"api_clients\[0\]: 'roles'") as err:
        create_issuer_app({"DATA_DIR": str(tmp_path), "ISSUER_CLIENTS_FILE": str(clients_file)})
    assert "hunter2" not in str(err.value)
