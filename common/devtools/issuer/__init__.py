"""Development token issuer: signs PrivX-style access tokens (EdDSA JWTs) for local runs and tests.

Test-suites call :func:`mint_token`; services trust ``DATA_DIR/issuer/jwks.json`` or the JWKS endpoint.
"""
from .keys import ensure_signing_key, mint_token, public_jwks

__all__ = ["ensure_signing_key", "mint_token", "public_jwks"]
