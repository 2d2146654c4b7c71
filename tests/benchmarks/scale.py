"""`make bench-scale`: latency of the list, search, keys, versions and audit queries at
10,000 and at 1,000,000 objects, in the same run.

    .venv/bin/python -m tests.benchmarks.scale

Builds one data set per size (scale_data.py: COPY, ciphertext by the Vault's crypto,
indexes built after the load, then VACUUM ANALYZE), starts a Vault and a Secrets Manager
on each under gunicorn (2 sync workers), and sends every scenario's request to both
sizes in turn, one at a time (latency, not throughput): warm-up, then BENCH_SCALE_REQUESTS
measured requests per size, alternating sizes so a busy moment of the shared machine
hits both alike. It prints p50 and p99 per size, the slowdown from the small to the big
one (p50 ratio) and the `count` each answered, and checks the goals of issue 12: p99
under 50 ms at 1,000,000 and no more than 2x slower than at 10,000 (rows marked
"shows" have no goal: they show a cost that grows with the data by the API's nature,
see the README). Results also go to `.data/bench-scale-results.json`. The databases
are dropped at the end (on errors and Ctrl-C too) unless BENCH_SCALE_KEEP is set.

Environment:
  BENCH_SCALE_SIZES     sizes in secrets (default 10000,1000000; the first is the base)
  BENCH_SCALE_REQUESTS  measured requests per scenario and size (default 200)
  BENCH_SCALE_KEEP      set: keep the databases (bench_scale_<kind>_<size>) and reuse them
                        next time, so a query change can be measured without a rebuild
  BENCH_SCALE_ONLY      scenario keys (comma separated, e.g. search_keyword,sm_search_admin):
                        measure only these
  BENCH_DEBUG           set: a failure shows its traceback
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from common.devtools.issuer.keys import ensure_signing_key
from tests import support
from tests.benchmarks import loadgen, scale_data
from tests.benchmarks.bench import SM, VAULT, WORKERS, database_server, migrate, write_results
from tests.benchmarks.loadgen import Request

ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = ROOT / ".data" / "bench-scale-results.json"
P99_GOAL_MS = 50.0
SLOWDOWN_GOAL = 2.0
WARMUP_REQUESTS = 10
TOKEN_TTL = 4 * 3600
# A fixed master key, so that kept databases stay readable by the next run.
KEYRING_SPEC = "bench:" + base64.urlsafe_b64encode(b"bench-scale-master-key-32-bytes!").decode()


@dataclasses.dataclass
class Site:
    """One data set with its servers."""

    size: int
    layout: scale_data.Layout
    vault_db: str
    sm_db: str
    vault: str = ""
    sm: str = ""


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    request: object  # (Site, tokens) -> Request
    goal: bool = True  # False: shown, not judged (its cost grows with the data by the API's nature)
    requests: int | None = None  # fewer than BENCH_SCALE_REQUESTS for a row that takes a second each


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Tokens:
    """The callers of the scenarios, the same at every size."""

    def __init__(self, factory: support.TokenFactory):
        self.admin = factory("admin", ttl=TOKEN_TTL)
        self.service = factory("service", ttl=TOKEN_TTL)
        layout = scale_data.Layout(10_000)  # teams 1..3 exist at every size
        ops, _ = layout.team_roles(1)
        self.vault_user = factory("user", sub=scale_data.user_id(7), ttl=TOKEN_TTL, roles=[
            {"id": ops, "name": "team-0001-ops"}, {"id": layout.team_roles(2)[1], "name": "team-0002-dev"},
            {"id": layout.team_roles(3)[1], "name": "team-0003-dev"}])
        self.sm_user = factory("user", ttl=TOKEN_TTL, roles=[
            {"id": scale_data.role_id("ops-team", k), "name": f"ops-team-{k:03d}"} for k in (0, 1)])


def _vault(site: Site, method: str, path: str, token: str, body=None) -> Request:
    return Request.make(method, site.vault + VAULT + path, _auth(token), json_body=body)


def _since_yesterday() -> str:
    return quote((datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))


SCENARIOS = [
    Scenario("v1_list_user", "v1 list, first page, user with 3 roles",
             lambda s, t: _vault(s, "GET", "/secrets", t.vault_user)),
    Scenario("v1_list_admin", "v1 list, first page, admin",
             lambda s, t: _vault(s, "GET", "/secrets", t.admin)),
    Scenario("v1_list_offset", "v1 list at offset 10,000, admin",
             lambda s, t: _vault(s, "GET", "/secrets?offset=10000", t.admin)),
    Scenario("search_keyword", "search keyword 'team-0003' (900 matches), admin",
             lambda s, t: _vault(s, "POST", "/search/secrets", t.admin, {"keywords": "team-0003"})),
    Scenario("search_keyword_user", "search keyword 'payments', user with 3 roles",
             lambda s, t: _vault(s, "POST", "/search/secrets", t.vault_user, {"keywords": "payments"})),
    Scenario("search_keyword_broad", "search keyword 'ledger' (matches grow with N), admin",
             lambda s, t: _vault(s, "POST", "/search/secrets", t.admin, {"keywords": "ledger"}), goal=False),
    Scenario("search_readable", "search filter readable, user with 3 roles",
             lambda s, t: _vault(s, "POST", "/search/secrets", t.vault_user, {"filter": "readable"})),
    Scenario("keys_wide", f"keys of {scale_data.FLEET_FOLDER}/ (10,000 children)",
             lambda s, t: _vault(s, "GET", f"/secret/keys/{scale_data.FLEET_FOLDER}", t.service)),
    Scenario("versions_page", "versions page (100 of 1,000)",
             lambda s, t: _vault(s, "GET", f"/secret/versions/{scale_data.MANY_VERSIONS_NAME}?page_size=100", t.service)),
    Scenario("audit_principal", "audit events of a principal, last day",
             lambda s, t: _vault(s, "GET", f"/audit-events?principal={scale_data.audit_principal(42)}"
                                           f"&since={_since_yesterday()}", t.admin)),
    Scenario("audit_target", "audit events of a target, last day",
             lambda s, t: _vault(s, "GET", f"/audit-events?target={quote(scale_data.HOT_TARGET, safe='')}"
                                           f"&since={_since_yesterday()}", t.admin)),
    Scenario("sm_list_admin", "SM account listing, admin",
             lambda s, t: Request.make("GET", s.sm + SM + "/secrets", _auth(t.admin))),
    Scenario("sm_list_user", "SM account listing, user with 2 roles",
             lambda s, t: Request.make("GET", s.sm + SM + "/secrets", _auth(t.sm_user))),
    Scenario("sm_search_admin", "SM search keyword 'acct042', admin",
             lambda s, t: Request.make("POST", s.sm + SM + "/secrets/search", _auth(t.admin), {"keywords": "acct042"})),
    Scenario("sm_search_user", "SM search keyword 'acct042', user with 2 roles",
             lambda s, t: Request.make("POST", s.sm + SM + "/secrets/search", _auth(t.sm_user), {"keywords": "acct042"})),
    Scenario("v1_list_deep", "v1 list at offset 90% of all, admin (offset paging)",
             lambda s, t: _vault(s, "GET", f"/secrets?offset={int(s.layout.shared * 0.9) // 100 * 100}", t.admin),
             goal=False, requests=20),
]


# --------------------------------------------------------------------------------------
# Building

def _db_name(kind: str, size: int) -> str:
    return f"bench_scale_{kind}_{size}"


def _exists(server: str, name: str) -> bool:
    with psycopg.connect(server, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _built(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass('bench_scale_built') IS NOT NULL").fetchone()[0]


def _create(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server, dbname=name)


def log(message: str) -> None:
    print(message, flush=True)


def build_site(stack: contextlib.ExitStack, server: str, data_dir: str, size: int, keep: bool) -> Site:
    layout = scale_data.Layout(size)
    urls = {kind: psycopg.conninfo.make_conninfo(server, dbname=_db_name(kind, size)) for kind in ("vault", "sm")}
    if keep and all(_exists(server, _db_name(kind, size)) and _built(url) for kind, url in urls.items()):
        log(f"data set {size:,}: kept from an earlier run; migrating it")
        _migrate_site(data_dir, urls)
        return Site(size, layout, urls["vault"], urls["sm"])
    started = time.monotonic()
    for kind in urls:
        _create(server, _db_name(kind, size))
        if not keep:
            stack.callback(support.drop_database, server, urls[kind])
    _migrate_site(data_dir, urls)
    workers = max(1, (os.cpu_count() or 1))
    with _background(scale_data.build_audit, urls["vault"], size, log=log):
        scale_data.build_vault(urls["vault"], KEYRING_SPEC, size, workers=workers, log=log)
        scale_data.build_secrets_manager(urls["sm"], size, log=log)
    for url in urls.values():
        scale_data.analyze(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_scale_built (size bigint)")
    log(f"data set {size:,}: built in {time.monotonic() - started:.0f} s "
        f"({_size_of(server, [_db_name(k, size) for k in urls])} on disk)")
    return Site(size, layout, urls["vault"], urls["sm"])


def _migrate_site(data_dir: str, urls: dict) -> None:
    """Migrations before any server starts (on a kept data set they may build an index over it)."""
    migrate("vault_service.app", _vault_env(data_dir, urls["vault"]), timeout=1800)
    migrate("secrets_manager_service.app", {**support.service_settings(data_dir, urls["sm"]), "VAULT_URL": "http://127.0.0.1:9"},
            timeout=1800)


@contextlib.contextmanager
def _background(function, *args, **kwargs):
    """Run `function` in a thread while the block runs (the database's work beside Python's);
    its failure is raised at the end."""
    import threading

    failure = []

    def run():
        try:
            function(*args, **kwargs)
        except BaseException as exc:  # handed to the main thread below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join()
    if failure:
        raise failure[0]


def _size_of(server: str, names: list[str]) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        return conn.execute("SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database "
                            "WHERE datname = ANY (%s)", (names,)).fetchone()[0]


def _vault_env(data_dir: str, url: str) -> dict:
    return {**support.service_settings(data_dir, url, LOG_LEVEL="WARNING"), "VAULT_MASTER_KEYS": KEYRING_SPEC}


def serve_site(stack: contextlib.ExitStack, site: Site, data_dir: str) -> None:
    site.vault = stack.enter_context(support.gunicorn("vault_service.wsgi:app", _vault_env(data_dir, site.vault_db),
                                                      workers=WORKERS, health_path=f"{VAULT}/status"))
    env = {**support.service_settings(data_dir, site.sm_db, LOG_LEVEL="WARNING"), "VAULT_URL": site.vault,
           "SM_TOKEN_URL": "http://127.0.0.1:9/unused", "SM_CLIENT_SECRET": "unused"}
    site.sm = stack.enter_context(support.gunicorn("secrets_manager_service.wsgi:app", env, workers=WORKERS,
                                                   health_path=f"{SM}/status"))


# --------------------------------------------------------------------------------------
# Measuring

@dataclasses.dataclass
class Measured:
    latencies_ms: list[float]
    count: int | None
    errors: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _once(conn: loadgen.Connection, raw: bytes) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    status, body = conn.exchange(raw)
    return (time.perf_counter() - started) * 1000, status, body


def _count_of(body: bytes):
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if "count" in answer:
        return answer["count"]
    for key in ("keys", "versions"):
        if key in answer:
            return len(answer[key])
    return None


def measure(scenario: Scenario, sites: list[Site], tokens: Tokens, requests: int) -> list[Measured]:
    raws = [scenario.request(site, tokens).raw() for site in sites]
    conns = [loadgen.Connection(scenario.request(site, tokens).address, 30) for site in sites]
    results = [Measured([], None, 0) for _ in sites]
    try:
        for i, (conn, raw) in enumerate(zip(conns, raws)):
            _, status, body = _once(conn, raw)
            if not 200 <= status < 300:
                raise RuntimeError(f"{scenario.key} at {sites[i].size:,}: {status} {body[:300]!r}")
            results[i].count = _count_of(body)
            for _ in range(WARMUP_REQUESTS):
                _once(conn, raw)
        for _ in range(requests):
            for conn, raw, result in zip(conns, raws, results):
                elapsed, status, _ = _once(conn, raw)
                result.latencies_ms.append(elapsed)
                result.errors += not 200 <= status < 300
    finally:
        for conn in conns:
            conn.close()
    return results


def report(rows: list[tuple[Scenario, list[Measured]]], sites: list[Site]) -> dict:
    base, big = sites[0], sites[-1]
    width = max(len(s.title) for s, _ in rows)
    head = "  ".join(f"{f'{site.size:,}':>17}" for site in sites)
    print()
    print(f"{'':<{width}}  {head}")
    print(f"{'scenario':<{width}}  " + "  ".join(f"{'p50':>7} {'p99':>7}  " for _ in sites) +
          f"{'slower':>6}  {'count at each size':<22} goal")
    print("-" * (width + 19 * len(sites) + 40))
    out, verdicts = {}, []
    for scenario, measured in rows:
        p50 = [m.percentile(50) for m in measured]
        p99 = [m.percentile(99) for m in measured]
        slower = p50[-1] / p50[0] if p50[0] else None
        errors = sum(m.errors for m in measured)
        if scenario.goal:
            met = p99[-1] < P99_GOAL_MS and slower is not None and slower <= SLOWDOWN_GOAL and not errors
            verdict = "PASS" if met else "MISS"
            verdicts.append((scenario, verdict, p99[-1], slower))
        else:
            verdict = "shows"
        cells = "  ".join(f"{a:7.1f} {b:7.1f}  " for a, b in zip(p50, p99))
        counts = " / ".join("-" if m.count is None else f"{m.count:,}" for m in measured)
        flag = f"  {errors} ERRORS" if errors else ""
        print(f"{scenario.title:<{width}}  {cells}{slower:6.2f}  {counts:<22} {verdict}{flag}")
        out[scenario.key] = {"title": scenario.title, "goal": scenario.goal, "verdict": verdict, "errors": errors,
                             "slower_p50": round(slower, 2) if slower else None,
                             "by_size": {str(site.size): {"p50_ms": round(a, 2), "p99_ms": round(b, 2), "count": m.count}
                                         for site, a, b, m in zip(sites, p50, p99, measured)}}
    print()
    print(f"goals at {big.size:,} (base {base.size:,}): p99 < {P99_GOAL_MS:g} ms and at most {SLOWDOWN_GOAL:g}x the "
          f"base's p50: {sum(v == 'PASS' for _, v, _, _ in verdicts)} of {len(verdicts)} pass")
    for scenario, verdict, p99, slower in verdicts:
        if verdict == "MISS":
            print(f"  MISS {scenario.title}: p99 {p99:.1f} ms, {slower:.2f}x")
    return out


def _chosen(scenarios: list[Scenario], only: str | None) -> list[Scenario]:
    if not only:
        return scenarios
    keys = [key.strip() for key in only.split(",") if key.strip()]
    unknown = sorted(set(keys) - {s.key for s in scenarios})
    if unknown:
        raise ValueError(f"BENCH_SCALE_ONLY: no scenario {', '.join(unknown)} (keys: {', '.join(s.key for s in scenarios)})")
    return [s for s in scenarios if s.key in keys]


def run() -> dict:
    sizes = [int(x) for x in (os.environ.get("BENCH_SCALE_SIZES") or "10000,1000000").split(",")]
    requests = int(os.environ.get("BENCH_SCALE_REQUESTS") or 200)
    keep = bool(os.environ.get("BENCH_SCALE_KEEP"))
    scenarios = _chosen(SCENARIOS, os.environ.get("BENCH_SCALE_ONLY"))
    os.chdir(ROOT)
    free = shutil.disk_usage(ROOT).free
    print(f"disk: {free / 2**30:.0f} GiB free; the 1,000,000 data set takes about 6 GiB")
    with contextlib.ExitStack() as stack:
        data_dir = tempfile.mkdtemp(prefix="bench-scale-")
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        ensure_signing_key(data_dir)
        server = stack.enter_context(database_server(data_dir))
        started = time.monotonic()
        sites = [build_site(stack, server, data_dir, size, keep) for size in sizes]
        build_seconds = time.monotonic() - started
        for site in sites:
            serve_site(stack, site, data_dir)
        tokens = Tokens(support.TokenFactory(data_dir))
        rows = []
        print(f"measuring {len(scenarios)} scenarios, {requests} requests per size each, one at a time")
        for scenario in scenarios:
            rows.append((scenario, measure(scenario, sites, tokens, min(requests, scenario.requests or requests))))
            print(f"  {scenario.title}: done", flush=True)
        results = report(rows, sites)
        return {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sizes": sizes,
                "requests_per_size": requests, "build_seconds": round(build_seconds), "scenarios": results}


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        results = run()
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, databases dropped", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nbench-scale failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("BENCH_DEBUG"):
            raise
        return 1
    write_results(results, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
