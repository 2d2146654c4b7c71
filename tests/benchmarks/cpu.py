"""`make bench-cpu`: instructions per request, counted by callgrind, beside floors and budgets (issue 25).

    .venv/bin/python -m tests.benchmarks.cpu          # exit status 1 when a budget is missed

Wall-clock figures on the shared machines move by 80% between runs; instruction counts agree
within about 1%. Each service's Python is counted in its own process, in-process WSGI calls
(`app(environ, start_response)` with prebuilt environs) on a real PostgreSQL:

- the parent (not under valgrind) starts the Vault under gunicorn, the dev token issuer and the
  Secrets Manager under gunicorn (tests/benchmarks/suite.py's settings, LOG_LEVEL=WARNING), and
  seeds them over HTTP: 1,000 shared secrets, a versioned secret, an ACL policy bound to a role,
  5,000 managed accounts on 50 hosts (a few with passwords);
- then one child per process to count runs under `valgrind --tool=callgrind`: the Vault app (and
  the floors: bare Flask, bare Flask + the v1 read's or the v2 write's SQL) on the Vault's
  database, then the Secrets Manager app (and its checkout floor) on its database, calling the
  Vault under gunicorn over real HTTP: only the Secrets Manager's own instructions are counted;
- only the main thread, which serves the requests, is counted (`--separate-threads=yes`): the
  services' background threads (pool upkeep, cache refreshes, the audit chainer) run on timers
  and made a route's figure move by 10% between runs when they were counted with it;
- in a child, each route is warmed up, then run SHORT times and LONG times; `os.getppid()`
  between the loops makes callgrind dump its counters (`--dump-before=getppid`), so each loop's
  instructions are one dump, and (LONG - SHORT loops) / (LONG - SHORT) is one request's cost
  without the start-up's and the loop's own.

The Vault's routes are counted twice: then HIDDEN_SECRETS more secrets that none of the measured
requests returns are added (by SQL) and they are counted again; a route that grows by more than
GROWTH_TOLERANCE misses (issue 25: no route's count grows with the objects it does not return).

The Vault's share of a checkout cycle is counted in the Vault's child by replaying the calls the
Secrets Manager makes for it (account_passwords.live_versions, twice per cycle: one read of every
live version, `GET /secret/live/{path}`, with the service token).

Each route's round trips to its service's own database are counted too, at the protocol level
(tests/round_trips.py: libpq's trace of one more request, after its loops), and printed beside
it; the v2 write misses above MAX_ROUND_TRIPS.

PostgreSQL's own work is not counted (another process). The table goes to stdout and
`.data/bench-cpu.json`.
"""
from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import gc
import io
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests import round_trips, support
from tests.benchmarks import bench

SHORT, LONG, WARMUP = 5, 20, 5
# The first route an app serves is warmed up longer: an app's first few dozen requests cost less
# than every later one (measured: four copies of the v1 read in a row counted 0.87M, then 0.90M,
# 0.91M, 0.90M; after 40 warm-up requests the first counted 0.91M too), so a route counted first
# looked 30,000 instructions cheaper than the same route counted second.
FIRST_WARMUP = 50
# The INFO line's budget is a difference of two routes' counts, each of which moves by about 1%
# (10,000 instructions) between counts: it is taken INFO_PAIRS times, the read at WARNING then at
# INFO, each with 60 requests between its loops, not 15, and the median difference is the line's
# (one pair's difference moved by about 5,000 between pairs, with the collector off as well).
INFO_PAIRS = 5
_PAIRED = [("v1_read", "v1_read_info")] + [(f"v1_read_{n}", f"v1_read_info_{n}") for n in range(2, INFO_PAIRS + 1)]
LONGER = {key: 65 for pair in _PAIRED for key in pair}
ROUND_TRIPS: dict[str, int] = {}  # route key -> round trips to its service's own database (one request, traced)
MAX_ROUND_TRIPS = {"v2_write": 2}  # issue 25, point 2
RESULTS_FILE = bench.ROOT / ".data" / "bench-cpu.json"
V = bench.VAULT
SM = bench.SM
LIST_SECRETS = 1000  # shared secrets the v1 list and search reader sees (a page is 100)
SM_HOSTS, SM_PER_HOST, SM_WITH_PASSWORD = 50, 100, 4  # 5,000 managed accounts
SM_SCANNED = 1000  # a target domain's scanned accounts (its account list shows 100)
SM_LIVE_CHECKOUTS = 3  # the bench user's live checkouts besides the cycle's (the checkout list's rows)

