"""Per-principal request quotas by route group (reads, writes, checkouts): 429 when spent.

Each authenticated caller (the token's `sub`) gets `RATE_LIMIT_<GROUP>` requests of a group
per `RATE_LIMIT_WINDOW_SECONDS` (fixed windows, aligned to the clock so every replica agrees
on where one ends). With `REDIS_URL` the counts live in Redis, shared by every worker and
replica; without it each process counts alone. Off unless a quota is configured.

One request, one principal, one count: the limiter counts the caller common.auth authenticates
the request as (current_principal: one header, chosen by the route; the other is ignored), the
same principal the view then serves. Requests that are not counted: those without a token, or
with one that is not valid (their view answers 401, or 403 under /v1/), the `service` scope (the
Secrets Manager calling the Vault on behalf of callers already counted there), and the routes
that need no token, which say so with exempt(): `/status`, `/metrics`, the API documents and
the docs page. Routes are told apart by their URL rule and endpoint, never by the request's
path: a secret named `x/status` or `docs/x` is counted like any other.

A Redis outage never takes the API down: the limiter logs it, counts in the process for
`_REDIS_RETRY_SECONDS`, then tries Redis again.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time

from flask import Flask, request

from common import auth, errors

log = logging.getLogger(__name__)

GROUPS = ("reads", "writes", "checkouts")
_SETTING = {group: f"RATE_LIMIT_{group.upper()}" for group in GROUPS}
_REDIS_TIMEOUT_SECONDS = 0.25
_REDIS_RETRY_SECONDS = 5.0
_READ_METHODS = frozenset(("GET", "HEAD", "LIST"))  # LIST: HashiCorp's, under /v1/
_EXEMPT_ENDPOINTS = "rate_limit_exempt_endpoints"  # app.extensions key
# POSTs that only read: searches and name resolution (URL rules, e.g. /vault/api/v1/search/secrets).
_READING_POST = re.compile(r"/search(/|$)|/resolve$")
# Taking out and handing back an account password (also under the /authorizer alias).
_CHECKOUT = re.compile(r"/secrets/checkouts(/<[^>]+>/release)?$")


def exempt(app: Flask, *endpoints: str) -> None:
    """Never count requests to these endpoints: routes that need no token (status, metrics, docs)."""
    app.extensions.setdefault(_EXEMPT_ENDPOINTS, set()).update(endpoints)


def is_exempt(app: Flask, endpoint: str | None) -> bool:
    """One of the routes `exempt` names (they need no token and touch no secret)."""
    return endpoint in app.extensions.get(_EXEMPT_ENDPOINTS, ())


def route_group(app: Flask, method: str, endpoint: str | None, rule: str | None) -> str | None:
    """The quota group a request to `endpoint`, by URL rule `rule` (both None: no route matched),
    counts against; None: never counted.

    The rule is the route's template (`/vault/api/v1/secrets/<secret_name:name>`), so what a
    request puts in its path (a secret's name) never changes its group."""
    if method == "OPTIONS" or is_exempt(app, endpoint):
        return None
    if method == "POST" and rule is not None and _CHECKOUT.search(rule):
        return "checkouts"
    if method in _READ_METHODS or (method == "POST" and rule is not None and _READING_POST.search(rule)):
        return "reads"
    return "writes"


class _LocalCounter:
    """Counts of this process only: {(group, sub, window): n}, old windows dropped as time moves."""

    def __init__(self):
        self._counts: dict[tuple[str, str, int], int] = {}
        self._window = None
        self._lock = threading.Lock()

    def hit(self, group: str, sub: str, window: int, window_seconds: int) -> int:
        with self._lock:
            if window != self._window:
                self._counts = {k: v for k, v in self._counts.items() if k[2] >= window}
                self._window = window
            key = (group, sub, window)
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class _RedisCounter:
    """Counts shared through Redis: one INCR per request on a key that expires with its window."""

    def __init__(self, url: str, prefix: str):
        import redis  # only when configured

        self._redis = redis.Redis.from_url(url, socket_timeout=_REDIS_TIMEOUT_SECONDS,
                                           socket_connect_timeout=_REDIS_TIMEOUT_SECONDS)
        self._errors = (redis.RedisError, OSError)
        self._prefix = prefix
        self._down_until = 0.0
        self._fallback = _LocalCounter()

    def hit(self, group: str, sub: str, window: int, window_seconds: int) -> int:
        if time.monotonic() >= self._down_until:
            key = f"{self._prefix}:{group}:{sub}:{window}"
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.incr(key)
                pipe.expire(key, window_seconds + 1)
                count, _ = pipe.execute()
                return int(count)
            except self._errors as exc:
                self._down_until = time.monotonic() + _REDIS_RETRY_SECONDS
                log.warning("rate limit counts unavailable in Redis; counting per process for now",
                            extra={"exception_type": type(exc).__name__})
        return self._fallback.hit(group, sub, window, window_seconds)


class RateLimiter:
    def __init__(self, quotas: dict[str, int], *, window_seconds: int, counter):
        self.quotas = {group: quota for group, quota in quotas.items() if quota > 0}
        self.window_seconds = window_seconds
        self._counter = counter

    def check(self, group: str, sub: str, now: float | None = None) -> None:
        """Count one request; raise TooManyRequests (429, Retry-After) if it exceeds the quota."""
        quota = self.quotas.get(group)
        if quota is None:
            return
        now = time.time() if now is None else now
        window = int(now // self.window_seconds)
        if self._counter.hit(group, sub, window, self.window_seconds) <= quota:
            return
        retry_after = max(1, math.ceil((window + 1) * self.window_seconds - now))
        raise errors.TooManyRequests(
            f"rate limit reached: {quota} {group} per {self.window_seconds} s; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            details=[{"error_code": "MAX_LOAD", "error_message": f"retry after {retry_after} s",
                      "property": "Retry-After"}],
        )


def from_settings(settings: dict) -> RateLimiter | None:
    quotas = {group: int(settings.get(_SETTING[group]) or 0) for group in GROUPS}
    if not any(quota > 0 for quota in quotas.values()):
        return None
    window = int(settings.get("RATE_LIMIT_WINDOW_SECONDS") or 60)
    if window <= 0:
        raise ValueError("RATE_LIMIT_WINDOW_SECONDS must be a positive number of seconds")
    if settings.get("REDIS_URL"):
        counter = _RedisCounter(settings["REDIS_URL"], settings.get("RATE_LIMIT_REDIS_PREFIX") or "ratelimit")
    else:
        counter = _LocalCounter()
    return RateLimiter(quotas, window_seconds=window, counter=counter)


def install(app: Flask) -> None:
    """Count every request of a configured group against its caller's quota, before the view runs."""
    limiter = from_settings(app.config)
    if limiter is None:
        return
    app.extensions["rate_limiter"] = limiter

    @app.before_request
    def _count_request():
        rule = request.url_rule.rule if request.url_rule is not None else None
        group = route_group(app, request.method, request.endpoint, rule)
        if group is None or group not in limiter.quotas or not auth.presents_token():
            return
        try:
            principal = auth.current_principal()
        except errors.Unauthorized:
            return  # not counted: the view answers 401 (403 under /v1/) whatever the quota
        if principal.has_scope("service"):
            return
        limiter.check(group, principal.sub)
