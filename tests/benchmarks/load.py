"""`make load`: a bounded mixed workload against both services, and whether their workers stay flat.

    .venv/bin/python -m tests.benchmarks.load

Starts the suite on 127.0.0.1 (tests/benchmarks/suite.py) with LOAD_WORKERS gunicorn workers for
each service, sets up over HTTP one shared secret, one versioned secret and one host account per
load connection, then runs the Python generator of loadgen.py for LOAD_SECONDS with a fixed mix
of operations on every connection, in this order of 20:

  16 reads   (80%): v1 read, v2 read, v1 metadata, v1 search, SM account list, SM account search
  3 writes   (15%): v1 update (a new version), v2 write, SM set-password (a new Vault version)
  1 checkout (5%):  SM checkout, then its release (two requests, one operation)

It prints the throughput (operations and requests per second), p50/p99 per operation, the
errors (any non-2xx answer; they must be zero), and each gunicorn worker's resident memory
after the warm-up and at the end, which must stay within 10%. Exit code 1 when either fails.

Environment: LOAD_SECONDS (default 300), LOAD_WARMUP_SECONDS (default 20), LOAD_WORKERS (3),
LOAD_CONNECTIONS (8).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import secrets
import sys
import threading
import time
import uuid
from pathlib import Path

from tests import support
from tests.benchmarks import bench, loadgen
from tests.benchmarks.loadgen import Request

RSS_GROWTH_LIMIT = 0.10
MIX = ("read",) * 16 + ("write",) * 3 + ("checkout",)


@dataclasses.dataclass(frozen=True)
class Slot:
    """What one load connection works on: its own objects, so connections never contend on a row."""

    shared_name: str
    versioned_path: str
    host_id: str
    account: str


@dataclasses.dataclass(frozen=True)
class MixedLoad(loadgen.Flow):
    vault_url: str
    sm_url: str
    slots: tuple[Slot, ...]
    reader: str  # a user holding the role of every object
    service: str
    admin: str

    @property
    def url(self) -> str:
        return self.vault_url

    @property
    def address(self) -> tuple[str, int]:
        return Request.make("GET", self.vault_url).address

    def operation(self, worker_index: int):
        slot = self.slots[worker_index % len(self.slots)]
        reader = {"Authorization": f"Bearer {self.reader}"}
        service = {"Authorization": f"Bearer {self.service}"}
        admin = {"Authorization": f"Bearer {self.admin}"}
        v, sm = self.vault_url, self.sm_url
        reads = itertools.cycle([
            Request.make("GET", f"{v}/secrets/{slot.shared_name}", reader),
            Request.make("GET", f"{v}/secret/data/{slot.versioned_path}", service),
            Request.make("GET", f"{v}/metadata/secrets/{slot.shared_name}", reader),
            Request.make("POST", f"{v}/search/secrets", reader, json_body={"keywords": "load", "limit": 10}),
            Request.make("GET", f"{sm}/secrets?limit=20", reader),
            Request.make("POST", f"{sm}/secrets/search", reader, json_body={"host_id": slot.host_id}),
        ])
        sequence = itertools.count()
        writes = itertools.cycle(["v1", "v2", "set-password"])
        mix = itertools.cycle(MIX)
        sm_conn = loadgen.Connection(Request.make("GET", sm).address, loadgen.TIMEOUT_SECONDS)

        def on(request: Request, vault_conn):
            conn = sm_conn if request.url.startswith(sm) else vault_conn
            return conn.exchange(request.raw())

        def write(vault_conn):
            n = next(sequence)
            kind = next(writes)
            if kind == "v1":
                return on(Request.make("PUT", f"{v}/secrets/{slot.shared_name}", reader,
                                       json_body={"data": {"password": f"pw-{n}"}}), vault_conn)
            if kind == "v2":
                return on(Request.make("POST", f"{v}/secret/data/{slot.versioned_path}", service,
                                       json_body={"data": {"password": f"pw-{n}"}}), vault_conn)
            return on(Request.make("POST", f"{sm}/set-password/{slot.host_id}/{slot.account}", admin,
                                   json_body={"password": f"Load-pw-{n}-{secrets.token_hex(4)}"}), vault_conn)

        def checkout_cycle(vault_conn):
            status, body = on(Request.make("POST", f"{sm}/secrets/checkouts", reader,
                                           json_body={"path": f"hosts/{slot.host_id}/{slot.account}"}), vault_conn)
            if status != 200:
                return status, body
            checkout_id = json.loads(body)["items"][0]["id"]
            return on(Request.make("POST", f"{sm}/secrets/checkouts/{checkout_id}/release", reader), vault_conn)

        def operate(vault_conn):
            kind = next(mix)
            if kind == "read":
                return on(next(reads), vault_conn)
            if kind == "write":
                return write(vault_conn)
            return checkout_cycle(vault_conn)

        return operate


def set_up(ctx: bench.Context, connections: int) -> MixedLoad:
    role = support.new_role("load-users")
    admin = ctx.tokens("admin", roles=[role], ttl=bench.TOKEN_TTL)
    service = ctx.tokens("service", ttl=bench.TOKEN_TTL)
    reader = ctx.tokens("user", roles=[role], ttl=bench.TOKEN_TTL)
    policy_id = ctx.call("POST", f"{ctx.sm_url}/password-policy", admin, {
        "name": support.unique("load-policy"), "rotation_interval": "P30D", "password_min_length": 20,
        "password_max_length": 24, "use_special_characters": True, "use_lower_case": True,
        "use_upper_case": True, "use_numbers": True, "max_versions": 5, "number_of_retries": 1,
        "retry_interval": "PT5M", "max_concurrent_checkouts": 0, "max_checkout_duration": "PT1H",
        "rotate_on_release": False, "verify_after_rotation": False,
    }, expect=(201,)).json()["id"]
    host_id = str(uuid.uuid4())
    accounts = [f"acct{n:02d}" for n in range(connections)]
    ctx.call("POST", f"{ctx.sm_url}/host-secret/{host_id}", admin, {
        "metadata": {"address": "10.9.0.1", "protocol": "NONE", "password_policy_id": policy_id,
                     "access_roles": [role]},
        "accounts": [{"account": a, "initial_password": secrets.token_urlsafe(18)} for a in accounts],
    })
    slots = []
    for account in accounts:
        name = support.unique("load-shared")
        ctx.call("POST", f"{ctx.vault_url}/secrets", admin, {
            "name": name, "data": {"password": secrets.token_urlsafe(18)},
            "read_roles": [role], "write_roles": [role]}, expect=(201,))
        path = f"load/{support.unique('v2')}"
        ctx.call("POST", f"{ctx.vault_url}/secret/data/{path}", service, {"data": {"password": "initial"}})
        slots.append(Slot(name, path, host_id, account))
    return MixedLoad(ctx.vault_url, ctx.sm_url, tuple(slots), reader=reader, service=service, admin=admin)


# --- gunicorn workers and their memory -------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, resident bytes) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    return ppid, rss_pages * os.sysconf("SC_PAGE_SIZE")


def gunicorn_workers(base_url: str) -> list[int]:
    """The worker pids of the gunicorn whose master listens at `base_url` (the master's children)."""
    bind = base_url.removeprefix("http://")
    masters = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in b" ".join(argv) and bind.encode() in argv:
            masters.append(int(entry.name))
    workers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[0] in masters:
                workers.append(int(entry.name))
    return sorted(workers)


def rss_of(pids: list[int]) -> dict[int, int | None]:
    return {pid: (_proc_stat(pid) or (None, None))[1] for pid in pids}


def _mib(value: int | None) -> str:
    return "gone" if value is None else f"{value / 2**20:.1f} MiB"


def main() -> int:
    seconds = float(os.environ.get("LOAD_SECONDS", "300"))
    warmup = float(os.environ.get("LOAD_WARMUP_SECONDS", "20"))
    workers = int(os.environ.get("LOAD_WORKERS", "3"))
    connections = int(os.environ.get("LOAD_CONNECTIONS", "8"))
    from tests.benchmarks.suite import running_suite

    with running_suite(workers=workers) as ctx:
        work = set_up(ctx, connections)
        pids = {"vault": gunicorn_workers(ctx.vault_base), "secrets-manager": gunicorn_workers(ctx.sm_base)}
        settings = loadgen.Settings(seconds=seconds, warmup=warmup, processes=2, connections=connections,
                                    max_requests=10_000_000)
        print(f"load: {workers} gunicorn workers per service, {connections} connections, {warmup:.0f} s warm-up, "
              f"{seconds:.0f} s measured; per 20 operations: 16 reads, 3 writes, 1 checkout+release")
        result, start_rss = {}, {}

        def run_load():
            result["r"] = loadgen.python_load(work, settings)

        runner = threading.Thread(target=run_load)
        runner.start()
        time.sleep(0.3 + warmup)  # python_load starts 0.3 s after it is called, then warms up
        start_rss = {service: rss_of(p) for service, p in pids.items()}
        runner.join()
        end_rss = {service: rss_of(p) for service, p in pids.items()}
    load = result["r"]
    print(f"throughput: {load.rps:.1f} operations/s over {load.seconds:.0f} s ({load.requests} operations; "
          f"a checkout+release counts once)")
    print(f"latency per operation: p50 {load.p50_ms} ms, p99 {load.p99_ms} ms")
    print(f"errors: {load.errors}" + (f" ({load.statuses}; e.g. {load.error_samples})" if load.errors else ""))
    flat = True
    print(f"worker memory (RSS after the warm-up -> at the end; limit +{RSS_GROWTH_LIMIT:.0%}):")
    for service, pids_of in pids.items():
        for pid in pids_of:
            before, after = start_rss[service].get(pid), end_rss[service].get(pid)
            growth = (after - before) / before if before and after else None
            ok = growth is not None and growth <= RSS_GROWTH_LIMIT
            flat &= ok
            shown = "n/a" if growth is None else f"{growth:+.1%}"
            print(f"  {service} worker {pid}: {_mib(before)} -> {_mib(after)} ({shown}) {'PASS' if ok else 'MISS'}")
    return 0 if load.errors == 0 and flat and pids["vault"] and pids["secrets-manager"] else 1


if __name__ == "__main__":
    sys.exit(main())
