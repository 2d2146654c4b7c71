"""The Secrets Manager's client of the Vault's versioned API.

It calls the Vault with a `service` token obtained by OAuth2 client credentials
(authlib), cached until shortly before it expires. Every call has timeouts;
connection errors and 502/503/504 are retried a few times with exponential
backoff; a 401 fetches a new token once. Calls carry the caller's X-Request-ID. Whatever still fails becomes one
`IntraServiceError` (503 INTRA_SERVICE_COMMUNICATION_ERROR), so callers never
see a requests exception. Nothing here logs a password, a token or a response
body (a body may hold a password).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

import certifi
import requests
import urllib3
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import g, has_app_context

from common import errors

log = logging.getLogger(__name__)

API_PREFIX = "/vault/api/v1"
TIMEOUT = (2.0, 5.0)  # (connect, read) seconds
STATUS_TIMEOUT = (1.0, 1.5)  # within a probe's timeout, with the database ping
TRIES = 3
BACKOFF_SECONDS = 0.2  # doubled after every failed try
RETRY_STATUSES = frozenset({502, 503, 504})
# urllib3's own retries are off: the client's loop retries. Made once (urllib3 would make one per call).
_NO_URLLIB3_RETRIES = urllib3.Retry(False, redirect=False)
# Renew the token this long before it expires, so a request never carries one that dies in flight.
TOKEN_RENEW_MARGIN = 30.0


class VaultClient:
    """Thread-safe: the token cache is locked, and each thread has its own HTTP session."""

    def __init__(self, vault_url: str | None, *, token_url: str | None, client_id: str, client_secret: str | None,
                 tries: int = TRIES, backoff: float = BACKOFF_SECONDS):
        self.base = (vault_url or "").rstrip("/") + API_PREFIX if vault_url else None
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.tries = max(1, tries)
        self.backoff = backoff
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._token_lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"VaultClient(base={self.base!r}, client_id={self.client_id!r})"

    # --- the versioned API --------------------------------------------------

    def read(self, path: str, version: int | None = None) -> dict | None:
        """`{"data", "metadata"}` of the newest live version (or of `version`); None if there is none."""
        params = {"version": version} if version is not None else None
        return self._json("GET", f"/secret/data/{_quoted(path)}", params=params, missing_ok=True)

    def live(self, path: str) -> dict | None:
        """`{"custom_metadata", "versions": [{"version", "created", "data"}]}`: every live version,
        newest first, in one call (the Vault's `GET /secret/live/{path}`); None if there is no secret."""
        return self._json("GET", f"/secret/live/{_quoted(path)}", missing_ok=True)

    def write(self, path: str, data: dict) -> dict:
        """Store `data` as a new version; the Vault creates the secret if it is new."""
        return self._json("POST", f"/secret/data/{_quoted(path)}", body={"data": data})

    def metadata(self, path: str) -> dict | None:
        """`{"metadata", "versions"}` of the secret, or None if it does not exist."""
        return self._json("GET", f"/secret/metadata/{_quoted(path)}", missing_ok=True)

    def set_metadata(self, path: str, **settings) -> dict:
        return self._json("POST", f"/secret/metadata/{_quoted(path)}", body=settings)

    def destroy(self, path: str, versions: list[int]) -> None:
        """Destroy these versions for good (their ciphertext is gone)."""
        self._json("POST", f"/secret/destroy/{_quoted(path)}", body={"versions": versions})

    def delete(self, path: str) -> None:
        """Remove the secret with every version; one that is already gone is fine."""
        self._json("DELETE", f"/secret/metadata/{_quoted(path)}", missing_ok=True)

    def put_grant(self, request_id: str, state: dict) -> tuple[int, dict | None]:
        """Tell the Vault a workflow grant's state (PUT /grants/{request_id}); the status it answered
        and, when it took the state, the grant as it holds it (an unreachable Vault raises
        IntraServiceError, as every call)."""
        response = self._send("PUT", f"/grants/{quote(request_id, safe='')}", params=None, body=state)
        if not 200 <= response.status_code < 300:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            raise errors.IntraServiceError("the Vault answered with something that is not JSON") from None

    def grant(self, request_id: str) -> dict | None:
        """The workflow grant as the Vault holds it (GET /grants/{request_id}); None if it has none."""
        return self._json("GET", f"/grants/{quote(request_id, safe='')}", missing_ok=True)

    def ping(self) -> bool:
        """Whether the Vault answers its status route (no token, one try, short timeouts)."""
        if not self.base:
            return False
        try:
            return self._session().get(self.base + "/status", timeout=STATUS_TIMEOUT).status_code == 200
        except requests.RequestException:
            return False

    # --- HTTP ---------------------------------------------------------------

    def _json(self, method: str, route: str, *, params=None, body=None, missing_ok: bool = False):
        response = self._send(method, route, params=params, body=body)
        if response.status_code == 404 and missing_ok:
            return None
        if not 200 <= response.status_code < 300:
            # Status and route only: the body may echo secret data.
            log.warning("the Vault refused a call", extra={"method": method, "status": response.status_code})
            raise errors.IntraServiceError(f"the Vault answered {response.status_code}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise errors.IntraServiceError("the Vault answered with something that is not JSON") from None

    def _send(self, method: str, route: str, *, params, body):
        if not self.base:
            raise errors.IntraServiceError("VAULT_URL is not configured")
        url = self.base + route
        # A write whose answer timed out may have been applied: repeat only reads and deletes then.
        # (Repeating a write that did land only adds a version with the same data.)
        idempotent = method in ("GET", "DELETE")
        renewed = False
        attempt = 0
        while True:
            token = self._bearer()
            headers = {"Authorization": f"Bearer {token}"}
            request_id = _request_id()
            if request_id and request_id.isascii():  # HTTP headers are latin-1; ours are hex, a proxy's ASCII
                # The Vault's audit events of this call then carry the caller's request id.
                headers["X-Request-ID"] = request_id
            try:
                response = self._call(method, url, params=params, body=body, headers=headers)
            except (requests.ConnectionError, requests.Timeout) as exc:
                retryable = idempotent or not isinstance(exc, requests.ReadTimeout)
                if retryable and self._backoff(attempt):
                    attempt += 1
                    continue
                log.warning("the Vault is unreachable", extra={"method": method, "exception_type": type(exc).__name__})
                raise errors.IntraServiceError("the Vault is unreachable") from None
            except requests.RequestException as exc:
                log.warning("a call to the Vault failed", extra={"method": method, "exception_type": type(exc).__name__})
                raise errors.IntraServiceError("a call to the Vault failed") from None
            if response.status_code == 401 and not renewed:
                # The token may have been revoked or the Vault's keys rotated: fetch a new one, once.
                self._forget(token)
                renewed = True
                continue
            if response.status_code in RETRY_STATUSES and self._backoff(attempt):
                attempt += 1
                continue
            return response

    def _call(self, method: str, url: str, *, params, body, headers: dict):
        """One HTTP exchange: on the thread's kept-alive connection (_DirectConnection), or through
        requests where a proxy is configured for the Vault's URL (requests knows proxies)."""
        direct = getattr(self._local, "direct", None)
        if direct is None:
            session = self._session()
            if session.proxies:
                return session.request(method, url, params=params, json=body, timeout=TIMEOUT, headers=headers)
            direct = self._local.direct = _DirectConnection(self.base, session.verify)
        return direct.request(method, url, params=params, body=body, headers=headers)

    def _backoff(self, attempt: int) -> bool:
        """Sleep before try `attempt + 2`; False when the tries are used up."""
        if attempt + 1 >= self.tries:
            return False
        time.sleep(self.backoff * (2 ** attempt))
        return True

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = _environment_read_once(requests.Session(), self.base)
        return session

    # --- the service token -------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_renew_at:
                self._token, self._token_renew_at = self._fetch_token()
            return self._token

    def _forget(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        if not self.token_url or not self._client_secret:
            raise errors.IntraServiceError("SM_TOKEN_URL and SM_CLIENT_SECRET must be set to call the Vault")
        attempt = 0
        while True:
            session = OAuth2Session(self.client_id, self._client_secret, token_endpoint_auth_method="client_secret_basic")
            try:
                token = session.fetch_token(self.token_url, grant_type="client_credentials", timeout=TIMEOUT)
                access_token = token["access_token"]
                lifetime = float(token.get("expires_in") or 60)
                break
            except OAuthError as exc:
                # Refused credentials do not get better by asking again.
                log.error("the token endpoint refused the Secrets Manager's credentials",
                          extra={"oauth_error": getattr(exc, "error", "")})
                raise errors.IntraServiceError("cannot obtain a service token for the Vault") from None
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                if self._backoff(attempt):
                    attempt += 1
                    continue
                log.warning("the token endpoint is unreachable", extra={"exception_type": type(exc).__name__})
                raise errors.IntraServiceError("cannot obtain a service token for the Vault") from None
            finally:
                session.close()
        renew_in = lifetime - TOKEN_RENEW_MARGIN if lifetime > 2 * TOKEN_RENEW_MARGIN else lifetime / 2
        return access_token, time.monotonic() + renew_in


class _Answer:
    """What the client reads of a response (the part of requests.Response it uses)."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    def json(self):
        return json.loads(self.content)


class _DirectConnection:
    """One thread's kept-alive connection to the Vault: urllib3's connection pool, the layer under
    requests, called directly. A call through requests costs about 2.4M instructions, most of it
    requests' generic machinery (hooks, cookie jars, adapters, a Retry object per call); the pool
    alone a fraction of that, and it still does what a hand-made connection would get wrong:
    noticing a connection the Vault closed while idle, TLS verification, chunked answers.
    urllib3's own retries are off (the client's loop retries, with its backoff and its rule that
    a write whose answer timed out is not repeated). Failures are raised as the requests exceptions
    the client handles (a refused or timed out connect: ConnectionError / ConnectTimeout; no answer
    in time: ReadTimeout; a connection lost on the way: ConnectionError), so both ways of calling
    fail alike."""

    def __init__(self, base: str, verify):
        tls = {}
        if urlsplit(base).scheme == "https":
            if verify is False:
                tls = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
            else:
                # What requests verifies against: the CA bundle given (a file or a folder), else certifi's.
                bundle = verify if isinstance(verify, str) else certifi.where()
                tls = {"cert_reqs": "CERT_REQUIRED",
                       **({"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle})}
        self.pool = urllib3.connection_from_url(
            base, maxsize=1, block=False, retries=False, timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]),
            **tls)

    def request(self, method: str, url: str, *, params, body, headers: dict) -> _Answer:
        target = urlsplit(url)
        path = target.path + ("?" + urlencode(params) if params else "")
        headers = {**headers, "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self.pool.urlopen(method, path, body=payload, headers=headers, retries=_NO_URLLIB3_RETRIES,
                                         redirect=False, preload_content=True)
        except urllib3.exceptions.NewConnectionError:  # before its base class, ConnectTimeoutError
            raise requests.ConnectionError("the Vault refused the connection") from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise requests.ConnectTimeout("no connection to the Vault in time") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise requests.ReadTimeout("the Vault did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise requests.ConnectionError("the connection to the Vault was lost") from None
        return _Answer(response.status, response.data)

    def close(self) -> None:
        self.pool.close()


def _environment_read_once(session: requests.Session, base: str | None) -> requests.Session:
    """`session` without requests' `trust_env`, which re-reads the proxy variables, ~/.netrc and the
    CA bundle variables on every call (about 1.5M instructions of a Vault call's 3.9M). What it
    would find is read here once instead: the proxies for the Vault's URL (NO_PROXY honoured) and
    an explicit CA bundle (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, requests' own order). Not
    .netrc: its basic auth would replace the bearer token every call carries."""
    session.trust_env = False
    if base:
        session.proxies.update(requests.utils.get_environ_proxies(base))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    return session


def _request_id() -> str | None:
    """The request id of the work under way: the HTTP request's, or the one the worker set for a rotation."""
    return g.get("request_id") if has_app_context() else None


def _quoted(path: str) -> str:
    """Each segment percent-encoded, so an account such as `a b+c` reaches the Vault unchanged."""
    return "/".join(quote(segment, safe="") for segment in path.split("/"))


def from_settings(settings: dict) -> VaultClient:
    return VaultClient(settings["VAULT_URL"], token_url=settings["SM_TOKEN_URL"],
                       client_id=settings["SM_CLIENT_ID"], client_secret=settings["SM_CLIENT_SECRET"],
                       tries=settings["SM_VAULT_TRIES"])
