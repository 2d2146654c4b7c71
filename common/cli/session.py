"""Logging in, the cached token, and HTTP calls whose failures become one line and an exit code.

Login works as the PrivX SDKs do: the OAuth client in HTTP Basic, and either the password
grant (an API client's username and password) or client credentials. The token is cached
in the user's config dir (`click.get_app_dir`, so $XDG_CONFIG_HOME on Linux) with mode 0600,
with the URLs it was obtained for; SECRETS_TOKEN overrides the cache.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import requests

APP_NAME = "privx-secrets"
TIMEOUT = (5.0, 30.0)

# Exit codes a script can tell apart (also in `secrets --help`).
EXIT_ERROR = 1
EXIT_USAGE = 2  # a bad argument, or a request the server refused as malformed (400)
EXIT_AUTH = 3  # not logged in, token expired or refused (401), login refused
EXIT_DENIED = 4  # 403: the token lacks a scope or role
EXIT_NOT_FOUND = 5  # 404
EXIT_CONFLICT = 6  # 409: exists already, version conflict, checkout limit
EXIT_UNAVAILABLE = 7  # cannot connect, 429, 5xx: worth retrying later
_BY_STATUS = {400: EXIT_USAGE, 413: EXIT_USAGE, 401: EXIT_AUTH, 403: EXIT_DENIED, 404: EXIT_NOT_FOUND,
              409: EXIT_CONFLICT, 429: EXIT_UNAVAILABLE}

# What `make run` serves when nothing else is configured.
DEFAULT_URLS = {"auth": "http://127.0.0.1:8080", "vault": "http://127.0.0.1:8081", "sm": "http://127.0.0.1:8082"}
API = {"auth": "/auth/api/v1", "vault": "/vault/api/v1", "sm": "/secrets-manager/api/v1",
       "workflow": "/workflow-engine/api/v1"}
# APIs another service serves: the workflow engine is the Secrets Manager's.
SERVED_BY = {"workflow": "sm"}
# Where a running `make run` leaves the URLs it chose (in its DATA_DIR, `.data` by default; common.devtools.devstack).
URLS_FILE = "urls.json"
# What moves each service's URL, for the message when one cannot be reached.
URL_SETTINGS = {"auth": "SECRETS_AUTH_URL (--auth-url)", "vault": "SECRETS_VAULT_URL (--vault-url)",
                "sm": "SECRETS_SM_URL (--sm-url)"}


class CliError(click.ClickException):
    """One line on stderr and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR, *, status: int | None = None,
                 property: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        # A server's refusal, for a command that acts on it (the HTTP status and the field it named).
        self.status = status
        self.property = property



@dataclass
class Endpoints:
    auth: str
    vault: str
    sm: str
    # The URLs someone chose (options, SECRETS_*, a login's): what a login caches, so that the
    # commands after it go where it went. Those of `make run` and the defaults are not cached.
    chosen: dict = field(default_factory=dict, repr=False)

    @classmethod
    def resolve(cls, base: str | None, given: dict[str, str | None], cached: dict | None,
                running_suite: dict | None = None) -> "Endpoints":
        """Per-service URL, else the common base URL (one origin behind a proxy), else the cached
        login's, else those of the `make run` running here (its URLS_FILE), else `make run`'s defaults."""
        urls, chosen = {}, {}
        for service in ("auth", "vault", "sm"):
            url = given.get(service) or base or (cached or {}).get(service)
            if url:
                chosen[service] = url.rstrip("/")
            urls[service] = (url or (running_suite or {}).get(service) or DEFAULT_URLS[service]).rstrip("/")
        return cls(**urls, chosen=chosen)


def running_suite_urls() -> dict | None:
    """The URLs of the `make run` whose DATA_DIR (default `.data`) is here, while it runs."""
    path = Path(os.environ.get("DATA_DIR") or ".data") / URLS_FILE
    try:
        urls = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(urls, dict):
        return None
    return {k: v for k, v in urls.items() if k in DEFAULT_URLS and isinstance(v, str)}


def unreachable(service: str, url: str, exc: Exception) -> str:
    """The message for a URL nothing answers at, with how to point the command line elsewhere."""
    return (f"cannot reach {url}: {type(exc).__name__}; is the service running there? Set {URL_SETTINGS[service]}, "
            "or SECRETS_URL (--url) for one origin behind a proxy (`make run` prints its URLs)")


def token_file() -> Path:
    return Path(click.get_app_dir(APP_NAME)) / "token.json"


def login(endpoints: Endpoints, *, client_id: str, client_secret: str, username: str | None,
          password: str | None, scope: str | None) -> dict:
    form = {"grant_type": "password", "username": username, "password": password} if username else {
        "grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    url = endpoints.auth + API["auth"] + "/oauth/token"
    try:
        response = requests.post(url, data=form, auth=(client_id, client_secret), timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise CliError(unreachable("auth", f"the token endpoint {url}", exc), EXIT_UNAVAILABLE) from None
    body = _json_or_none(response)
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        reason = (body or {}).get("error_description") or (body or {}).get("error") if isinstance(body, dict) else None
        code = EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_AUTH
        raise CliError(f"login refused ({response.status_code}): {reason or 'no token in the answer'}", code)
    return {"access_token": body["access_token"], "scope": body.get("scope", ""),
            "expires_at": int(time.time()) + int(body.get("expires_in") or 0), "urls": endpoints.chosen}


def save(token: dict) -> Path:
    """Write the token where only this user can read it (0600 in a 0700 folder), atomically."""
    path = token_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        json.dump(token, handle)
    os.replace(tmp, path)
    return path


def cached() -> dict | None:
    try:
        return json.loads(token_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def forget() -> bool:
    try:
        token_file().unlink()
        return True
    except FileNotFoundError:
        return False


def bearer_token() -> str:
    if os.environ.get("SECRETS_TOKEN"):
        return os.environ["SECRETS_TOKEN"]
    token = cached()
    if token is None:
        raise CliError("not logged in: run `secrets login` (or set SECRETS_TOKEN)", EXIT_AUTH)
    if token.get("expires_at") and token["expires_at"] <= time.time():
        raise CliError("the cached token has expired: run `secrets login` again", EXIT_AUTH)
    return token["access_token"]


class Client:
    """The services' HTTP APIs with the caller's token."""

    def __init__(self, endpoints: Endpoints, token: str):
        self.endpoints = endpoints
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, service: str, method: str, path: str, *, params: dict | None = None, body=None):
        url = getattr(self.endpoints, SERVED_BY.get(service, service)) + API[service] + path
        try:
            response = self.http.request(method, url, params=params, json=body, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise CliError(unreachable(service, url.split('/api/')[0], exc), EXIT_UNAVAILABLE) from None
        if response.status_code >= 400:
            raise _error(response)
        return _json_or_none(response)


def _json_or_none(response: requests.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error(response: requests.Response) -> CliError:
    body = _json_or_none(response)
    code = EXIT_UNAVAILABLE if response.status_code >= 500 else _BY_STATUS.get(response.status_code, EXIT_ERROR)
    if isinstance(body, dict) and "error_code" in body:
        where = f" ({body['property']})" if body.get("property") else ""
        return CliError(f"{response.status_code} {body['error_code']}: {body.get('error_message', '')}{where}", code,
                        status=response.status_code, property=body.get("property"))
    return CliError(f"{response.status_code} {response.reason}", code, status=response.status_code)
