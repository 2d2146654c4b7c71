"""Bearer JWT validation (joserfc), the Principal, and scope checks.

Every check a token can fail has its own 401 message naming the check, never a value from
the token. The header is judged before any key is looked up: only asymmetric algorithms,
no key material or key URLs carried by the token itself (`jwk`, `jku`, `x5u`, `x5c`: a
token must never choose its own verifier, and no request ever goes out to a URL it names),
no `crit` extensions (we understand none), and `kid` only as a name in the trusted set.

A verified token is cached until it expires, so the hot path costs one dict
lookup rather than a signature check per request.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
import threading
import time
from collections import OrderedDict
import dataclasses
from dataclasses import dataclass, field

import requests
from common import current, errors
from common.text_array import TextArray
from common.jose import JoseError, KeySet, jws

log = logging.getLogger(__name__)

# Asymmetric only: `none` and HMAC (a shared secret anyone holding the JWKS could forge) are refused.
ALLOWED_ALGORITHMS = ("EdDSA", "Ed25519", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
                      "PS256", "PS384", "PS512")
ALLOWED_TYPES = ("jwt", "at+jwt", "application/jwt", "application/at+jwt")  # media types: case-insensitive
# Header parameters that would let a token bring its own key or make us fetch one.
KEY_BEARING_HEADERS = ("jwk", "jku", "x5u", "x5c")
MAX_TOKEN_BYTES = 8 * 1024
DEFAULT_MAX_LIFETIME = 86400
_CACHE_SIZE = 10_000
_JWKS_REFRESH_MIN_INTERVAL = 30.0


# joserfc's error codes, as the check that failed.
_JOSE_CHECKS = {"bad_signature": "bad signature", "unsupported_header": "unsupported header",
                "invalid_header_value": "malformed header", "exceeded_size": "too large"}


def _invalid(check: str) -> errors.Unauthorized:
    return errors.Unauthorized(f"invalid token: {check}")


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
    # Roles held for this request beyond the token's (the workflow engine's live grants), set by
    # the app's GRANTS_HOOK; asked only when the token's roles do not decide, so a caller whose
    # token carries the role costs nothing more.
    grants: "GrantedRoles | None" = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def sorted_role_ids(self) -> TextArray:
        """role_ids sorted, as SQL takes them (made once for the principal the token's cache keeps)."""
        return TextArray(sorted(self.role_ids))

    @functools.cached_property
    def sub_json(self) -> str:
        """sub as JSON text, as log lines and their audit events carry it (made once for the
        principal the token's cache keeps: quoting it was 2,000 instructions a logged request)."""
        return json.dumps(self.sub, default=str)

    def has_scope(self, *scopes: str) -> bool:
        return not self.scopes.isdisjoint(scopes)

    def holds_any_role(self, role_ids) -> bool:
        wanted = frozenset(role_ids)
        if not self.role_ids.isdisjoint(wanted):
            return True
        if self.grants is None:
            return False
        granted = self.grants.role_ids() & wanted
        if granted:
            self.grants.used(granted)  # a FLOATING grant's window starts at its first use
        return bool(granted)

    def all_role_ids(self) -> frozenset[str]:
        """The token's roles and the granted ones (a listing filters by all of them)."""
        return self.role_ids | self.grants.role_ids() if self.grants is not None else self.role_ids


class GrantedRoles:
    """What a GRANTS_HOOK gives a principal: the role ids granted to it now, and a note that
    some of them were needed (used)."""

    def role_ids(self) -> frozenset[str]:
        raise NotImplementedError

    def used(self, role_ids: frozenset[str]) -> None:
        raise NotImplementedError


# app.extensions key: a callable (sub) -> GrantedRoles for the apps that honour grants.
GRANTS_HOOK = "granted_roles"
# app.extensions key: a callable (Principal) -> None, the app's step after authenticating a token
# it has not seen before (the Vault's role registry, the workflow engine's names and mail).
LEARN_HOOK = "learn_principal"
# app.extensions key: a callable (principal) -> the principal with roles held beyond its token
# added to its roles (the Vault's live grants, from a per-process cache: the SQL that decides
# with the caller's role ids then counts them with no query of its own).
ROLES_HOOK = "roles_beyond_token"


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
        self._key_set: KeySet | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            stale = refresh and time.monotonic() - self._loaded_at > _JWKS_REFRESH_MIN_INTERVAL
            if self._key_set is None or stale:
                self._key_set = self._load()
                self._loaded_at = time.monotonic()
            return self._key_set

    def _load(self) -> KeySet:
        try:
            if self.url:
                response = requests.get(self.url, timeout=5)
                response.raise_for_status()
                document = response.json()
            else:
                with open(self.file, encoding="utf-8") as handle:
                    document = json.load(handle)
            return KeySet.import_key_set(document)
        except (OSError, ValueError, TypeError, KeyError, JoseError, requests.RequestException) as exc:
            log.error("cannot load the trusted token keys", extra={"exception_type": type(exc).__name__})
            raise errors.Unauthorized("token keys unavailable") from None


def _b64_json(segment: str, what: str):
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise _invalid(f"malformed {what}") from None


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _is_time(value) -> bool:
    # NumericDate: a finite JSON number (NaN compares false with everything: it would never expire).
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_header(header) -> None:
    if not isinstance(header, dict):
        raise _invalid("malformed header")
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise _invalid("algorithm not allowed")
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.lower() not in ALLOWED_TYPES:
        raise _invalid("wrong type")
    if any(name in header for name in KEY_BEARING_HEADERS):
        raise _invalid("embedded or remote keys are not trusted")
    if "crit" in header:
        raise _invalid("unsupported critical header")
    if "kid" in header and not isinstance(header["kid"], str):
        raise _invalid("malformed key id")


class TokenValidator:
    """Token in, Principal out: reads the trusted keys, writes nothing anywhere but its own
    memory of the tokens it verified (what a service learns from a new principal is the request
    pipeline's step after this one: current_principal)."""

    def __init__(self, jwks: JwksSource, *, issuer: str, audience: str, leeway: int = 30,
                 max_lifetime: int = DEFAULT_MAX_LIFETIME):
        self.jwks = jwks
        self.issuer, self.audience = issuer, audience
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def validate(self, token: str) -> Principal:
        """The Principal of a valid token; raises Unauthorized otherwise."""
        principal = self.remembered(token)
        if principal is None:
            principal, expires = self.verify(token)
            self.remember(token, principal, expires)
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The Principal of a token verified before and not yet expired, else None."""
        if len(token) > MAX_TOKEN_BYTES:
            raise _invalid("too large")
        cached = self._cache.get(token)
        if cached is not None and cached[1] + self.leeway > time.time():
            return cached[0]
        return None

    def verify(self, token: str) -> tuple[Principal, float]:
        """(Principal, expiry) of a valid token, checked in full; raises Unauthorized otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise _invalid("too large")
        return self._verify(token, time.time())

    def remember(self, token: str, principal: Principal, expires: float) -> None:
        """Keep a verified token's Principal until it expires (the next request costs a lookup)."""
        with self._cache_lock:
            self._cache[token] = (principal, expires)
            if len(self._cache) > _CACHE_SIZE:
                self._evict(time.time())

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._cache.items() if exp + self.leeway <= now]:
            del self._cache[key]
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    def _verify(self, token: str, now: float) -> tuple[Principal, float]:
        segments = token.split(".")
        if len(segments) != 3:
            raise _invalid("malformed")
        header = _b64_json(segments[0], "header")
        _check_header(header)
        claims = self._verified_payload(token, header)
        self._check_claims(claims, now)
        try:
            return principal_from_claims(claims), float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise _invalid("malformed claims") from None

    def _verified_payload(self, token: str, header: dict) -> dict:
        key = self._key(header)
        try:
            verified = jws.deserialize_compact(token, key, algorithms=[header["alg"]])
            claims = json.loads(verified.payload, parse_constant=_reject_constant)
        except JoseError as exc:
            raise _invalid(_JOSE_CHECKS.get(exc.error, "malformed")) from None
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
            raise _invalid("malformed claims") from None
        if not isinstance(claims, dict):
            raise _invalid("malformed claims")
        return claims

    def _key(self, header: dict):
        """The trusted key the header names (re-reading the set once: the issuer may have rotated)."""
        for refresh in (False, True):
            key_set = self.jwks.key_set(refresh=refresh)
            keys = [k for k in key_set if k.kid == header.get("kid")] if "kid" in header else list(key_set)
            keys = [k for k in keys if k.get("alg") in (None, header["alg"]) and k.get("use") in (None, "sig")]
            if len(keys) == 1:
                return keys[0]
        raise _invalid("unknown signing key")

    def _check_claims(self, claims: dict, now: float) -> None:
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _is_time(claims[name]):
                raise _invalid(f"malformed {name}")
        if "exp" not in claims:
            raise _invalid("no expiry")
        if claims["exp"] + self.leeway <= now:
            raise _invalid("expired")
        if claims.get("nbf", -math.inf) - self.leeway > now:
            raise _invalid("not yet valid")
        if claims.get("iat", -math.inf) - self.leeway > now:
            raise _invalid("issued in the future")
        start = min(claims.get("iat", now), claims.get("nbf", now))
        if claims["exp"] - start > self.max_lifetime:
            raise _invalid("lifetime too long")
        if claims.get("iss") != self.issuer:
            raise _invalid("wrong issuer")
        audience = claims.get("aud")
        if audience != self.audience and not (isinstance(audience, list) and self.audience in audience):
            raise _invalid("wrong audience")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _invalid("no subject")


