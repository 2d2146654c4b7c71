"""`make bench`: the Vault's throughput and latency next to a bare Flask app's, in one run.

    .venv/bin/python -m tests.benchmarks.bench

Starts, on 127.0.0.1 only, a fresh database (the machine's PostgreSQL when it answers,
else the embedded one), the Vault and a bare Flask app answering a constant JSON object,
both under gunicorn with the same settings (2 sync workers). Every scenario is then
loaded with the same client settings - wrk when it is on PATH, else the bounded Python
generator of `loadgen.py` - and the table gives requests/second, p50, p99 and the ratio
to the bare app, with the goals marked PASS or MISS. The figures also go to
`.data/bench-results.json`. Everything started is stopped and the database dropped at
the end, on errors and on Ctrl-C too.

The exit code is 0 when every scenario ran (a missed goal is a finding, not a failure)
and non-zero when something could not be set up or run.

Environment:
  BENCH_SECONDS       measured seconds per scenario (default 10; each has a 1 s warm-up)
  BENCH_LOADGEN       auto (default: wrk if installed), wrk or python
  BENCH_MAX_REQUESTS  hard cap per scenario for the Python generator (default 500000)

Adding a scenario: write a function that takes the `Context`, does its setup over HTTP
and returns the `loadgen.Request` (or a `loadgen.Flow` for multi-request units) to load,
and list it in a section (see `vault_section` and `secrets_manager_section`).
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import requests

from common.issuer.keys import ensure_signing_key
from tests import support
from tests.benchmarks import loadgen
from tests.benchmarks.loadgen import Request

ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = ROOT / ".data" / "bench-results.json"
WORKERS = 2
VAULT = "/vault/api/v1"
SM = "/secrets-manager/api/v1"
TOKEN_TTL = 4 * 3600  # outlives any run


@dataclasses.dataclass
class Context:
    """What scenarios get: the servers' base URLs, a token minter and an HTTP session for setup."""

    tokens: support.TokenFactory
    bare_url: str
    vault_url: str  # base URL including /vault/api/v1
    sm_url: str | None = None  # including /secrets-manager/api/v1, when the Secrets Manager runs
    http: requests.Session = dataclasses.field(default_factory=requests.Session)

    def call(self, method: str, url: str, token: str, body=None, expect=(200, 201)) -> requests.Response:
        response = self.http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if response.status_code not in expect:
            raise RuntimeError(f"setup: {method} {url} answered {response.status_code}: {response.text[:500]}")
        return response


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str  # in the JSON results
    title: str  # in the table
    prepare: Callable[[Context], object]  # setup over HTTP; returns the loadgen.Request or Flow to load
    goal: float | None = None  # minimum ratio to bare JSON, when the issue sets one
    baseline: bool = False  # a bare-JSON run: the ratios are to the mean of these


@dataclasses.dataclass(frozen=True)
class Section:
    """A group of scenarios sharing servers; `start` yields them and stops what it started."""

    name: str
    start: Callable[[contextlib.ExitStack, Context, dict], list[Scenario]]


# --------------------------------------------------------------------------------------
# Scenarios

def bare_json(ctx: Context) -> Request:
    return Request.make("GET", ctx.bare_url + "/")


def v1_read(ctx: Context) -> Request:
    """GET /secrets/{name} of a shared secret by a user holding one of its read roles."""
    role = support.new_role("bench-reader")
    name = support.unique("bench-v1")
    admin = ctx.tokens("admin", roles=[role], ttl=TOKEN_TTL)
    ctx.call("POST", f"{ctx.vault_url}/secrets", admin, {
        "name": name, "data": {"username": "svc-bench", "password": secrets.token_urlsafe(24)},
        "read_roles": [role], "write_roles": [role],
    }, expect=(201,))
    reader = ctx.tokens("user", roles=[role], ttl=TOKEN_TTL)
    return Request.make("GET", f"{ctx.vault_url}/secrets/{name}", {"Authorization": f"Bearer {reader}"})


