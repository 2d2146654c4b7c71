"""Write-ahead rotation: a rotated password is never lost, whatever fails at whichever step.

Each scenario rotates a real PostgreSQL role (a server that checks passwords) with a real
worker process, which reaches the real Vault (gunicorn) through a TCP link the test can cut.
The worker is stopped at an exact step by its test checkpoint (SM_WORKER_PAUSE_AT, off by
default: accounts.rotations.checkpoint); there the test either cuts the Vault for 60 s and lets
the worker go on, or SIGKILLs it and starts another. Afterwards the Vault's current password
logs in to the target and the other does not, nothing is lost, and last_error tells the truth.
The scenarios of each kind run at the same time (each on its own database), so the 60-s cuts
cost about one minute together.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg import sql

from secrets_manager_service.app import create_app
from secrets_manager_service.accounts import rotations as rotation
from tests import support
from tests.secrets_manager.helpers import SmApi
from tests.sm_rotation import pg_target

pytestmark = pytest.mark.slow

CUT_SECONDS = 60
STEPS = rotation.CHECKPOINTS  # before_pending_write, before_target_change, target_accepted, before_mark_current


def _wait_for(what: str, predicate, timeout: float = 90.0, pause: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


class Scenario:
    """One account on its own Secrets Manager database, a worker process, a cuttable Vault link."""

    def __init__(self, tmp: Path, step: str, *, settings: dict, vault_url: str, tokens, target):
        self.tmp, self.step, self.target, self.tokens = tmp, step, target, tokens
        self.settings = settings
        self.link = support.TcpLink("127.0.0.1", int(vault_url.rsplit(":", 1)[1])).start()
        # The API (tests' and users' side) reaches the Vault directly: only the worker's link is cut.
        self.app = create_app({**settings, "VAULT_URL": vault_url})
        self.sm = SmApi(self.app.test_client(), tokens)
        self.vault_url = vault_url
        self.worker = None

    # --- setup and the worker -------------------------------------------------

    def register(self):
        self.initial = "initial-" + secrets.token_urlsafe(12)
        self.role = self.target["new_role"](self.initial)
        self.user_role = support.new_role("dba")
        policy = self.sm.policy(number_of_retries=1, retry_interval="PT1S", verify_after_rotation=True,
                                max_versions=3)
        self.host_id = self.sm.host(policy, protocol="POSTGRESQL", address=self.target["host"],
                                    port=self.target["port"], accounts={self.role: self.initial},
                                    roles=[self.user_role])
        self.path = f"hosts/{self.host_id}/{self.role}"
        assert self.sm.post(f"/rotate/{self.host_id}/{self.role}").status_code == 200

    def start_worker(self, *, pause: bool):
        # No metrics listener, whatever the environment says: the scenarios' workers run side by
        # side, and one SM_WORKER_METRICS_PORT for all (exported for `make run`) let the first
        # take the port and every other die at its start, before its checkpoint.
        env = {**os.environ, **{k: str(v) for k, v in self.settings.items() if v is not None},
               "VAULT_URL": f"http://127.0.0.1:{self.link.port}", "SM_WORKER_INTERVAL_SECONDS": "0.5",
               "SM_WORKER_METRICS_PORT": "0"}
        if pause:
            env.update(SM_WORKER_PAUSE_AT=self.step, SM_WORKER_PAUSE_DIR=str(self.tmp))
        # Its output goes to a file the failure message quotes: a worker that dies says why.
        self.worker_log = self.tmp / f"worker-{time.monotonic_ns()}.log"
        with open(self.worker_log, "wb") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "secrets_manager_service.worker", "run"], env=env,
                                           stdout=log, stderr=subprocess.STDOUT)

    def wait_at_step(self):
        _wait_for(f"the worker to reach {self.step}",
                  lambda: (self.tmp / f"{self.step}.reached").exists() or self.worker.poll() is not None)
        assert self.worker.poll() is None, (f"the worker exited ({self.worker.returncode}) before its checkpoint:\n"
                                            f"{self.worker_log.read_text(errors='replace')[-3000:]}")

    def go_on(self):
        (self.tmp / f"{self.step}.go").touch()

    def stop(self):
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(timeout=15)
        self.link.cut()
        self.app.extensions["db"].close()

    # --- what the services and the target say ----------------------------------

    def sql(self, query: str, *params):
        with psycopg.connect(self.settings["DATABASE_URL"]) as conn:
            return conn.execute(query, params).fetchone()

    def state(self):
        return self.sql("""SELECT s.step FROM sm_rotation_states s JOIN sm_accounts a ON a.id = s.account_id
                            WHERE a.host_id = %s""", self.host_id)

    def account(self) -> dict:
        return self.sm.account(self.host_id, self.role)

    def vault_versions(self) -> tuple[int, dict[int, str], list[dict]]:
        """(the version the Vault marks current, the passwords of its live versions, every version)."""
        headers = self.tokens.headers("service")
        base = f"{self.vault_url}/vault/api/v1/secret"
        meta = requests.get(f"{base}/metadata/{self.path}", headers=headers, timeout=10).json()
        live = {}
        for version in meta["versions"]:
            response = requests.get(f"{base}/data/{self.path}", params={"version": version["version"]},
                                    headers=headers, timeout=10)
            if response.status_code == 200:
                live[version["version"]] = response.json()["data"]["password"]
        return int(meta["metadata"]["custom_metadata"]["current_version"]), live, meta["versions"]

    def logs_in(self, password: str) -> bool:
        return pg_target.can_login(self.target["host"], self.target["port"], self.role, password)

    def checkout_password(self) -> str:
        """What a user who checks out now is handed first."""
        user = self.tokens.headers("user", roles=[self.user_role])
        checkout = self.sm.checkout(self.path, user)
        self.sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user)
        return checkout["secrets"][0]["secret"]

    def wait_until_rotated(self, timeout: float = 90.0):
        _wait_for("the rotation to be reconciled",
                  lambda: self.state() is None and self.account()["last_rotated"] is not None, timeout)

    def assert_settled(self) -> dict:
        """The Vault's current password logs in, the other does not; nothing is lost."""
        current, live, versions = self.vault_versions()
        assert current in live, (current, live)
        new_password = live[current]
        assert new_password != self.initial
        assert self.logs_in(new_password), "the Vault's current password must log in"
        assert not self.logs_in(self.initial), "the previous password must not log in any more"
        # Nothing above the current version is left live (a pending one that never worked is destroyed).
        assert max(live) == current, versions
        assert self.checkout_password() == new_password
        account = self.account()
        assert account["last_rotated"] is not None
        for text in (str(account), str(self.sm.get(f"/host-secret/{self.host_id}").get_json())):
            assert new_password not in text and self.initial not in text
        return account