# --- Flask helpers ---------------------------------------------------------

# One request, one principal: the token comes from one header, chosen by the route, and the other
# header is ignored for authentication and for rate counting alike (both ask current_principal()).
# `Authorization: Bearer` everywhere; on the routes of HashiCorp's wire protocol (registered with
# accept_vault_token), `X-Vault-Token` when it is sent, as Vault itself takes it.
VAULT_TOKEN_HEADER = "X-Vault-Token"
_VAULT_TOKEN_ENDPOINTS = "vault_token_endpoints"  # app.extensions key: endpoints that take X-Vault-Token


def accept_vault_token(app, endpoint: str) -> None:
    """Let `endpoint` be authenticated by X-Vault-Token, which then wins over Authorization."""
    app.extensions.setdefault(_VAULT_TOKEN_ENDPOINTS, set()).add(endpoint)


def _token_header() -> tuple[str, str] | None:
    """(header name, its value) of the header that authenticates this request, None if it sent none."""
    request = current.request()
    environ = request.environ  # the headers as the server gave them: no Headers object made (issue 25)
    if request.endpoint in current.app().extensions.get(_VAULT_TOKEN_ENDPOINTS, ()):
        sent = environ.get("HTTP_X_VAULT_TOKEN", "").strip()
        if sent:
            return VAULT_TOKEN_HEADER, sent
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization is not None:
        return "Authorization", authorization
    return None


