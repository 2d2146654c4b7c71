"""Who is calling under /v1/: Vault's token headers, and 403 (never 401) when that fails."""
from __future__ import annotations

from common import errors
from common.auth import Principal, current_principal, presented_token, require_scopes
from vault_service.acl.access import Operation, authorize
from vault_service.kv.wire import permission_denied


def caller() -> Principal:
    """The verified caller (the validation of every route: size, signature, lifetime, claims).

    The token is X-Vault-Token, else a bearer token; when both are sent X-Vault-Token wins and
    Authorization is ignored (common.auth: the /v1 endpoint accepts Vault's header). The app's
    rate limiter asked for the same principal before the view ran, so the request is counted
    against the quota of the caller it is served for."""
    try:
        return current_principal()
    except errors.ApiError:  # 401 everywhere else; hvac's is_authenticated() needs 403
        raise permission_denied() from None


def token() -> str:
    """The text of the token caller() verified (X-Vault-Token, else the bearer token)."""
    return presented_token()


def require(scopes: tuple[str, ...]) -> Principal:
    caller()
    return require_scopes(*scopes)


def allow(operation: Operation, name: str = "") -> Principal:
    """The caller, if its scopes or else its ACL policies allow `operation` on the KV path `name`."""
    principal = caller()
    authorize(principal, operation, name)
    return principal
