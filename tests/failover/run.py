"""`make failover-test`: the primary dies under load, the standby is promoted; what do clients see?

A PostgreSQL primary and a streaming standby (tests/failover/cluster.py), the Vault and the
Secrets Manager under gunicorn pointed at both through one multi-host DATABASE_URL with
target_session_attrs=read-write, and a load of versioned writes, set-password and checkouts with
releases. Mid-load the primary is killed (pg_ctl stop -m immediate) and the standby promoted.
Reported: every status answered during the switch (503 allowed, a 500 fails the run), the time
from the crash to the first write served again, and the acknowledged writes lost (each one read
back from the new primary afterwards, through the Vault). Run synchronous (must lose 0) and
asynchronous (the loss is reported, not judged: it is what async replication allows).

    FAILOVER_MODES=sync,sync-cut,async,async-cut  FAILOVER_LOAD_SECONDS=4  python -m tests.failover.run
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from common.devtools.issuer.keys import ensure_signing_key
from tests import support
from tests.failover import cluster

VAULT, SM = "/vault/api/v1", "/secrets-manager/api/v1"
# sync / async: the primary dies with its standby streaming. -cut: the standby is cut off from the
# primary CUT_SECONDS before, the failure that decides what asynchronous replication loses;
# halfway, the commits stuck waiting for the synchronous standby are cancelled (pg_cancel_backend,
# as an operator unsticking the database would), which PostgreSQL reports as committed.
MODES = ("sync", "sync-cut", "async", "async-cut")
CUT_SECONDS = 4.0
ROOT = Path(__file__).resolve().parents[2]


class Load(support.LoadThreads):
    """Writers until stopped; every answer's status and time kept, acknowledged writes kept."""

    def __init__(self, vault_url, sm_url, tokens, host_id, accounts, role):
        super().__init__()
        self.vault, self.sm = vault_url + VAULT, sm_url + SM
        self.service, self.admin = tokens.headers("service"), tokens.headers("admin")
        self.user = tokens.headers("user", roles=[role])
        self.host_id, self.accounts = host_id, accounts
        self.answers: list[tuple[float, str, int, str]] = []  # (time, operation, status, error_code)
        self.acknowledged: list[tuple[float, float, str, str]] = []  # (sent, acknowledged, path, value)
        for _ in range(3):
            self.thread(self._vault_writes)
        for account in accounts:
            self.thread(self._sm_operations, account)


    def _record(self, operation: str, response) -> bool:
        code = ""
        if response.status_code >= 400:
            with contextlib.suppress(ValueError):
                code = response.json().get("error_code", "")
        self.answers.append((time.time(), operation, response.status_code, code))
        return response.status_code == 200

    def _call(self, session, method, url, operation, **kw):
        try:
            return session.request(method, url, timeout=30, **kw)
        except requests.RequestException as exc:  # never expected: kept as a failure of its own
            self.answers.append((time.time(), operation, 0, type(exc).__name__))
            return None

    def _vault_writes(self):
        session = requests.Session()
        while self.running():
            path, value, sent = f"failover/{uuid.uuid4().hex}", secrets.token_hex(8), time.time()
            response = self._call(session, "POST", f"{self.vault}/secret/data/{path}", "vault write",
                                  json={"data": {"value": value}}, headers=self.service)
            if response is not None and self._record("vault write", response):
                self.acknowledged.append((sent, time.time(), path, value))
            elif response is not None and response.status_code == 503:
                time.sleep(0.05)  # as a client retrying after a 503 would

    def _sm_operations(self, account):
        session, n = requests.Session(), 0
        while self.running():
            n += 1
            if n % 2:
                response = self._call(session, "POST", f"{self.sm}/set-password/{self.host_id}/{account}",
                                      "set-password", json={"password": "Fo-" + secrets.token_urlsafe(12)},
                                      headers=self.admin)
                if response is not None:
                    self._record("set-password", response)
            else:
                response = self._call(session, "POST", f"{self.sm}/secrets/checkouts", "checkout",
                                      json={"path": f"hosts/{self.host_id}/{account}"}, headers=self.user)
                if response is not None and self._record("checkout", response):
                    checkout_id = response.json()["items"][0]["id"]
                    release = self._call(session, "POST", f"{self.sm}/secrets/checkouts/{checkout_id}/release",
                                         "release", headers=self.user)
                    if release is not None:
                        self._record("release", release)
            if response is not None and response.status_code == 503:
                time.sleep(0.05)


