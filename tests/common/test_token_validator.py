"""The token validator caches verified tokens and learns each new principal once."""
from __future__ import annotations

import pytest

from common import auth, errors
from tests.support import AUDIENCE, ISSUER, TokenFactory


@pytest.fixture()
def validator_and_calls(data_dir):
    calls = []
    jwks = auth.JwksSource(file=f"{data_dir}/issuer/jwks.json")
    return auth.TokenValidator(jwks, issuer=ISSUER, audience=AUDIENCE, on_new_principal=calls.append), calls


def test_principal_from_a_real_token(validator_and_calls, data_dir):
    validator, calls = validator_and_calls
    token = TokenFactory(data_dir)("admin user", sub="s-1", roles=[{"id": "r1", "name": "Role One"}],
                                   email="a@example.com", name="A Person")
    principal = validator.validate(token)
    assert principal.sub == "s-1" and principal.scopes == {"admin", "user"}
    assert principal.roles == (auth.Role("r1", "Role One"),) and principal.role_ids == {"r1"}
    assert principal.email == "a@example.com" and principal.name == "A Person"
    assert validator.validate(token) is principal  # cached: no second verification
    assert calls == [principal]


def test_expired_cached_token_is_rejected(validator_and_calls, data_dir, monkeypatch):
    validator, _ = validator_and_calls
    token = TokenFactory(data_dir)("user", ttl=60)
    validator.validate(token)
    import time

    real = time.time
    monkeypatch.setattr(auth.time, "time", lambda: real() + 600)
    with pytest.raises(errors.Unauthorized):
        validator.validate(token)


def test_missing_jwks_configuration_is_a_configuration_error():
    with pytest.raises(errors.ApiError) as info:
        auth.JwksSource()
    assert info.value.code == "CONFIGURATION_ERROR"
