"""OAuth clients and API clients (resource owners) of the development token issuer.

Both come from one JSON file (ISSUER_CLIENTS_FILE, default: the packaged default_clients.json).
Secrets are dataclass fields with repr=False, because authlib logs clients with %r.
"""
from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from importlib import resources

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope

GRANT_TYPES = frozenset({"password", "client_credentials"})
AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


def _secret_equals(given: str | None, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str; constant time against guessing.
    return hmac.compare_digest((given or "").encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Principal:
    """Who a token is about: becomes its sub/scope/roles/email/name claims."""

    sub: str
    scopes: tuple[str, ...]
    roles: tuple[dict, ...] = ()
    email: str | None = None
    name: str | None = None

    def narrow(self, requested: str | None) -> tuple[str, ...]:
        """The granted scopes, narrowed to a requested ``scope`` parameter (never widened)."""
        if not requested or not requested.split():
            return self.scopes
        wanted = set(requested.split())
        return tuple(s for s in self.scopes if s in wanted)


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    client_id: str
    client_secret: str = field(repr=False)
    grant_types: frozenset[str]
    principal: Principal  # used by client_credentials; password grants use the API client's

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # no redirect-based grants here

    def get_allowed_scope(self, scope):
        return list_to_scope(self.principal.narrow(scope))

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return _secret_equals(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


@dataclass(frozen=True)
class ApiClient:
    username: str
    password: str = field(repr=False)
    principal: Principal


@dataclass(frozen=True)
class ClientRegistry:
    oauth_clients: dict[str, OAuthClient]
    api_clients: dict[str, ApiClient]

    def query_client(self, client_id: str) -> OAuthClient | None:
        return self.oauth_clients.get(client_id)

    def authenticate_api_client(self, username: str, password: str) -> ApiClient | None:
        client = self.api_clients.get(username)
        # Compare even for unknown names, so timing does not reveal which usernames exist.
        ok = _secret_equals(password, client.password if client else "\0unknown")
        return client if client and ok else None


def _principal(entry: dict, where: str) -> Principal:
    scope = entry.get("scope", "")
    if not isinstance(scope, str):
        raise ValueError(f"{where}: 'scope' must be a space-separated string")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, dict) and {"id", "name"} <= r.keys() for r in roles):
        raise ValueError(f"{where}: 'roles' must be a list of {{\"id\", \"name\"}} objects")
    return Principal(
        sub=str(entry["sub"]),
        scopes=tuple(dict.fromkeys(scope.split())),
        roles=tuple({"id": str(r["id"]), "name": str(r["name"])} for r in roles),
        email=entry.get("email"),
        name=entry.get("name"),
    )


def _require(entry: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if not isinstance(entry.get(k), str) or not entry[k]]
    if missing:
        # Names only: the message must never carry a secret value.
        raise ValueError(f"{where}: missing or empty {', '.join(missing)}")


def parse_clients(data: dict, source: str = "clients file") -> ClientRegistry:
    oauth: dict[str, OAuthClient] = {}
    for i, entry in enumerate(data.get("oauth_clients", [])):
        where = f"{source}: oauth_clients[{i}]"
        _require(entry, ("client_id", "client_secret", "sub"), where)
        grants = frozenset(entry.get("grant_types", ["password", "client_credentials"]))
        if not grants <= GRANT_TYPES:
            raise ValueError(f"{where}: unsupported grant_types {sorted(grants - GRANT_TYPES)}")
        if entry["client_id"] in oauth:
            raise ValueError(f"{where}: duplicate client_id {entry['client_id']!r}")
        oauth[entry["client_id"]] = OAuthClient(
            entry["client_id"], entry["client_secret"], grants, _principal(entry, where)
        )
    api: dict[str, ApiClient] = {}
    for i, entry in enumerate(data.get("api_clients", [])):
        where = f"{source}: api_clients[{i}]"
        _require(entry, ("username", "password", "sub"), where)
        if entry["username"] in api:
            raise ValueError(f"{where}: duplicate username {entry['username']!r}")
        api[entry["username"]] = ApiClient(entry["username"], entry["password"], _principal(entry, where))
    return ClientRegistry(oauth, api)


def load_clients(path: str | os.PathLike | None = None) -> ClientRegistry:
    """Read the clients file; ``None`` means the packaged development defaults."""
    if path:
        text, source = open(path, encoding="utf-8").read(), os.fspath(path)
    else:
        text = resources.files(__package__).joinpath("default_clients.json").read_text(encoding="utf-8")
        source = "default_clients.json"
    return parse_clients(json.loads(text), source)