# Budgets, instructions per request (issue 25, point 2).
SINGLE_READ = 1.10e6
INFO_EXTRA = 40_000  # what LOG_LEVEL=INFO may add to a request (issue 25, point 2)
BUDGETS = {
    "v1_read": SINGLE_READ, "v1_read_grant": SINGLE_READ, "v2_read": SINGLE_READ, "kv_read": SINGLE_READ, "kv_read_policy": SINGLE_READ,
    "v2_write": 1.45e6, "v1_list": 20e6, "sm_list": 8e6, "sm_cycle": 7e6, "vault_cycle_share": 2e6,
}


# --------------------------------------------------------------------------------------
# What is measured: (key, title, floor key or None, request(s)) per process. A request is
# (method, path, headers, json body or None, query string); a route of several requests (the
# checkout cycle) is a function of the app that makes them.

def vault_routes(seed: dict) -> list[tuple]:
    user = {"Authorization": f"Bearer {seed['reader']}"}
    service = {"Authorization": f"Bearer {seed['service']}"}
    kv = {"X-Vault-Token": seed["service"], "X-Vault-Request": "true"}
    kv_user = {"X-Vault-Token": seed["policy_user"], "X-Vault-Request": "true"}
    path, account = seed["v2_path"], seed["account_path"]
    write_body = {"data": {"username": "svc-bench", "password": "p" * 24}}
    share = [("GET", f"{V}/secret/live/{account}", service, None, "")] * 2
    return [
        ("bare_json", "floor: bare Flask JSON", None, "bare", [("GET", "/", {}, None, "")]),
        ("floor_read", "floor: bare Flask + v1 read's SQL", None, "floor",
         [("GET", f"/read/{seed['v1_name']}", {"X-Role": seed["role_id"]}, None, "")]),
        ("floor_write", "floor: bare Flask + v2 write's SQL", None, "floor",
         [("POST", f"/write/{seed['write_path']}", {}, None, "")]),
        ("floor_search", "floor: bare Flask + v1 search's SQL", None, "floor",
         [("POST", "/search", {"X-Role": seed["role_id"]}, {"keywords": "bench-list-0042"}, "")]),
        ("floor_keys", "floor: bare Flask + keys' SQL (the KV list's too)", None, "floor",
         [("GET", f"/keys/{seed['folder']}", {}, None, "")]),
        ("v1_read", "v1 read GET /secrets/{name}", "floor_read", "vault",
         [("GET", f"{V}/secrets/{seed['v1_name']}", user, None, "")]),
        ("v1_read_info", "v1 read at LOG_LEVEL=INFO (production's): its audit log line", "v1_read", "vault",
         ("log_level", "INFO", [("GET", f"{V}/secrets/{seed['v1_name']}", user, None, "")])),
    ] + [route for warning, info in _PAIRED[1:] for route in (  # the same pair again (untitled: not in the table)
        (warning, None, None, "vault", [("GET", f"{V}/secrets/{seed['v1_name']}", user, None, "")]),
        (info, None, None, "vault", ("log_level", "INFO", [("GET", f"{V}/secrets/{seed['v1_name']}", user, None, "")])),
    )] + [
        ("v1_read_grant", "v1 read, the role from a workflow grant", "floor_read", "vault",
         [("GET", f"{V}/secrets/{seed['v1_name']}", {"Authorization": f"Bearer {seed['grant_reader']}"}, None, "")]),
        ("v2_read", "v2 read GET /secret/data/{path}", "floor_read", "vault",
         [("GET", f"{V}/secret/data/{path}", service, None, "")]),
        ("kv_read", "KV v2 read GET /v1/secret/data/{path}", "floor_read", "vault",
         [("GET", f"/v1/secret/data/{path}", kv, None, "")]),
        ("kv_read_policy", "KV v2 read, ACL policy-bound user token", "floor_read", "vault",
         [("GET", f"/v1/secret/data/{path}", kv_user, None, "")]),
        ("v2_write", "v2 write POST /secret/data/{path}", "floor_write", "vault",
         [("POST", f"{V}/secret/data/{seed['write_path']}", service, write_body, "")]),
        ("v1_list", f"v1 list GET /secrets, 100 of {LIST_SECRETS} with data", None, "vault",
         [("GET", f"{V}/secrets", user, None, "limit=100")]),
        ("v1_search", "v1 search POST /search/secrets (a name keyword)", "floor_search", "vault",
         [("POST", f"{V}/search/secrets", user, {"keywords": "bench-list-0042"}, "")]),
        ("v2_keys", "keys GET /secret/keys/{folder}", "floor_keys", "vault",
         [("GET", f"{V}/secret/keys/{seed['folder']}", service, None, "")]),
        ("kv_list", "KV list LIST /v1/secret/metadata/{folder}", "floor_keys", "vault",
         [("GET", f"/v1/secret/metadata/{seed['folder']}", kv, None, "list=true")]),
        ("vault_cycle_share", "Vault's share of a checkout cycle (2 live-version reads)", None, "vault", share),
    ]


