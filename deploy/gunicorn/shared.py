"""Gunicorn settings shared by the Vault and Secrets Manager services.

The per-service files (vault.conf.py, secrets_manager.conf.py) load this module by
path and call ``settings()``; everything that is not the app, the name or the port
lives here.  The file is deliberately not called ``common.py``: the project has a
top-level ``common`` package and a same-named file on ``sys.path`` would shadow it.

Environment:
  BIND                 listen address (default 0.0.0.0:<service port>)
  WEB_CONCURRENCY      number of worker processes (default 2 * usable CPUs + 1,
                       where usable CPUs honours the cgroup CPU limit)
  FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers are trusted
                       (default 127.0.0.1, i.e. nginx on the same host)
  LOG_LEVEL            gunicorn's error-log level (default info)
  PROMETHEUS_MULTIPROC_DIR  when set: created and cleared of stale files when the
                       master starts, and dead workers are marked in child_exit.
                       Use one directory per gunicorn master.
"""
from __future__ import annotations

import json
import math
import os

# Access log: one JSON object per line on stdout.  Gunicorn escapes double quotes in
# values, so lines parse as JSON for all ordinary input ("JSON-ish": a backslash or a
# control character in the user agent or path is not escaped).  The path is %(U)s
# (PATH_INFO, no query string) - never %(r)s or %(q)s, which carry the query string -
# and no Authorization/Cookie header or %(u)s (the Basic-auth user) is logged. The request id is
# the response's X-Request-ID: the proxy's when it sent one, else the one the app made up, so
# the line matches the app's own log lines for that request.
ACCESS_LOG_FORMAT = (
    '{"time":"%(t)s","remote_addr":"%(h)s","method":"%(m)s","path":"%(U)s",'
    '"protocol":"%(H)s","status":%(s)s,"bytes":"%(b)s","duration_ms":%(M)s,'
    '"request_id":"%({x-request-id}o)s","forwarded_for":"%({x-forwarded-for}i)s",'
    '"user_agent":"%(a)s","pid":"%(p)s"}'
)

_LOG_LEVELS = {"warn": "warning", "fatal": "critical"}


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the cgroup quota (v2, then v1), or None when unlimited/unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota_us = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period_us = int(f.read())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: affinity mask, capped by the cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def worker_count() -> int:
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not raw:
        return 2 * usable_cpus() + 1
    try:
        workers = int(raw)
    except ValueError:
        raise ValueError(f"WEB_CONCURRENCY must be a positive integer, got {raw!r}") from None
    if workers < 1:
        raise ValueError(f"WEB_CONCURRENCY must be a positive integer, got {raw!r}")
    return workers


# Requests gunicorn refuses itself, before the app sees them, answered in the API's JSON
# envelope instead of gunicorn's HTML page: status -> (status sent, reason, error_code, message).
# A header over limit_request_field_size is answered 401: the only large header a client of
# this API sends is its bearer token, and the contract's answer to a token over 8 KiB is 401.
GUNICORN_ERRORS = {
    400: (400, "Bad Request", "BAD_REQUEST", "malformed HTTP request"),
    403: (403, "Forbidden", "PERMISSION_DENIED", "request forbidden"),
    414: (414, "URI Too Long", "BAD_REQUEST", "the URL is too long (at most 8 KiB)"),
    417: (417, "Expectation Failed", "BAD_REQUEST", "unsupported Expect header"),
    431: (401, "Unauthorized", "UNAUTHORIZED", "request headers too large (a bearer token is at most 8 KiB)"),
    501: (501, "Not Implemented", "BAD_REQUEST", "unsupported transfer coding"),
}
# What HashiCorp Vault says for the same refusals.
VAULT_MESSAGES = {414: "URI too long"}
# The contract's limits are 8 KiB for the URL and the token; gunicorn's must sit above them
# so the app can answer by the contract. 8190 is the longest request line gunicorn takes.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELD_SIZE = 16 * 1024


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, in the contract's envelope. gunicorn's message may quote
    the request line (a query string can carry a secret), so it is never echoed."""
    status, reason, code, message = GUNICORN_ERRORS.get(
        status_int, (500, "Internal Server Error", "GENERAL_ERROR", "internal error"))
    # `errors` too: HashiCorp clients of /v1/ (docs/API-hashicorp-kv.md) read only that key, and
    # gunicorn cannot say which API the refused request was for.
    body = json.dumps({"error_code": code, "error_message": message, "details": [],
                       "errors": [VAULT_MESSAGES.get(status, message)]}).encode()
    extra = 'WWW-Authenticate: Bearer error="invalid_token"\r\n' if status == 401 else ""
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n")
    from gunicorn import util

    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_fork(server, worker):
    """Worker start: gunicorn's own error answers come out in the JSON envelope."""
    from gunicorn import util

    util.write_error = write_json_error


def on_starting(server):
    """Master start: give prometheus_client an existing, empty multiprocess directory.

    An emptyDir survives container restarts within a pod, so files left by the
    previous container's workers would otherwise be summed into the new metrics.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


# The settings group (common.config) each service checks, by its gunicorn name.
SETTINGS_GROUPS = {"vault": "VAULT", "secrets-manager": "SECRETS_MANAGER"}


def check_settings(name: str) -> None:
    """Master start: the service's settings checked once, before any socket or worker. Each
    worker checks them again when it loads the app, but a bad or missing one stops the start
    here with its lines printed once, not once per booting worker."""
    from common import config

    with config.exit_on_error(name, code=config.GUNICORN_APP_LOAD_ERROR):
        config.load(getattr(config, SETTINGS_GROUPS[name]))


def master_start(name: str):
    """The service's on_starting hook: its settings checked, then the metrics directory prepared."""

    def on_master_start(server):
        check_settings(name)
        on_starting(server)

    return on_master_start


def child_exit(server, worker):
    """Master side, after a worker exits: drop its live-gauge files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def http_edge() -> dict:
    """The settings of how gunicorn meets HTTP before the app does: its limits and its own
    error answers (http_edge.conf.py gives servers started from the command line just these)."""
    return {
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "post_fork": post_fork,
    }


def settings(*, name: str, wsgi_app: str, default_port: int) -> dict:
    """The gunicorn settings for one service, as module-level names for a config file."""
    log_level = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"
    return {
        "wsgi_app": wsgi_app,
        "proc_name": name,
        "bind": [os.environ.get("BIND") or f"0.0.0.0:{default_port}"],
        "workers": worker_count(),
        "worker_class": "sync",
        # The app opens its database pool lazily in each worker; never import it in
        # the master (a pool or socket created before fork would be shared).
        "preload_app": False,
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 5,
        # Recycle workers now and then; the jitter keeps them from restarting together.
        "max_requests": 1000,
        "max_requests_jitter": 200,
        # Heartbeat file on tmpfs: fchmod on a disk-backed /tmp can stall workers.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "forwarded_allow_ips": os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1",
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": _LOG_LEVELS.get(log_level, log_level),
        # gunicorn >= 25.1 opens a runtime-control socket under $HOME by default; the
        # services do not need it (and $HOME is read-only in the containers).
        "control_socket_disable": True,
        "on_starting": master_start(name),
        "child_exit": child_exit,
        **http_edge(),
    }
