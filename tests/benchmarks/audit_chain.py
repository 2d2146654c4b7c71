"""`make bench-audit-chain`: what the audit trail's hash chain costs the inserts, and how fast it links.

    .venv/bin/python -m tests.benchmarks.audit_chain

Two fresh databases on the same server: one with the audit trail as it was before the chain
(common migrations 0001 and 0002), one with it (0003: the xid default, the two partial
indexes) and a chainer linking in the background once a second, as every service process does.
WRITERS threads run, for SECONDS each, either the insert `audit.record` makes (autocommit,
no WAL flush wait) or the v1 read's whole statement (store.V1_READ: the secret, its version
and the audit insert); the runs alternate (before, after, before, after) so that a busy moment
of the shared machine hits both alike. Then the chainer's own
rate: a backlog of BACKLOG events linked by one chainer, and by four at once (they take turns
on the head row: the total must not change, and the chain must verify).

Environment: AUDIT_BENCH_SECONDS (default 10), AUDIT_BENCH_WRITERS (8), AUDIT_BENCH_BACKLOG (50000).
"""
from __future__ import annotations

import os
import tempfile
import threading
import time

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from common import audit_chain, audit_store
from common.db import Database, _migration_files
from tests import support
from vault_service.secrets import store

SECONDS = float(os.environ.get("AUDIT_BENCH_SECONDS", "10"))
WRITERS = int(os.environ.get("AUDIT_BENCH_WRITERS", "8"))
BACKLOG = int(os.environ.get("AUDIT_BENCH_BACKLOG", "50000"))
SERVICE = "vault"
_EVENT = {"service": SERVICE, "request_id": "0" * 32, "principal": "9f0c2d8e-1111-4222-8333-444455556666",
          "action": "secret.read", "target": "secret:team-0001/app/prod/db", "outcome": "success",
          "details": Jsonb({"version": 3})}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, options="-c synchronous_commit=off")


_READ = {"owner": "", "name": "bench/read", "version": None, "a_roles": ["bench-readers"], "a_manager": False,
         **{f"a_{key}": _EVENT[key] for key in ("service", "request_id", "principal", "action", "target")}}


def _old_schema(url: str) -> None:
    """The audit trail before the chain (the common migrations 0001 and 0002 only) and the Vault's tables."""
    with _connect(url) as conn:
        for version, _name, sql in _migration_files("common"):
            if version <= 2:
                conn.execute(sql)
        for _version, _name, sql in _migration_files("vault_service"):
            conn.execute(sql)


def _seed_secret(url: str) -> None:
    """One shared secret with a version, readable by the role the reads carry."""
    with _connect(url) as conn:
        conn.execute("""INSERT INTO vault_secrets (id, name, read_roles, author, updated_by, dek_key_id, dek_wrapped,
                                                   current_version)
                        VALUES ('00000000-0000-4000-8000-000000000001', 'bench/read', '{bench-readers}', 'b', 'b',
                                'k1', '\\x00', 1)""")
        conn.execute("""INSERT INTO vault_secret_versions (secret_id, version, ciphertext, created_by)
                        VALUES ('00000000-0000-4000-8000-000000000001', 1, '\\x00', 'b')""")


def _insert_rate(url: str, statement: str = audit_store.INSERT_EVENT, params: dict = _EVENT) -> float:
    stop = threading.Event()
    counts = [0] * WRITERS

    def write(k):
        with _connect(url) as conn:
            while not stop.is_set():
                conn.execute(statement, params)
                counts[k] += 1

    threads = [threading.Thread(target=write, args=(k,)) for k in range(WRITERS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # warm-up
    start, before = time.monotonic(), sum(counts)
    time.sleep(SECONDS)
    done, elapsed = sum(counts) - before, time.monotonic() - start
    stop.set()
    for thread in threads:
        thread.join()
    return done / elapsed


def _background_chainer(db: Database, stop: threading.Event, linked: list) -> None:
    while not stop.wait(1.0):
        linked.append(audit_chain.chain_pass(db, SERVICE) or 0)


def _backlog_rate(db: Database, url: str, chainers: int) -> tuple[float, int]:
    with _connect(url) as conn:
        conn.execute("""INSERT INTO audit_events (service, request_id, principal, action, target, outcome, details)
                        SELECT %(service)s, %(request_id)s, %(principal)s, %(action)s, %(target)s, %(outcome)s,
                               %(details)s FROM generate_series(1, %(n)s)""", {**_EVENT, "n": BACKLOG})
        conn.execute("VACUUM ANALYZE audit_events")
        # Until every transaction older than the backlog's has ended (other sessions on a shared
        # server), there is nothing a chainer may take yet: not the chainer's time.
        while not conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot()) > max(xid) AS clear "
                               "FROM audit_events").fetchone()["clear"]:
            time.sleep(0.1)
    totals = []

    def chain():
        while True:
            n = audit_chain.chain_pass(db, SERVICE, late_limit=None)
            if n == 0:
                return
            totals.append(n or 0)

    start = time.monotonic()
    threads = [threading.Thread(target=chain) for _ in range(chainers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals) / (time.monotonic() - start), sum(totals)


def main() -> int:
    data_dir = tempfile.mkdtemp(prefix="audit-bench-")
    server = support.database_server_url(data_dir)
    rows = []
    with support.fresh_database(server, "bench_before") as before_url, \
            support.fresh_database(server, "bench_after") as after_url:
        _old_schema(before_url)
        db = Database(after_url, service=SERVICE, migrations_package="vault_service", max_size=8)
        db.migrate()
        try:
            for url in (before_url, after_url):
                _seed_secret(url)
            for run in (1, 2, 3):
                for label, statement, params in (("audit inserts/s", audit_store.INSERT_EVENT, _EVENT),
                                                 ("v1 read statements/s", store.V1_READ, _READ)):
                    rows.append((f"run {run}: {label} without the chain (schema 0002)",
                                 _insert_rate(before_url, statement, params)))
                    stop, linked = threading.Event(), []
                    chainer = threading.Thread(target=_background_chainer, args=(db, stop, linked))
                    chainer.start()
                    rate = _insert_rate(after_url, statement, params)
                    stop.set()
                    chainer.join()
                    rows.append((f"run {run}: {label} with the chain (0003 + chainer every second)", rate))
            with db.cursor() as cur:
                cur.execute("TRUNCATE audit_events")
                cur.execute("DELETE FROM audit_chain_heads")
            rate, total = _backlog_rate(db, after_url, 1)
            rows.append((f"chainer alone: {total} backlog events linked, events/s", rate))
            rate, total = _backlog_rate(db, after_url, 4)
            rows.append((f"four chainers at once: {total} backlog events linked, events/s", rate))
            report = audit_chain.verify(db, SERVICE)
            rows.append(("verify after both: events checked (ok)" if report.ok else "verify FAILED", report.checked))
            start = time.monotonic()
            audit_chain.verify(db, SERVICE)
            rows.append(("verify, events/s", report.checked / (time.monotonic() - start)))
        finally:
            db.close()
    width = max(len(name) for name, _ in rows)
    print(f"{WRITERS} writer threads, {SECONDS:g} s per run")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10.0f}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