def sm_routes(seed: dict) -> list[tuple]:
    user = {"Authorization": f"Bearer {seed['sm_user']}"}
    admin = {"Authorization": f"Bearer {seed['sm_admin']}"}
    domain = seed["domain_id"]
    return [
        ("sm_floor_cycle", "floor: bare Flask + the checkout's Vault call, release", None, "floor",
         [("POST", f"/checkout/{seed['account_path']}", {}, None, ""), ("POST", "/release", {}, None, "")]),
        ("sm_floor_list", "floor: bare Flask + the account list's SQL", None, "floor",
         [("GET", "/sm/accounts", {"X-Roles": seed["sm_role_id"]}, None, "")]),
        ("sm_list", f"SM account list GET /secrets, 100 of {SM_HOSTS * SM_PER_HOST}", "sm_floor_list", "sm",
         [("GET", f"{SM}/secrets", user, None, "limit=100")]),
        ("sm_floor_td_accounts", "floor: bare Flask + a domain's account list's SQL", None, "floor",
         [("GET", f"/sm/targetdomains/{domain}/accounts", {}, None, "")]),
        ("sm_td_accounts", f"SM domain accounts GET /targetdomains/{{id}}/accounts, 100 of {SM_SCANNED:,}",
         "sm_floor_td_accounts", "sm", [("GET", f"{SM}/targetdomains/{domain}/accounts", admin, None, "limit=100")]),
        ("sm_search", "SM account search POST /secrets/search", None, "sm",
         [("POST", f"{SM}/secrets/search", user, {"keywords": "acct042"}, "")]),
        ("sm_cycle", "SM checkout create + read + release (SM process only)", "sm_floor_cycle", "sm",
         ("cycle", seed["checkout_path"], user)),
        ("sm_floor_checkouts", "floor: bare Flask + the checkout list's SQL", None, "floor",
         [("GET", f"/sm/checkouts/{seed['sm_user_id']}", {}, None, "")]),
        ("sm_checkouts", f"SM checkout list GET /secrets/checkouts ({SM_LIVE_CHECKOUTS} live, their passwords)",
         "sm_floor_checkouts", "sm", [("GET", f"{SM}/secrets/checkouts", user, None, "")]),
    ]


# --------------------------------------------------------------------------------------
# The measured child

def environ(method: str, path: str, headers: dict, body, query: str) -> tuple[dict, bytes]:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=path, method=method, headers=headers, json=body, query_string=query or None,
                             base_url="http://127.0.0.1:8080")
    env = builder.get_environ()
    data = env["wsgi.input"].read()
    return env, data


class Caller:
    """Calls a WSGI app with prebuilt environs; checks each answer's status."""

    def __init__(self, app):
        self.app = app
        self.status = ""

    def _start(self, status, headers, exc_info=None):
        self.status = status

    def call(self, env: dict, data: bytes) -> bytes:
        env = dict(env)
        env["wsgi.input"] = io.BytesIO(data)
        result = self.app(env, self._start)
        try:
            return b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()