def run_mode(synchronous: bool, load_seconds: float, *, cut_seconds: float = 0) -> dict:
    """One run; with `cut_seconds`, the standby is cut off from the primary that long before the crash."""
    os.chdir(ROOT)  # gunicorn imports the apps from the working directory
    folder = Path(tempfile.mkdtemp(prefix="failover-", dir="/tmp"))
    data_dir = Path(tempfile.mkdtemp(prefix="failover-data-"))
    pair = cluster.Pair(folder / "pg", synchronous=synchronous)
    try:
        pair.start()
        for name in ("vault", "sm"):
            pair.create_database(name)
        ensure_signing_key(str(data_dir))
        tokens = support.TokenFactory(str(data_dir))
        client_secret = secrets.token_urlsafe(24)
        clients = support.write_issuer_clients(data_dir / "clients.json", sm_client_secret=client_secret, name="SM")
        common = {"DB_POOL_TIMEOUT_SECONDS": "2", "LOG_LEVEL": "ERROR"}
        vault_env = support.service_settings(str(data_dir), pair.service_url("vault"), **common,
                                             VAULT_MASTER_KEYS="k1:" + secrets.token_urlsafe(32))
        with contextlib.ExitStack() as stack:
            issuer = stack.enter_context(support.gunicorn(
                "common.devtools.issuer.wsgi:app", support.service_settings(str(data_dir), ISSUER_CLIENTS_FILE=str(clients)),
                health_path="/auth/api/v1/status"))
            vault_url = stack.enter_context(support.gunicorn("vault_service.wsgi:app", vault_env, workers=2,
                                                             health_path=f"{VAULT}/status"))
            sm_env = support.service_settings(str(data_dir), pair.service_url("sm"), **common, VAULT_URL=vault_url,
                                              SM_TOKEN_URL=issuer + "/auth/api/v1/oauth/token",
                                              SM_CLIENT_SECRET=client_secret)
            sm_url = stack.enter_context(support.gunicorn("secrets_manager_service.wsgi:app", sm_env, workers=2,
                                                          health_path=f"{SM}/status"))
            host_id, role, accounts = _set_up(sm_url, tokens)
            with Load(vault_url, sm_url, tokens, host_id, accounts, role) as load:
                time.sleep(load_seconds)
                cut, cancelled = None, 0
                if cut_seconds:
                    cut = time.time()
                    pair.cut_replication()
                    time.sleep(cut_seconds / 2)
                    cancelled = pair.cancel_commits_waiting_for_the_standby()
                    time.sleep(cut_seconds / 2)
                pair.crash_primary()
                crashed = time.time()  # the primary is gone (pg_ctl stop -m immediate has returned)
                pair.promote_standby()
                promoted = time.time()
                recovered = _wait_for_write_after(load, crashed)
                time.sleep(load_seconds)
            lost = _lost_writes(load, vault_url, tokens)
        report = _report(synchronous, load, crashed, promoted, recovered, lost)
        if cut:
            report["standby_cut_off_seconds_before_crash"] = cut_seconds
            report["commits_waiting_for_the_standby_cancelled"] = cancelled
            report["vault_writes_acknowledged_while_cut_off"] = sum(1 for _, acked, _, _ in load.acknowledged
                                                                     if cut < acked < crashed)
        return report
    finally:
        pair.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def _set_up(sm_url, tokens):
    admin = tokens.headers("admin")
    role = support.new_role("failover")
    policy = requests.post(f"{sm_url}{SM}/password-policy", headers=admin, timeout=30, json={
        "name": support.unique("policy"), "rotation_interval": "P30D", "password_min_length": 20,
        "password_max_length": 24, "use_special_characters": True, "use_lower_case": True, "use_upper_case": True,
        "use_numbers": True, "max_versions": 5, "number_of_retries": 1, "retry_interval": "PT5M",
        "max_concurrent_checkouts": 0, "max_checkout_duration": "PT1H", "rotate_on_release": False,
        "verify_after_rotation": False})
    policy.raise_for_status()
    host_id, accounts = str(uuid.uuid4()), ["acct0", "acct1"]
    requests.post(f"{sm_url}{SM}/host-secret/{host_id}", headers=admin, timeout=30, json={
        "metadata": {"address": "10.9.0.1", "protocol": "NONE", "password_policy_id": policy.json()["id"],
                     "access_roles": [role]},
        "accounts": [{"account": a, "initial_password": "Initial-" + secrets.token_urlsafe(12)} for a in accounts],
    }).raise_for_status()
    return host_id, role, accounts


