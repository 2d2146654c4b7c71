"""Who is calling under /v1/: Vault's token headers, and 403 (never 401) when that fails."""
from __future__ import annotations

from flask import current_app, g, request

from common import errors, ratelimit
from common.auth import Principal, require_scopes
from vault_service.acl.access import Operation, authorize
from vault_service.kv.wire import permission_denied


def token() -> str:
    """X-Vault-Token, else a bearer token; both sent: X-Vault-Token wins."""
    sent = request.headers.get("X-Vault-Token", "").strip()
    if not sent:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        sent = value.strip() if scheme.lower() == "bearer" else ""
    if not sent:
        raise permission_denied()
    return sent


def caller() -> Principal:
    """The verified caller (the validation of every route: size, signature, lifetime, claims),
    counted against its quota like every other route's."""
    principal = g.get("kv_principal")
    if principal is None:
        try:
            principal = current_app.extensions["token_validator"].validate(token())
        except errors.ApiError:  # 401 everywhere else; hvac's is_authenticated() needs 403
            raise permission_denied() from None
        g.principal = g.kv_principal = principal  # X-Vault-Token wins over a bearer token seen before
        _count(principal)
    return principal


def _count(principal: Principal) -> None:
    """The app counts requests with an Authorization header before any view; count the others."""
    limiter = current_app.extensions.get("rate_limiter")
    if limiter is None or "Authorization" in request.headers or principal.has_scope("service"):
        return
    group = ratelimit.route_group("GET" if request.method == "LIST" else request.method, request.path)
    if group in limiter.quotas:
        limiter.check(group, principal.sub)


def require(scopes: tuple[str, ...]) -> Principal:
    caller()
    return require_scopes(*scopes)


def allow(operation: Operation, name: str = "") -> Principal:
    """The caller, if its scopes or else its ACL policies allow `operation` on the KV path `name`."""
    principal = caller()
    authorize(principal, operation, name)
    return principal