_SOME_ID = "00000000-0000-4000-8000-000000000000"  # where a checkout's id goes in a prebuilt environ


def _with_checkout_id(prebuilt: tuple[dict, bytes], checkout_id: str) -> tuple[dict, bytes]:
    env, data = prebuilt
    env = dict(env)
    for key in ("PATH_INFO", "REQUEST_URI", "RAW_URI"):
        if key in env:
            env[key] = env[key].replace(_SOME_ID, checkout_id)
    return env, data


def _checkout_cycle(caller: Caller, path: str, headers: dict):
    """POST /secrets/checkouts, GET it, POST its release: one call of the route. Every environ is
    prebuilt, as for the other routes (the read's and release's take the new id by a replace:
    werkzeug's EnvironBuilder in the loop was about 0.45M of a cycle, counted as the service's)."""
    create = environ("POST", f"{SM}/secrets/checkouts", headers, {"path": path}, "")
    then = [(method, suffix, environ(method, f"{SM}/secrets/checkouts/{_SOME_ID}{suffix}", headers, None, ""))
            for method, suffix in (("GET", ""), ("POST", "/release"))]

    def run():
        body = caller.call(*create)
        if not caller.status.startswith("200"):
            raise RuntimeError(f"checkout answered {caller.status}: {body[:300]!r}")
        checkout_id = json.loads(body)["items"][0]["id"]
        for method, suffix, prebuilt in then:
            answer = caller.call(*_with_checkout_id(prebuilt, checkout_id))
            if not caller.status.startswith("200"):
                raise RuntimeError(f"{method} checkout{suffix} answered {caller.status}: {answer[:300]!r}")
    return run


def measured_child(which: str, seed_file: str) -> None:
    """Runs under callgrind: every route of `which` (vault or sm), each one warm-up loop, then a
    SHORT and a LONG loop, os.getppid() around each loop (a callgrind dump)."""
    seed = json.loads(Path(seed_file).read_text())
    os.environ.update(seed[f"{which}_env"])
    from tests.benchmarks import bare_app, floor_app

    if which == "vault":
        from vault_service.app import create_app
    else:
        from secrets_manager_service.app import create_app
    service_app = create_app()
    apps = {"bare": Caller(bare_app.app), "floor": Caller(floor_app.app), which: Caller(service_app)}
    pools = {"floor": floor_app._pool, which: service_app.extensions["db"].pool}  # whose round trips are counted
    routes = vault_routes(seed) if which == "vault" else sm_routes(seed)
    only = os.environ.get("BENCH_CPU_ONLY")
    if only:  # a developer's quicker run: these route keys alone
        routes = [route for route in routes if route[0] in only.split(",")]
    order, trips, warmed = [], {}, set()
    for key, _title, _floor, app_key, requests_ in routes:
        caller = apps[app_key]
        level = None
        if isinstance(requests_, tuple) and requests_[0] == "log_level":  # these requests at another level
            _, level, requests_ = requests_
        if isinstance(requests_, tuple):  # a function of the app
            runs = [_checkout_cycle(caller, requests_[1], requests_[2])]
        else:
            runs = []
            for request in requests_:
                built = environ(*request)
                runs.append(lambda built=built, caller=caller: caller.call(*built))

        def one():
            for run in runs:
                answer = run()
                if caller.status and caller.status[:1] not in "2":
                    raise RuntimeError(f"{key} answered {caller.status}: {answer[:300]!r}")
        # What start-up and the routes before left to collect is collected here, not in this route's
        # loops: a full collection landing in one of them moved a route by 9% between two counts.
        gc.collect()
        root = logging.getLogger()
        level_before = root.level
        if level is not None:
            root.setLevel(level)  # what LOG_LEVEL sets (common.logs.configure), for this route alone
        for _ in range(FIRST_WARMUP if app_key not in warmed else WARMUP):
            one()
        warmed.add(app_key)
        for count in (SHORT, LONGER.get(key, LONG)):
            os.getppid()  # dump: what came before
            for _ in range(count):
                one()
        os.getppid()
        root.setLevel(level_before)
        order.append(key)
        if app_key in pools:  # after the loops: falls in the next route's warm-up, which is not counted
            with round_trips.counted(pools[app_key]()) as counter:
                one()
            trips[key] = counter.round_trips
    Path(seed_file + f".{which}.order").write_text(json.dumps({"order": order, "round_trips": trips}))