def v2_read(ctx: Context) -> Request:
    """GET /secret/data/{path}: the newest version, with a service token."""
    path = f"bench/{support.unique('v2-read')}"
    service = ctx.tokens("service", ttl=TOKEN_TTL)
    ctx.call("POST", f"{ctx.vault_url}/secret/data/{path}", service,
             {"data": {"username": "svc-bench", "password": secrets.token_urlsafe(24)}})
    return Request.make("GET", f"{ctx.vault_url}/secret/data/{path}", {"Authorization": f"Bearer {service}"})


def v2_write(ctx: Context) -> Request:
    """POST /secret/data/{path} without cas: every request writes a new version (10 kept)."""
    path = f"bench/{support.unique('v2-write')}"
    service = ctx.tokens("service", ttl=TOKEN_TTL)
    ctx.call("POST", f"{ctx.vault_url}/secret/metadata/{path}", service, {"max_versions": 10})
    return Request.make("POST", f"{ctx.vault_url}/secret/data/{path}", {"Authorization": f"Bearer {service}"},
                        json_body={"data": {"username": "svc-bench", "password": secrets.token_urlsafe(24)}})


# --------------------------------------------------------------------------------------
# Sections: servers and their scenarios

def vault_section(stack: contextlib.ExitStack, ctx: Context, env: dict) -> list[Scenario]:
    ctx.vault_url = stack.enter_context(
        support.gunicorn("vault_service.wsgi:app", env, workers=WORKERS, health_path=f"{VAULT}/status")) + VAULT
    return [
        Scenario("v1_read", "v1 read (GET /secrets/{name})", v1_read, goal=0.55),
        Scenario("v2_read", "v2 read (GET /secret/data/{path})", v2_read),
        Scenario("v2_write", "v2 write (POST /secret/data/{path})", v2_write, goal=0.25),
    ]


def secrets_manager_section(stack: contextlib.ExitStack, ctx: Context, env: dict) -> list[Scenario]:
    """TODO(secrets-manager): checkout+release cycles/s and account listing with 10,000 accounts.

    The Secrets Manager (`secrets_manager_service/app.py`) was not written yet when this
    benchmark was. To add it: start it here with support.gunicorn next to the Vault
    (its settings pointing at ctx.vault_url), register 10,000 managed accounts over
    POST /host-secret/{host_id}, and return two scenarios - a `loadgen.Flow` doing
    POST /secrets/checkouts {"path"} then POST /secrets/checkouts/{id}/release (one
    account per connection, so checkouts do not collide), and GET /secrets for p99.
    """
    print("secrets manager: skipped: Secrets Manager not present")
    return []


SECTIONS = [
    Section("vault", vault_section),
    Section("secrets manager", secrets_manager_section),
]

# Bare JSON is measured first and again last: the ratios are to the mean of the two, and
# a drift between them (something else loading the machine) is reported.
BARE_FIRST = Scenario("bare_json", "bare JSON (Flask, constant object)", bare_json, baseline=True)
BARE_LAST = Scenario("bare_json_again", "bare JSON again, at the end", bare_json, baseline=True)
DRIFT_WARNING = 0.10


# --------------------------------------------------------------------------------------
# Running and reporting

def settings_from_env() -> tuple[loadgen.Settings, str]:
    seconds = float(os.environ.get("BENCH_SECONDS") or 10)
    max_requests = int(os.environ.get("BENCH_MAX_REQUESTS") or 500_000)
    if seconds <= 0 or max_requests <= 0:
        raise SystemExit("BENCH_SECONDS and BENCH_MAX_REQUESTS must be positive")
    choice = (os.environ.get("BENCH_LOADGEN") or "auto").lower()
    if choice not in ("auto", "wrk", "python"):
        raise SystemExit("BENCH_LOADGEN must be auto, wrk or python")
    if choice == "wrk" and not loadgen.wrk_available():
        raise SystemExit("BENCH_LOADGEN=wrk but wrk is not on PATH")
    tool = "wrk" if choice == "wrk" or (choice == "auto" and loadgen.wrk_available()) else "python"
    return loadgen.Settings(seconds=seconds, max_requests=max_requests), tool