@pytest.fixture()
def scenarios(tmp_path, db_server, data_dir, vault_url, token_url, sm_client_secret, tokens, target):
    made = []

    def make(step: str) -> Scenario:
        database = support.create_database(db_server, "sm_wal")
        # Small pools: six processes share the machine's PostgreSQL with every other test (a
        # worker needs two: its claim stays open while each step commits on its own).
        settings = support.service_settings(data_dir, database, SM_TOKEN_URL=token_url,
                                            SM_CLIENT_SECRET=sm_client_secret, LOG_LEVEL="WARNING",
                                            DB_POOL_MIN_SIZE=1, DB_POOL_MAX_SIZE=2)
        folder = tmp_path / step
        folder.mkdir()
        scenario = Scenario(folder, step, settings=settings, vault_url=vault_url, tokens=tokens, target=target)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        scenario.stop()
        support.drop_database(db_server, scenario.settings["DATABASE_URL"])


def _all_at_once(function, scenarios):
    with ThreadPoolExecutor(len(scenarios)) as pool:
        for future in [pool.submit(function, s) for s in scenarios]:
            future.result()


def test_the_vault_cut_for_60_seconds_at_each_step(scenarios):
    def run(s: Scenario):
        s.register()
        s.start_worker(pause=True)
        s.wait_at_step()
        s.link.cut()
        cut_at = time.monotonic()
        s.go_on()
        # While the Vault is away, the account says what really happened, and a checkout (through
        # the API, which still reaches the Vault) hands out the password the target accepts.
        account = _wait_for("the failure to be recorded", lambda: (a := s.account())["last_error"] and a)
        details = account["last_error_details"]
        if s.step == "before_pending_write":
            assert details.startswith(rotation.VAULT_DOWN), details
            assert s.logs_in(s.initial)
        else:
            assert details.startswith(rotation.NOT_MADE_CURRENT), details
            assert not s.logs_in(s.initial)
            assert s.state() == ("changed",)
        assert account["last_rotated"] is None
        assert s.logs_in(s.checkout_password())
        print(f"[cut {s.step}] during: {details}")
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        assert s.worker.poll() is None
        s.link.restore()
        s.wait_until_rotated()
        account = s.assert_settled()
        # It happened, and it is said: when, and how it ended.
        assert account["last_error"] is not None
        assert "interrupted" in account["last_error_details"], account["last_error_details"]
        print(f"[cut {s.step}] after: last_error={account['last_error']} {account['last_error_details']}")

    _all_at_once(run, [scenarios(step) for step in STEPS])


