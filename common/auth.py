"""Bearer JWT validation (authlib), the Principal, and scope checks.

A verified token is cached until it expires, so the hot path costs one dict
lookup rather than a signature check per request.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import requests
from flask import current_app, g, request

from common import errors
from common.jose import JoseError, JsonWebKey, JsonWebToken

log = logging.getLogger(__name__)

# Asymmetric only: `none` and HMAC (a shared secret anyone holding the JWKS could forge) are refused.
ALLOWED_ALGORITHMS = ("EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
MAX_TOKEN_BYTES = 8 * 1024
_CACHE_SIZE = 10_000
_JWKS_REFRESH_MIN_INTERVAL = 30.0


@dataclass(frozen=True)
class Role:
    id: str
    name: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified claims of the bearer token."""

    sub: str
    scopes: frozenset[str]
    roles: tuple[Role, ...] = ()
    email: str | None = None
    name: str | None = None
    role_ids: frozenset[str] = field(default=frozenset(), compare=False)

    def has_scope(self, *scopes: str) -> bool:
        return not self.scopes.isdisjoint(scopes)

    def holds_any_role(self, role_ids) -> bool:
        return not self.role_ids.isdisjoint(role_ids)


def principal_from_claims(claims: dict) -> Principal:
    scope = claims.get("scope") or ""
    scopes = scope.split() if isinstance(scope, str) else list(scope)
    roles = tuple(
        Role(str(r["id"]), str(r.get("name") or r["id"]))
        for r in claims.get("roles") or ()
        if isinstance(r, dict) and r.get("id")
    )
    return Principal(
        sub=str(claims["sub"]),
        scopes=frozenset(scopes),
        roles=roles,
        email=claims.get("email"),
        name=claims.get("name"),
        role_ids=frozenset(r.id for r in roles),
    )


class JwksSource:
    """The trusted public keys, from a JWKS file or URL, re-read when an unknown kid shows up."""

    def __init__(self, *, file: str | None = None, url: str | None = None):
        if not file and not url:
            raise errors.ApiError("AUTH_JWKS_FILE or AUTH_JWKS_URL must be set", code="CONFIGURATION_ERROR")
        self.file, self.url = file, url
        self._key_set = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def key_set(self, *, refresh: bool = False):
        with self._lock:
            stale = refresh and time.monotonic() - self._loaded_at > _JWKS_REFRESH_MIN_INTERVAL
            if self._key_set is None or stale:
                self._key_set = JsonWebKey.import_key_set(self._fetch())
                self._loaded_at = time.monotonic()
            return self._key_set

    def _fetch(self) -> dict:
        try:
            if self.url:
                response = requests.get(self.url, timeout=5)
                response.raise_for_status()
                return response.json()
            with open(self.file, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError, requests.RequestException) as exc:
            log.error("cannot load the trusted token keys", extra={"exception_type": type(exc).__name__})
            raise errors.Unauthorized("token keys unavailable") from None


def _header(token: str) -> dict:
    try:
        segment = token.split(".", 1)[0]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise errors.Unauthorized("malformed token") from None


class TokenValidator:
    def __init__(self, jwks: JwksSource, *, issuer: str, audience: str, leeway: int = 30, on_new_principal=None):
        self.jwks = jwks
        self.leeway = leeway
        self._jwt = JsonWebToken(list(ALLOWED_ALGORITHMS))
        self._claims_options = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        self._on_new_principal = on_new_principal
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def validate(self, token: str) -> Principal:
        """The Principal of a valid token; raises Unauthorized otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise errors.Unauthorized("token too large")
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None and cached[1] + self.leeway > now:
            return cached[0]
        principal, expires = self._verify(token)
        if self._on_new_principal is not None:
            self._on_new_principal(principal)
        with self._cache_lock:
            self._cache[token] = (principal, expires)
            if len(self._cache) > _CACHE_SIZE:
                self._evict(now)
        return principal

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._cache.items() if exp + self.leeway <= now]:
            del self._cache[key]
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    def _verify(self, token: str) -> tuple[Principal, float]:
        header = _header(token)
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise errors.Unauthorized("token algorithm not allowed")
        claims = self._decode(token, refresh=False)
        try:
            claims.validate(leeway=self.leeway)
            if not isinstance(claims.get("sub"), str) or not claims["sub"]:
                raise errors.Unauthorized("token has no subject")
            return principal_from_claims(claims), float(claims["exp"])
        except JoseError as exc:
            raise errors.Unauthorized(f"invalid token: {exc.error}") from None
        except (KeyError, TypeError, ValueError):
            raise errors.Unauthorized("invalid token claims") from None

    def _decode(self, token: str, *, refresh: bool):
        try:
            return self._jwt.decode(token, self.jwks.key_set(refresh=refresh), claims_options=self._claims_options)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            # An unknown kid may mean the issuer rotated its key: re-read the key set once.
            if not refresh and "kid" in str(exc).lower():
                return self._decode(token, refresh=True)
            raise errors.Unauthorized("invalid token signature") from None


# --- Flask helpers ---------------------------------------------------------

def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("a bearer token is required")
    return token.strip()


def current_principal() -> Principal:
    """The authenticated caller of this request (401 if there is none)."""
    principal = g.get("principal")
    if principal is None:
        principal = current_app.extensions["token_validator"].validate(_bearer_token())
        g.principal = principal
    return principal


def require_scopes(*scopes: str, allow_owner_of: str | None = None) -> Principal:
    """The caller, if it holds one of `scopes` (or, when given, is the owner `allow_owner_of`)."""
    principal = current_principal()
    if allow_owner_of is not None and principal.sub == allow_owner_of:
        return principal
    if not principal.has_scope(*scopes):
        raise errors.PermissionDenied("the token lacks a required scope")
    return principal