def probe(work) -> None:
    """One unit of work before the load: a scenario that cannot succeed once is a setup failure."""
    conn = loadgen.Connection(work.address, 30)
    try:
        status, body = work.operation(0)(conn)
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise RuntimeError(f"probe of {work.url} answered {status}: {body[:500].decode(errors='replace')}")


def measure(scenario: Scenario, work, settings: loadgen.Settings, tool: str) -> loadgen.Result:
    print(f"  {scenario.title}: {settings.warmup:g} s warm-up + {settings.seconds:g} s ...", end="", flush=True)
    result = loadgen.run(work, settings, tool)
    flag = f", {result.errors} ERRORS" if result.errors else ""
    print(f" {result.rps:.0f} req/s{flag}", flush=True)
    return result


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[tuple[Scenario, loadgen.Result]], tool: str, settings: loadgen.Settings) -> dict:
    baselines = [result.rps for scenario, result in rows if scenario.baseline]
    base_rps = sum(baselines) / len(baselines)
    drift = (max(baselines) - min(baselines)) / base_rps if base_rps else 0.0
    client = rows[0][1].tool
    width = max(len(s.title) for s, _ in rows)
    print()
    print(f"{'scenario':<{width}}  {'req/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'x bare':>7}  {'errors':>7}")
    print("-" * (width + 50))
    scenarios, goals, flagged = {}, [], []
    for scenario, result in rows:
        ratio = round(result.rps / base_rps, 3) if base_rps else None
        mark = "  <- errors" if result.errors else ""
        print(f"{scenario.title:<{width}}  {result.rps:>9.1f}  {_fmt(result.p50_ms, '8.2f')}  "
              f"{_fmt(result.p99_ms, '8.2f')}  {_fmt(ratio, '7.2f')}  {result.errors:>7}{mark}")
        scenarios[scenario.key] = {"title": scenario.title, "ratio_to_bare_json": ratio, **result.as_dict()}
        if result.errors or result.capped or result.note:
            flagged.append((scenario, result))
        if scenario.goal is not None:
            met = ratio is not None and ratio >= scenario.goal and not result.errors
            goals.append({"scenario": scenario.key, "goal_ratio": scenario.goal, "ratio": ratio,
                          "result": "PASS" if met else "MISS", "errors": result.errors})
    print()
    print(f"bare JSON of this run: {base_rps:.1f} req/s (mean of {len(baselines)} runs, "
          f"{drift:.0%} apart{'; the machine was not quiet, ratios are less certain' if drift > DRIFT_WARNING else ''})")
    print("goals (ratio to bare JSON):")
    for goal in goals:
        title = next(s.title for s, _ in rows if s.key == goal["scenario"])
        extra = f" (with {goal['errors']} errors)" if goal["errors"] else ""
        print(f"  {title:<{width}}  >= {goal['goal_ratio']:.2f}: {_fmt(goal['ratio'], '.2f'):>5}  "
              f"{goal['result']}{extra}")
    for scenario, result in flagged:
        print()
        print(f"FLAGGED {scenario.title}:")
        if result.errors:
            print(f"  {result.errors} errors of {result.requests} requests; by status: {result.statuses}")
            for sample in result.error_samples:
                print(f"  e.g. {sample}")
        if result.capped:
            print(f"  hit the cap of {settings.max_requests} requests: rate over {result.seconds} s")
        if result.note:
            print(f"  {result.note}")
    print()
    print(f"client: {client}, {settings.connections} connections, {settings.warmup:g} s warm-up, "
          f"{settings.seconds:g} s per scenario; servers: gunicorn, {WORKERS} sync workers each; "
          f"{os.cpu_count()} CPUs shared by client and servers")
    return {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "client": {"tool": tool, "description": client, **dataclasses.asdict(settings)},
        "bare_json_rps": round(base_rps, 1),
        "bare_json_drift": round(drift, 3),
        "servers": {"gunicorn_workers": WORKERS, "worker_class": "sync"},
        "scenarios": scenarios,
        "goals": goals,
    }