def test_the_worker_killed_at_each_step(scenarios):
    def run(s: Scenario):
        s.register()
        s.start_worker(pause=True)
        s.wait_at_step()
        s.worker.send_signal(signal.SIGKILL)
        s.worker.wait(timeout=15)
        # The step is committed: the state says where the rotation stood.
        expected = {"before_pending_write": "storing", "before_target_change": "pending"}.get(s.step, "changed")
        assert s.state() == (expected,)
        assert s.logs_in(s.initial) == (s.step in ("before_pending_write", "before_target_change"))
        assert s.logs_in(s.checkout_password())  # during the rotation: the password the target accepts
        s.start_worker(pause=False)
        s.wait_until_rotated()
        account = s.assert_settled()
        if s.step == "before_target_change":
            # The target never got the pending password: the next pass found it kept the previous one,
            # recorded that, destroyed the pending version and rotated again (that success is the
            # account's last word; the trail keeps the rest).
            failures = s.sql("""SELECT count(*) FROM audit_events WHERE action = 'password.rotate'
                                 AND outcome = 'failed' AND details->>'error' LIKE %s""",
                             "%interrupted%the target kept the previous password%")
            assert failures == (1,)
            assert [v["destroyed"] for v in s.vault_versions()[2] if v["version"] == 2] == [True]
        else:
            assert account["last_error"] is not None
            assert "interrupted" in account["last_error_details"], account["last_error_details"]
        print(f"[kill {s.step}] after: last_error={account['last_error']} {account['last_error_details']}")

    _all_at_once(run, [scenarios(step) for step in STEPS])


def test_set_password_ends_an_unfinished_rotation(scenarios, target):
    """The way out the details point to when nothing else helps: the admin sets the target's
    password and stores it with set-password; the unfinished rotation is over, its pending
    version destroyed, and the queued rotation then starts from the admin's password."""
    s = scenarios("target_accepted")
    s.register()
    s.start_worker(pause=True)
    s.wait_at_step()
    s.worker.send_signal(signal.SIGKILL)
    s.worker.wait(timeout=15)
    assert s.state() == ("changed",)
    with pg_target.connect(target["host"], target["port"], target["superuser"], target["superpassword"]) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD 'set-by-the-admin'").format(sql.Identifier(s.role)))
    assert s.sm.post(f"/set-password/{s.host_id}/{s.role}", json={"password": "set-by-the-admin"}).status_code == 200
    assert s.state() is None
    current, live, versions = s.vault_versions()
    assert live[current] == "set-by-the-admin" and max(live) == current
    assert [v["destroyed"] for v in versions if v["version"] == 2] == [True]  # the pending one
    assert s.checkout_password() == "set-by-the-admin"
    s.initial = "set-by-the-admin"  # what the next rotation must replace
    s.start_worker(pause=False)
    s.wait_until_rotated()
    s.assert_settled()


def test_the_workers_take_no_metrics_port_from_the_environment(scenarios, monkeypatch):
    """A SM_WORKER_METRICS_PORT in the environment (exported for `make run`; the fresh-machine
    test's `make test` had make run's) reaches no scenario's worker: it would give the workers
    that run side by side one port, and all but the first would exit before their checkpoint."""
    port = support.free_port()
    monkeypatch.setenv("SM_WORKER_METRICS_PORT", str(port))
    scenario = scenarios(STEPS[0])
    scenario.register()
    scenario.start_worker(pause=True)
    scenario.wait_at_step()  # the worker is past its start, where it would have opened the port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
