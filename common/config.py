"""Settings shared by both services, read from the environment only when an app is created."""
from __future__ import annotations

import os

# Every setting an operator can give, with its default. The README documents each one.
DEFAULTS = {
    "DATABASE_URL": None,  # unset: a private PostgreSQL is started under DATA_DIR
    "DATA_DIR": ".data",
    "AUTH_JWKS_FILE": None,  # unset (and no URL): DATA_DIR/issuer/jwks.json of the dev issuer
    "AUTH_JWKS_URL": None,
    "AUTH_ISSUER": "privx-dev-issuer",
    "AUTH_AUDIENCE": "privx-secrets",
    "AUTH_LEEWAY_SECONDS": 30,
    "AUTH_MAX_TOKEN_LIFETIME_SECONDS": 86400,  # longer-lived tokens (exp - iat/nbf) are 401
    "LOG_LEVEL": "INFO",
    "DB_POOL_MIN_SIZE": 1,
    "DB_POOL_MAX_SIZE": 4,
    "DB_POOL_TIMEOUT_SECONDS": 3.0,
    "DB_STATEMENT_TIMEOUT_MS": 5000,
    "REDIS_URL": None,  # set: rate-limit counts are shared by every worker and replica
    "RATE_LIMIT_READS": 0,  # requests per caller and window; 0 = unlimited
    "RATE_LIMIT_WRITES": 0,
    "RATE_LIMIT_CHECKOUTS": 0,
    "RATE_LIMIT_WINDOW_SECONDS": 60,
    "RATE_LIMIT_REDIS_PREFIX": "ratelimit",
    "AUDIT_RETENTION_DAYS": 0,  # 0: keep every audit event
}



def _typed_like(default, raw: str):
    """Environment values are strings; give them the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load(defaults: dict, overrides: dict | None = None) -> dict:
    """Defaults, then the environment, then explicit overrides (tests pass these)."""
    settings = dict(defaults)
    for key in defaults:
        if key in os.environ and os.environ[key] != "":
            settings[key] = _typed_like(defaults[key], os.environ[key])
    settings.update(overrides or {})
    return settings