def _wait_for_write_after(load: Load, crashed: float, seconds: float = 120) -> float | None:
    """When the first write sent after the crash was acknowledged (None: none within `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        served = [acked for sent, acked, _, _ in list(load.acknowledged) if sent > crashed]
        if served:
            return min(served)
        time.sleep(0.05)
    return None


def _lost_writes(load: Load, vault_url: str, tokens) -> list[str]:
    """Acknowledged Vault writes that the new primary does not have."""
    session, service, lost = requests.Session(), tokens.headers("service"), []
    for _, _, path, value in load.acknowledged:
        read = session.get(f"{vault_url}{VAULT}/secret/data/{path}", headers=service, timeout=30)
        if read.status_code != 200 or read.json()["data"] != {"value": value}:
            lost.append(path)
    return lost


def _report(synchronous, load, crashed, promoted, recovered, lost) -> dict:
    during = [(op, status, code) for at, op, status, code in load.answers if status != 200]
    statuses = collections.Counter(f"{status} {code}".strip() for _, status, code in during)
    by_status = collections.Counter((status, code) for _, status, code in during)
    return {
        "mode": "synchronous" if synchronous else "asynchronous",
        "requests": len(load.answers),
        "acknowledged_vault_writes": len(load.acknowledged),
        "not_200": dict(statuses),
        # A 500 (or no answer) is a failure in any mode; a 4xx after the switch means data the
        # clients relied on is gone (a checkout, an account's version): only async can do that.
        "server_errors_other_than_503": sum(n for (status, _), n in by_status.items() if status >= 500 and status != 503
                                            or status == 0),
        "client_errors": sum(n for (status, _), n in by_status.items() if 400 <= status < 500),
        "seconds_crash_to_promoted": round(promoted - crashed, 2),
        "seconds_crash_to_first_write_served": round(recovered - crashed, 2) if recovered else None,
        "acknowledged_writes_lost": len(lost),
    }


def main() -> int:
    reason = cluster.missing()
    if reason:
        print(f"failover test: {reason}", file=sys.stderr)
        return 1
    modes = [m.strip() for m in os.environ.get("FAILOVER_MODES", ",".join(MODES)).split(",") if m.strip()]
    seconds = float(os.environ.get("FAILOVER_LOAD_SECONDS", "4"))
    ok = True
    for mode in modes:
        report = run_mode(mode.startswith("sync"), seconds, cut_seconds=CUT_SECONDS if mode.endswith("-cut") else 0)
        report["mode"] = mode
        print(json.dumps(report), flush=True)
        held = report["server_errors_other_than_503"] == 0 and report["seconds_crash_to_first_write_served"] is not None
        if mode.startswith("sync"):  # asynchronous replication's loss is reported, not judged
            held = held and report["acknowledged_writes_lost"] == 0 and report["client_errors"] == 0
        print(f"{report['mode']}: {'HOLDS' if held else 'FAILS'}", flush=True)
        ok = ok and held
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