def count(which: str, seed_file: str, out_dir: str, label: str | None = None) -> dict[str, float]:
    """Runs the child of `which` under callgrind; instructions per request by route key. `label`
    names its files when `which` runs more than once (default: `which`)."""
    label = label or which
    out = os.path.join(out_dir, f"callgrind.{label}")
    done = subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=getppid", "--separate-threads=yes", f"--callgrind-out-file={out}",
                           sys.executable, "-m", "tests.benchmarks.cpu", "--child", which, seed_file],
                          cwd=bench.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {which} child failed:\n{done.stdout[-3000:]}")
    ran = json.loads(Path(seed_file + f".{which}.order").read_text())
    order = ran["order"]
    ROUND_TRIPS.update(ran["round_trips"])
    totals = {}
    for name in os.listdir(out_dir):
        match = re.fullmatch(rf"callgrind\.{label}\.(\d+)-01", name)
        if match:
            text = Path(out_dir, name).read_text(errors="replace")
            totals[int(match.group(1))] = int(re.search(r"^summary: (\d+)", text, re.M).group(1))
    if len(totals) != 3 * len(order):  # os.getppid() three times a route; the exit's dump has no number
        raise RuntimeError(f"the {which} child made {len(totals)} dumps, not {3 * len(order)}")
    # Dump 1 is the start-up and route 0's warm-up; then per route: SHORT loop, LONG loop,
    # the next route's warm-up + SHORT loop ... (a warm-up falls in the dump before a SHORT loop).
    result = {}
    for index, key in enumerate(order):
        short, long_ = totals[2 + 3 * index], totals[3 + 3 * index]
        result[key] = (long_ - short) / (LONGER.get(key, LONG) - SHORT)
    return result


# --------------------------------------------------------------------------------------
# Set-up over HTTP (not counted)

def seed_vault(ctx: bench.Context) -> dict:
    role = support.new_role("cpu-reader")
    admin = ctx.tokens("admin", roles=[role], ttl=bench.TOKEN_TTL)
    service = ctx.tokens("service", ttl=bench.TOKEN_TTL)

    def create(index: int) -> None:
        ctx.call("POST", f"{ctx.vault_url}/secrets", admin, {
            "name": f"bench-list-{index:04d}", "data": {"username": f"svc-{index}", "password": secrets.token_urlsafe(24)},
            "read_roles": [role], "write_roles": [role]}, expect=(201,))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, range(LIST_SECRETS)))
    folder = "bench/cpu"
    for index in range(20):
        ctx.call("POST", f"{ctx.vault_url}/secret/data/{folder}/s{index:02d}", service,
                 {"data": {"username": "svc-bench", "password": secrets.token_urlsafe(24)}})
    write_path = f"{folder}/written"
    ctx.call("POST", f"{ctx.vault_url}/secret/metadata/{write_path}", service, {"max_versions": 10})
    policy_role, policy = support.new_role("cpu-kv"), "cpu-read"
    head = {"X-Vault-Token": ctx.tokens("admin", ttl=bench.TOKEN_TTL)}
    for url, body in ((f"sys/policies/acl/{policy}", {"policy": f'path "secret/data/{folder}/*" {{ capabilities = ["read"] }}'}),
                      (f"identity/group/name/{policy_role['name']}", {"type": "external", "policies": [policy]})):
        response = ctx.http.put(f"{ctx.vault_base}/v1/{url}", json=body, headers=head, timeout=60)
        if response.status_code not in (200, 204):
            raise RuntimeError(f"setup: PUT /v1/{url} answered {response.status_code}: {response.text[:500]}")
    grantee = str(uuid.uuid4())  # holds the role by a workflow grant only (issue 21)
    ctx.call("PUT", f"{ctx.vault_url}/grants/{uuid.uuid4()}", service,
             {"user_id": grantee, "role": role, "grant_type": "PERMANENT", "sequence": 1})
    return {"reader": ctx.tokens("user", roles=[role], ttl=bench.TOKEN_TTL), "role_id": role["id"],
            "grant_reader": ctx.tokens("user", sub=grantee, ttl=bench.TOKEN_TTL),
            "service": service, "policy_user": ctx.tokens("user", roles=[policy_role], ttl=bench.TOKEN_TTL),
            "v1_name": "bench-list-0007", "v2_path": f"{folder}/s07", "write_path": write_path, "folder": folder}