def presents_token() -> bool:
    """Whether the request carries a token in the header that authenticates it (valid or not)."""
    return _token_header() is not None


def presented_token() -> str:
    """The token text of the header that authenticates this request (401 if there is none)."""
    header = _token_header()
    if header is None:
        raise errors.Unauthorized("a bearer token is required")
    name, value = header
    if name == VAULT_TOKEN_HEADER:
        return value
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("a bearer token is required")
    return token.strip()


def current_principal() -> Principal:
    """The authenticated caller of this request (401 if there is none): a token this process
    knows costs one lookup, a new one is verified and then learnt (_first_sight)."""
    g = current.g()
    principal = g.get("principal")
    if principal is None:
        extensions = current.app().extensions
        validator = extensions["token_validator"]
        token = presented_token()
        principal = validator.remembered(token)
        if principal is None:
            principal = _first_sight(validator, token)
        grants = extensions.get(GRANTS_HOOK)
        if grants is not None:  # this request's own: the validator's cached principal stays token-only
            principal = dataclasses.replace(principal, grants=grants(principal.sub))
        more_roles = extensions.get(ROLES_HOOK)
        if more_roles is not None:
            principal = more_roles(principal)
        g.principal = principal
    return principal


def _first_sight(validator: TokenValidator, token: str) -> Principal:
    """Authenticate a token this process has not seen, then let the app learn its principal
    (LEARN_HOOK: the Vault's role registry, the workflow engine's names and mail).

    Learning is the step after authentication, never part of it, and never decides the
    answer: with the database down, a route that needs it answers its own 503 (under /v1/ too,
    where a failed authentication is a 403) and one that needs none still answers. A token
    is remembered only once learnt, so its next request tries again."""
    principal, expires = validator.verify(token)
    learn = current.app().extensions.get(LEARN_HOOK)
    if learn is not None:
        try:
            learn(principal)
        except errors.DatabaseUnavailable:
            log.warning("a new caller could not be recorded (database unavailable): tried again on its next request")
            return principal
    validator.remember(token, principal, expires)
    return principal


def require_scopes(*scopes: str, allow_owner_of: str | None = None) -> Principal:
    """The caller, if it holds one of `scopes` (or, when given, is the owner `allow_owner_of`)."""
    principal = current_principal()
    if allow_owner_of is not None and principal.sub == allow_owner_of:
        return principal
    if not principal.has_scope(*scopes):
        raise errors.PermissionDenied(f"the token lacks a required scope (one of: {', '.join(scopes)})")
    return principal


def scoped(*scopes: str, owner: str | None = None):
    """View decorator: authenticate and check the scope before the body or query is parsed.

    The contract's order of checks is 401, then 403, then 400: a caller without the scope
    learns nothing about the request's shape. `owner` names the view argument (a path part)
    whose value, when it is the caller's `sub`, passes as the scope would. Put it above the
    view's @blp.arguments; the view then takes the caller from current_principal().
    """
    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            require_scopes(*scopes, allow_owner_of=kwargs.get(owner) if owner else None)
            return view(*args, **kwargs)
        return checked
    return decorate
