"""Every way a token can be wrong is a 401; a valid token without the scope is a 403."""
from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from common.jose import OKPKey, jwt
from joserfc.jwk import OctKey
from tests.support import AUDIENCE, ISSUER
from tests.vault.helpers import V1, assert_error, create_shared, new_role


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _claims(**overrides):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 300, "scope": "admin user"}
    claims.update(overrides)
    return claims


def _get(client, token):
    return client.get(f"{V1}/secrets", headers={"Authorization": f"Bearer {token}"})


def test_no_token_is_401(client):
    body = assert_error(client.get(f"{V1}/secrets"), 401, "UNAUTHORIZED")
    assert "bearer" in body["error_message"].lower()


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer    ", "token"])
def test_malformed_authorization_header_is_401(client, header):
    assert_error(client.get(f"{V1}/secrets", headers={"Authorization": header}), 401, "UNAUTHORIZED")


def test_garbage_token_is_401(client):
    assert_error(_get(client, "not.a.jwt"), 401, "UNAUTHORIZED")


def test_valid_token_is_accepted(client, tokens):
    assert client.get(f"{V1}/secrets", headers=tokens.headers("user")).status_code == 200


def test_token_signed_by_another_key_is_401(client):
    stranger = OKPKey.generate_key("Ed25519", private=True)
    token = jwt.encode({"alg": "EdDSA", "kid": stranger.thumbprint()}, _claims(), stranger, algorithms=["EdDSA"])
    assert_error(_get(client, token), 401, "UNAUTHORIZED")


def test_tampered_claims_are_401(client, tokens):
    header, _, signature = tokens("user").split(".")
    forged = f"{header}.{_b64(_claims(scope='admin'))}.{signature}"
    assert_error(_get(client, forged), 401, "UNAUTHORIZED")


def test_alg_none_is_401(client):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert_error(_get(client, token), 401, "UNAUTHORIZED")


def test_hmac_signed_with_public_key_is_401(client, data_dir):
    # The classic algorithm-confusion attack: HS256 keyed with the issuer's public key.
    public = json.loads(open(f"{data_dir}/issuer/jwks.json").read())["keys"][0]
    secret = OctKey.import_key(public["x"].encode())
    token = jwt.encode({"alg": "HS256", "kid": public["kid"]}, _claims(), secret, algorithms=["HS256"])
    assert_error(_get(client, token), 401, "UNAUTHORIZED")


def test_expired_token_is_401(client, tokens):
    assert_error(_get(client, tokens("user", ttl=-120)), 401, "UNAUTHORIZED")


def test_expiry_within_leeway_is_accepted(client, tokens):
    assert _get(client, tokens("user", ttl=-5)).status_code == 200


def test_wrong_audience_is_401(client, tokens):
    assert_error(_get(client, tokens("user", audience="someone-else")), 401, "UNAUTHORIZED")


def test_wrong_issuer_is_401(client, tokens):
    assert_error(_get(client, tokens("user", issuer="evil-issuer")), 401, "UNAUTHORIZED")


def test_token_over_8_kib_is_401(client, tokens):
    token = tokens("user", padding="x" * 9000)
    assert len(token) > 8192
    assert_error(_get(client, token), 401, "UNAUTHORIZED")


def test_missing_scope_is_403(client, tokens):
    assert_error(client.post(f"{V1}/secrets", headers=tokens.headers("user"),
                             json={"name": "x", "data": {}}), 403, "PERMISSION_DENIED")


def test_service_scope_cannot_use_v1_reads(client, tokens):
    name = create_shared(client, tokens)
    assert_error(client.get(f"{V1}/secrets/{name}", headers=tokens.headers("service")), 403, "PERMISSION_DENIED")


def test_user_scope_cannot_use_versioned_api(client, tokens):
    name = create_shared(client, tokens)
    assert_error(client.get(f"{V1}/secret/data/{name}", headers=tokens.headers("user")), 403, "PERMISSION_DENIED")


def test_missing_role_hides_the_secret(client, tokens):
    role = new_role()
    name = create_shared(client, tokens, read_roles=[role])
    outsider = tokens.headers("user", roles=[new_role()])
    assert_error(client.get(f"{V1}/secrets/{name}", headers=outsider), 404, "OBJECT_NOT_FOUND")


def test_role_names_are_learnt_from_tokens(client, tokens):
    role = {"id": str(uuid.uuid4()), "name": "name-the-client-sent"}
    name = create_shared(client, tokens, read_roles=[role])
    reader = tokens.headers("user", roles=[{"id": role["id"], "name": "name-from-the-token"}])
    body = client.get(f"{V1}/secrets/{name}", headers=reader).json
    assert body["read_roles"] == [{"id": role["id"], "name": "name-from-the-token", "deleted": False}]