def seed_secrets_manager(ctx: bench.Context) -> dict:
    admin = ctx.tokens("admin", ttl=bench.TOKEN_TTL)
    role = support.new_role("cpu-operators")
    policy_id = bench.password_policy(ctx, admin)
    hosts = [str(uuid.uuid4()) for _ in range(SM_HOSTS)]

    def register(index: int) -> None:
        accounts = [{"account": f"acct{n:03d}"} for n in range(SM_PER_HOST)]
        if index == 0:
            for account in accounts[:SM_WITH_PASSWORD]:
                account["initial_password"] = secrets.token_urlsafe(18)
        ctx.call("POST", f"{ctx.sm_url}/host-secret/{hosts[index]}", admin, {
            "metadata": {"address": f"10.1.{index}.1", "protocol": "NONE", "password_policy_id": policy_id,
                         "access_roles": [role]},
            "accounts": accounts})

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(register, range(SM_HOSTS)))
    user_id = str(uuid.uuid4())
    user = ctx.tokens("user", sub=user_id, roles=[role], ttl=bench.TOKEN_TTL)
    for n in range(1, 1 + SM_LIVE_CHECKOUTS):  # the accounts with a password but the cycle's
        ctx.call("POST", f"{ctx.sm_url}/secrets/checkouts", user, {"path": f"hosts/{hosts[0]}/acct{n:03d}"})
    return {"sm_user": user, "sm_user_id": user_id, "sm_role_id": role["id"], "sm_admin": admin,
            "domain_id": seed_target_domain(ctx, admin),
            "checkout_path": f"hosts/{hosts[0]}/acct000", "account_path": f"hosts/{hosts[0]}/acct000"}


