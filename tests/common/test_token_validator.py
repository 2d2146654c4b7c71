"""The token validator: token in, principal out (verified once, then remembered until it expires)."""
from __future__ import annotations

import pytest

from common import auth, errors
from tests.support import AUDIENCE, ISSUER, TokenFactory


@pytest.fixture()
def token_validator(data_dir):
    return auth.TokenValidator(auth.JwksSource(file=f"{data_dir}/issuer/jwks.json"), issuer=ISSUER, audience=AUDIENCE)


def test_principal_from_a_real_token(token_validator, data_dir):
    validator = token_validator
    token = TokenFactory(data_dir)("admin user", sub="s-1", roles=[{"id": "r1", "name": "Role One"}],
                                   email="a@example.com", name="A Person")
    principal = validator.validate(token)
    assert principal.sub == "s-1" and principal.scopes == {"admin", "user"}
    assert principal.roles == (auth.Role("r1", "Role One"),) and principal.role_ids == {"r1"}
    assert principal.email == "a@example.com" and principal.name == "A Person"
    assert validator.validate(token) is principal  # cached: no second verification


def test_verifying_remembers_nothing_until_told(token_validator, data_dir):
    """The request pipeline verifies, learns, then remembers (common.auth.current_principal):
    a token whose learning failed is verified and learnt again on its next request."""
    validator = token_validator
    token = TokenFactory(data_dir)("user", sub="s-2")
    assert validator.remembered(token) is None
    principal, expires = validator.verify(token)
    assert principal.sub == "s-2" and validator.remembered(token) is None
    validator.remember(token, principal, expires)
    assert validator.remembered(token) is principal and validator.validate(token) is principal


def test_expired_cached_token_is_rejected(token_validator, data_dir, monkeypatch):
    validator = token_validator
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