def write_results(results: dict) -> None:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS_FILE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(RESULTS_FILE)
    print(f"results: {RESULTS_FILE.relative_to(ROOT)}")


@contextlib.contextmanager
def database(data_dir: str):
    """A fresh database on the machine's PostgreSQL (or the embedded one), dropped afterwards."""
    embedded_cleanup = os.environ.get("EMBEDDED_PG_CLEANUP")
    os.environ["EMBEDDED_PG_CLEANUP"] = "stop"  # an embedded server is ours: stop it when done
    try:
        server = support.database_server_url(data_dir)
    finally:
        if embedded_cleanup is None:
            os.environ.pop("EMBEDDED_PG_CLEANUP", None)
        else:
            os.environ["EMBEDDED_PG_CLEANUP"] = embedded_cleanup
    try:
        url = support.create_database(server, "vault_bench")
        try:
            print(f"database: {'local PostgreSQL' if server == support.LOCAL_SERVER else 'embedded PostgreSQL'}, "
                  f"fresh database {psycopg.conninfo.conninfo_to_dict(url)['dbname']}")
            yield url
        finally:
            support.drop_database(server, url)
    finally:
        if server != support.LOCAL_SERVER:
            from common import embedded_pg

            for handle in list(embedded_pg._servers.values()):
                handle.cleanup()  # before the data folder is removed
            embedded_pg._servers.clear()


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of the machine's CPU time that was not idle over `seconds` (Linux /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # idle + iowait

    try:
        total_a, idle_a = sample()
        time.sleep(seconds)
        total_b, idle_b = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_b - total_a
    return round(1 - (idle_b - idle_a) / total, 3) if total > 0 else None


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def run() -> dict:
    settings, tool = settings_from_env()
    busy_before = cpu_busy()
    print(f"machine: {os.cpu_count()} CPUs, {_fmt(busy_before, '.0%')} busy in the second before the run"
          f"{' - something else is running: figures will be lower and noisier' if (busy_before or 0) > 0.2 else ''}")
    os.chdir(ROOT)  # gunicorn imports the apps from the working directory
    with contextlib.ExitStack() as stack:
        data_dir = tempfile.mkdtemp(prefix="bench-data-")
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        ensure_signing_key(data_dir)
        db_url = stack.enter_context(database(data_dir))
        env = {
            "DATABASE_URL": db_url,
            "DATA_DIR": data_dir,
            "AUTH_ISSUER": support.ISSUER,
            "AUTH_AUDIENCE": support.AUDIENCE,
            "VAULT_MASTER_KEYS": f"k1:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}",
            "LOG_LEVEL": "WARNING",
        }
        bare_url = stack.enter_context(support.gunicorn("tests.benchmarks.bare_app:app", {"LOG_LEVEL": "WARNING"},
                                                        workers=WORKERS, health_path="/"))
        ctx = Context(tokens=support.TokenFactory(data_dir), bare_url=bare_url, vault_url="")
        stack.callback(ctx.http.close)
        scenarios = [BARE_FIRST]
        for section in SECTIONS:
            scenarios += section.start(stack, ctx, env)
        scenarios.append(BARE_LAST)
        # Every setup and probe first: a scenario that cannot run fails the run before any load.
        works = [scenario.prepare(ctx) for scenario in scenarios]
        for work in works:
            probe(work)
        print(f"load: {tool}; {len(scenarios)} scenarios")
        rows = [(scenario, measure(scenario, work, settings, tool)) for scenario, work in zip(scenarios, works)]
        results = report(rows, tool, settings)
        results["machine"]["cpu_busy_before"] = busy_before
        return results


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        results = run()
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, database dropped", file=sys.stderr)
        return 130
    except Exception as exc:  # a report of what failed, not a traceback of the harness
        print(f"\nbench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("BENCH_DEBUG"):
            raise
        return 1
    write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