def seed_target_domain(ctx: bench.Context, admin: str) -> str:
    """A target domain (no directory is run: its accounts written as a complete scan writes them)."""
    import psycopg
    from psycopg.types.json import Jsonb

    from common.devtools import slapd

    endpoint = {"type": "LDAP", "ldap_protocol": "LDAP", "ldap_address": "127.0.0.1", "ldap_port": 389,
                "ldap_base_dn": slapd.PEOPLE, "ldap_bind_dn": slapd.BIND_DN, "ldap_bind_password": "bench-bind"}
    response = ctx.http.post(f"{ctx.sm_url}/targetdomains", json={"name": "bench-domain", "endpoints": [endpoint]},
                             headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    if response.status_code != 201:
        raise RuntimeError(f"setup: POST /targetdomains answered {response.status_code}: {response.text[:500]}")
    domain_id = response.json()["id"]
    rows = []
    for n in range(SM_SCANNED):
        dn = f"uid=user{n:04d},{slapd.PEOPLE}"
        rows.append((str(uuid.uuid4()), domain_id, str(uuid.uuid4()), dn, f"user{n:04d}", f"user{n:04d}@example.test",
                     Jsonb({"dn": dn})))
    with psycopg.connect(ctx.extras["sm_env"]["DATABASE_URL"]) as conn:
        conn.cursor().executemany("""INSERT INTO sm_td_accounts (id, domain_id, identity, dn, username, email, additional_data)
                                     VALUES (%s, %s, %s, %s, %s, %s, %s)""", rows)
    return domain_id


def vault_account_path(ctx: bench.Context, sm_path: str) -> str:
    """The Vault path the Secrets Manager keeps the account's password at (found by listing)."""
    service = ctx.tokens("service", ttl=bench.TOKEN_TTL)
    host = sm_path.split("/")[1]
    folder = ctx.http.get(f"{ctx.vault_base}/v1/secret/metadata/?list=true",
                          headers={"X-Vault-Token": service}, timeout=60).json()["data"]["keys"]
    for top in folder:
        keys = ctx.http.get(f"{ctx.vault_base}/v1/secret/metadata/{top}?list=true",
                            headers={"X-Vault-Token": service}, timeout=60)
        if keys.status_code == 200 and any(host in key for key in keys.json()["data"]["keys"]):
            return f"{top}{host}/acct000"
    raise RuntimeError("setup: the account's password is not found in the Vault")


HIDDEN_SECRETS = 9000  # added between the Vault's two counts: none of them is what a measured route returns
GROWTH_TOLERANCE = 0.05  # a route whose count grows more than this with them misses (runs agree within 2%)


def add_hidden_secrets(vault_db: str) -> None:
    """HIDDEN_SECRETS more shared secrets (by SQL, copies of a seeded one's key and version) that
    no measured request returns: half in a folder of their own, half named like the searched
    secret but readable by another role only. Reads, lists, searches and keys must cost what they
    did (issue 25: no route's count grows with the objects it does not return)."""
    import psycopg

    with psycopg.connect(vault_db, autocommit=True) as conn:
        conn.execute(
            """WITH model AS (SELECT s.*, v.ciphertext FROM vault_secrets s
                                JOIN vault_secret_versions v ON v.secret_id = s.id AND v.version = s.current_version
                               WHERE s.owner_id = '' AND s.name = 'bench-list-0000'),
                    made AS (
                        INSERT INTO vault_secrets (id, owner_id, name, read_roles, write_roles, author, updated_by,
                                                   dek_key_id, dek_wrapped, current_version, max_versions)
                        SELECT gen_random_uuid(), '', CASE WHEN n %% 2 = 0 THEN 'bench/hidden/s' || lpad(n::text, 5, '0')
                                                           ELSE 'bench-list-0042-h' || lpad(n::text, 5, '0') END,
                               ARRAY['cpu-hidden-role'], ARRAY['cpu-hidden-role'], m.author, m.author, m.dek_key_id,
                               m.dek_wrapped, 1, 10
                          FROM generate_series(1, %(n)s) n, model m
                        RETURNING id, author)
               INSERT INTO vault_secret_versions (secret_id, version, ciphertext, created_by, payload_entry_keys)
               SELECT made.id, 1, m.ciphertext, made.author, '{password,username}' FROM made, model m""",
            {"n": HIDDEN_SECRETS})
        conn.execute("ANALYZE vault_secrets")
        conn.execute("ANALYZE vault_secret_versions")


def report_growth(small: dict[str, float], large: dict[str, float], titles: dict) -> tuple[list[dict], bool]:
    rows, missed = [], False
    print(f"\nthe same routes with {HIDDEN_SECRETS:,} more secrets none of them returns (at most +{GROWTH_TOLERANCE:.0%})")
    print(f"{'route':<62} {'before':>9} {'after':>9} {'growth':>7}  result")
    print("-" * 100)
    for key, (title, _floor) in titles.items():
        if key not in small or key not in large or key.startswith("floor"):
            continue
        growth = large[key] / small[key] - 1
        result = "PASS" if growth <= GROWTH_TOLERANCE else "MISS"
        missed = missed or result == "MISS"
        print(f"{title:<62} {small[key] / 1e6:>8.2f}M {large[key] / 1e6:>8.2f}M {growth:>+7.1%}  {result}")
        rows.append({"key": key, "before": round(small[key]), "after": round(large[key]), "growth": round(growth, 4),
                     "result": result})
    return rows, missed


# --------------------------------------------------------------------------------------
# Report

def info_extra(counts: dict[str, float]) -> float:
    """What LOG_LEVEL=INFO adds to a v1 read: the median of the pairs' differences."""
    differences = sorted(counts[info] - counts[warning] for warning, info in _PAIRED if info in counts and warning in counts)
    return differences[len(differences) // 2]


def report(counts: dict[str, float], titles: dict[str, tuple[str, str | None]]) -> tuple[list[dict], bool]:
    rows, missed = [], False
    print(f"{'route':<62} {'instructions':>12} {'floor':>9} {'budget':>9} {'trips':>5}  result")
    print("-" * 110)
    for key, (title, floor) in titles.items():
        if key not in counts:
            continue
        value, budget = counts[key], BUDGETS.get(key)
        if key == "v1_read_info" and "v1_read" in counts:  # the same read at WARNING, plus what INFO may add
            value = counts["v1_read"] + info_extra(counts)
            budget = counts["v1_read"] + INFO_EXTRA
        floor_value = counts.get(floor) if floor else None
        trips, most_trips = ROUND_TRIPS.get(key), MAX_ROUND_TRIPS.get(key)
        result = "" if budget is None else ("PASS" if value <= budget else "MISS")
        if most_trips is not None and (trips is None or trips > most_trips):
            result = "MISS"
        missed = missed or result == "MISS"
        shown_trips = "" if trips is None else f"{trips}" + ("" if most_trips is None else f"/{most_trips}")
        print(f"{title:<62} {value / 1e6:>11.2f}M {'' if floor_value is None else f'{floor_value / 1e6:.2f}M':>9} "
              f"{'' if budget is None else f'{budget / 1e6:.2f}M':>9} {shown_trips:>5}  {result}")
        rows.append({"key": key, "title": title, "instructions": round(value), "floor": floor,
                     "budget": budget, "round_trips": trips, "result": result or None})
    pairs = [counts[info] - counts[warning] for warning, info in _PAIRED if info in counts and warning in counts]
    if pairs:
        print(f"(INFO's audit line: {', '.join(f'{p / 1e3:+.0f}k' for p in pairs)} in {len(pairs)} pairs of counts, "
              f"the median {info_extra(counts) / 1e3:+.0f}k; at most {INFO_EXTRA / 1e3:+.0f}k)")
    return rows, missed


def run() -> int:
    started = time.monotonic()
    os.chdir(bench.ROOT)
    with contextlib.ExitStack() as stack:
        data_dir = tempfile.mkdtemp(prefix="bench-cpu-")
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        from common.devtools.issuer.keys import ensure_signing_key

        ensure_signing_key(data_dir)
        db_server = stack.enter_context(bench.database_server(data_dir))
        ctx = bench.Context(stack=stack, data_dir=data_dir, db_server=db_server, tokens=support.TokenFactory(data_dir))
        stack.callback(ctx.http.close)
        vault_db = ctx.extras["vault_database_url"] = ctx.database("vault_cpu")
        vault_env = {**ctx.service_env(vault_db),
                     "VAULT_MASTER_KEYS": f"k1:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"}
        ctx.vault_base = ctx.serve("vault_service.wsgi:app", vault_env, f"{V}/status", migrations_of="vault_service.app")
        from tests.benchmarks import suite

        suite.start_secrets_manager(ctx)
        seed = {**seed_vault(ctx), **seed_secrets_manager(ctx)}
        seed["account_path"] = vault_account_path(ctx, seed["checkout_path"])
        seed["vault_env"] = {**vault_env, "DATABASE_URL": vault_db}
        seed["sm_env"] = {**ctx.extras["sm_env"], "VAULT_TOKEN": seed["service"]}
        print(f"set up in {time.monotonic() - started:.0f} s; counting (callgrind, {SHORT} and {LONG} requests "
              "per route) ...", flush=True)
        seed_file = os.path.join(data_dir, "seed.json")
        Path(seed_file).write_text(json.dumps(seed))
        counts = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # two children at once
            secrets_manager = pool.submit(count, "sm", seed_file, data_dir)
            counts.update(count("vault", seed_file, data_dir))
            add_hidden_secrets(vault_db)
            larger = count("vault", seed_file, data_dir, label="vault-larger")
            counts.update(secrets_manager.result())
        titles = {key: (title, floor) for key, title, floor, _app, _r in vault_routes(seed) + sm_routes(seed) if title}
        rows, missed = report(counts, titles)
        growth_rows, grew = report_growth(counts, larger, titles)
        missed = missed or grew
        print(f"\nLOG_LEVEL=WARNING; PostgreSQL's work not counted; {time.monotonic() - started:.0f} s in all")
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_FILE.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                            "rows": rows, "growth": growth_rows}, indent=2) + "\n")
        return 1 if missed else 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        measured_child(sys.argv[2], sys.argv[3])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())
