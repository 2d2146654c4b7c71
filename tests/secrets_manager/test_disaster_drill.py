"""The disaster drill: under a mixed write load, back up both databases (the Secrets Manager's
first, then the Vault's), restore them into fresh databases, start the suite on them, and check
that every write acknowledged before its snapshot is there and readable, that the Secrets
Manager's accounts, checkouts and rotation states agree with the Vault's versions, and that the
restored suite serves (writes, reads, checkout and release, a worker pass)."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
import requests

from tests import support
from tests.secrets_manager.helpers import SM, VAULT, LiveSmApi

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("pg_dump"), reason="needs pg_dump and pg_restore")]

ACCOUNTS = 4


def _command(module: str, *args, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", module, *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class _MixedLoad(support.LoadThreads):
    """Three kinds of writers until stopped, each acknowledged write kept with its time:
    Vault versioned writes (a new secret each), Secrets Manager set-password (a new Vault version
    of an account, one thread per account so each account's order is known), checkouts."""

    def __init__(self, vault_url, sm_url, tokens, host_id, accounts, user_headers):
        super().__init__()
        self.vault, self.sm = vault_url + VAULT, sm_url + SM
        self.service, self.admin, self.user = tokens.headers("service"), tokens.headers("admin"), user_headers
        self.host_id, self.accounts = host_id, accounts
        self.vault_writes, self.passwords, self.checkouts, self.failures = [], {a: [] for a in accounts}, [], []
        self.thread(self._vault_writes)
        self.thread(self._checkouts)
        for account in accounts:
            self.thread(self._set_passwords, account)


    def _keep(self, response, record):
        if response.status_code == 200:
            record(time.time())
        else:
            self.failures.append((response.status_code, response.text[:200]))

    def _vault_writes(self):
        session = requests.Session()
        while self.running():
            path, value = f"drill/{uuid.uuid4().hex}", secrets.token_hex(8)
            response = session.post(f"{self.vault}/secret/data/{path}", json={"data": {"value": value}},
                                    headers=self.service, timeout=30)
            self._keep(response, lambda at: self.vault_writes.append((at, path, value)))

    def _set_passwords(self, account):
        session = requests.Session()
        while self.running():
            password = "Drill-" + secrets.token_urlsafe(12)
            response = session.post(f"{self.sm}/set-password/{self.host_id}/{account}", json={"password": password},
                                    headers=self.admin, timeout=30)
            self._keep(response, lambda at: self.passwords[account].append((at, password)))

    def _checkouts(self):
        session, n = requests.Session(), 0
        while self.running():
            n += 1
            account = self.accounts[n % len(self.accounts)]
            response = session.post(f"{self.sm}/secrets/checkouts", json={"path": f"hosts/{self.host_id}/{account}"},
                                    headers=self.user, timeout=30)
            self._keep(response, lambda at: self.checkouts.append((at, response.json()["items"][0]["id"])))
            if n % 2 and response.status_code == 200:  # half of them released again
                checkout_id = response.json()["items"][0]["id"]
                self._keep(session.post(f"{self.sm}/secrets/checkouts/{checkout_id}/release", headers=self.user,
                                        timeout=30), lambda at: None)


def test_disaster_drill_backup_under_load_restore_and_serve(db_server, data_dir, tokens, master_keys, token_url,
                                                            sm_client_secret, tmp_path):
    role = support.new_role("drill")
    user = tokens.headers("user", roles=[role])
    with support.fresh_database(db_server, "drill_vault") as vault_db, \
            support.fresh_database(db_server, "drill_sm") as sm_db, \
            support.fresh_database(db_server, "drill_vault_restored") as vault_restored, \
            support.fresh_database(db_server, "drill_sm_restored") as sm_restored:

        def vault_env(url):
            return {k: str(v) for k, v in support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys,
                                                                   LOG_LEVEL="WARNING").items()}

        def sm_env(url, vault_url):
            return {k: str(v) for k, v in support.service_settings(
                data_dir, url, VAULT_URL=vault_url, SM_TOKEN_URL=token_url, SM_CLIENT_SECRET=sm_client_secret,
                LOG_LEVEL="WARNING").items()}

        # --- before the disaster: the suite under a mixed write load, backed up while it runs
        with support.gunicorn("vault_service.wsgi:app", vault_env(vault_db), workers=2,
                              health_path=f"{VAULT}/status") as vault_url, \
                support.gunicorn("secrets_manager_service.wsgi:app", sm_env(sm_db, vault_url), workers=2,
                                 health_path=f"{SM}/status") as sm_url:
            sm = LiveSmApi(sm_url, tokens)
            accounts = [f"acct{i}" for i in range(ACCOUNTS)]
            host_id = sm.host(sm.policy(max_versions=50), roles=[role],
                              accounts={a: "Initial-" + a for a in accounts + ["rotated"]})
            # A rotation queued before the disaster (no worker runs yet): the restored worker does it.
            assert sm.post(f"/rotate/{host_id}/rotated").status_code == 200
            with _MixedLoad(vault_url, sm_url, tokens, host_id, accounts, user) as load:
                while len(load.vault_writes) < 20 or len(load.checkouts) < 5:
                    time.sleep(0.1)
                sm_backup_started = time.time()
                sm_manifest = _command("secrets_manager_service.worker", "backup", str(tmp_path / "sm.backup"),
                                       env=sm_env(sm_db, vault_url))
                vault_backup_started = time.time()
                vault_manifest = _command("vault_service.cli", "backup", str(tmp_path / "vault.backup"),
                                          env=vault_env(vault_db))
                written_before = len(load.vault_writes)
                while len(load.vault_writes) < written_before + 10:  # the load goes on after the snapshot
                    time.sleep(0.1)
            assert load.failures == [], load.failures[:5]
        assert sm_manifest["counts"]["sm_checkouts"] >= 5 and vault_manifest["counts"]["vault_secrets"] >= 20

        # --- after: fresh databases, restored and verified by the commands themselves
        vault_report = _command("vault_service.cli", "restore", str(tmp_path / "vault.backup"), env=vault_env(vault_restored))
        assert vault_report["verified"] and vault_report["versions_failed"] == 0
        assert vault_report["versions_decrypted"] == vault_manifest["counts"]["vault_secret_versions"]

        with support.gunicorn("vault_service.wsgi:app", vault_env(vault_restored), workers=1,
                              health_path=f"{VAULT}/status") as vault_url:
            sm_report = _command("secrets_manager_service.worker", "restore", str(tmp_path / "sm.backup"),
                                 env=sm_env(sm_restored, vault_url))
            assert sm_report["verified"]
            with support.gunicorn("secrets_manager_service.wsgi:app", sm_env(sm_restored, vault_url), workers=1,
                                  health_path=f"{SM}/status") as sm_url:
                _every_acknowledged_write_is_there(load, vault_url, sm_restored, tokens, vault_backup_started,
                                                   sm_backup_started)
                _accounts_and_rotations_agree_with_the_vault(sm_restored, vault_url, tokens, host_id, load,
                                                             vault_backup_started)
                _the_restored_suite_serves(vault_url, sm_url, tokens, user, host_id, accounts,
                                           sm_env(sm_restored, vault_url))
                _a_privx_client_works_on_the_restored_suite(vault_url, sm_url, tokens, role, host_id, accounts,
                                                            load, vault_backup_started)


def _every_acknowledged_write_is_there(load, vault_url, sm_db, tokens, vault_started, sm_started):
    service, session = tokens.headers("service"), requests.Session()
    acknowledged = [(path, value) for at, path, value in load.vault_writes if at < vault_started]
    assert len(acknowledged) >= 20
    for path, value in acknowledged:
        read = session.get(f"{vault_url}{VAULT}/secret/data/{path}", headers=service, timeout=10)
        assert read.status_code == 200 and read.json()["data"] == {"value": value}, (path, read.text[:200])
    # Checkouts (live or released since: the API shows live ones only) are rows of the database.
    wanted = {checkout_id for at, checkout_id in load.checkouts if at < sm_started}
    with psycopg.connect(sm_db) as conn:
        found = {str(row[0]) for row in conn.execute("SELECT id FROM sm_checkouts WHERE id = ANY(%s::uuid[])",
                                                     (list(wanted),)).fetchall()}
    assert len(wanted) >= 5 and found == wanted


def _accounts_and_rotations_agree_with_the_vault(sm_db, vault_url, tokens, host_id, load, vault_started):
    """Every account's secret is in the Vault, holding the last password set before the Vault's
    snapshot or a later one; every rotation state's versions exist there."""
    service = tokens.headers("service")
    with psycopg.connect(sm_db) as conn:
        accounts = conn.execute("SELECT id, account FROM sm_accounts WHERE host_id = %s", (host_id,)).fetchall()
        states = conn.execute("SELECT account_id, previous_version, pending_version FROM sm_rotation_states").fetchall()
    assert len(accounts) == ACCOUNTS + 1
    by_id = {}
    for account_id, account in accounts:
        path = f"hosts/{host_id}/{account}"
        metadata = requests.get(f"{vault_url}{VAULT}/secret/metadata/{path}", headers=service, timeout=10)
        assert metadata.status_code == 200, (path, metadata.text[:200])
        versions = [v["version"] for v in metadata.json()["versions"]]
        by_id[account_id] = versions
        newest = requests.get(f"{vault_url}{VAULT}/secret/data/{path}", headers=service, timeout=10).json()["data"]
        set_in_order = ["Initial-" + account] + [password for _, password in load.passwords.get(account, [])]
        before = [password for at, password in load.passwords.get(account, []) if at < vault_started]
        if before:  # the newest in the restored Vault is that one or one set after it
            assert newest["password"] in set_in_order[set_in_order.index(before[-1]):], account
    for account_id, previous, pending in states:
        for version in (previous, pending):
            assert version is None or version in by_id[account_id], (account_id, version)


def _the_restored_suite_serves(vault_url, sm_url, tokens, user, host_id, accounts, worker_env):
    service = tokens.headers("service")
    path = f"after-restore/{uuid.uuid4().hex}"
    assert requests.post(f"{vault_url}{VAULT}/secret/data/{path}", json={"data": {"ok": True}}, headers=service,
                         timeout=10).status_code == 200
    assert requests.get(f"{vault_url}{VAULT}/secret/data/{path}", headers=service, timeout=10).json()["data"] == {"ok": True}
    checkout = requests.post(f"{sm_url}{SM}/secrets/checkouts", json={"path": f"hosts/{host_id}/{accounts[0]}"},
                             headers=user, timeout=10)
    assert checkout.status_code == 200 and checkout.json()["items"][0]["secrets"], checkout.text[:300]
    checkout_id = checkout.json()["items"][0]["id"]
    assert requests.post(f"{sm_url}{SM}/secrets/checkouts/{checkout_id}/release", headers=user,
                         timeout=10).status_code == 200
    done = subprocess.run([sys.executable, "-m", "secrets_manager_service.worker", "run", "--once"],
                          env={**os.environ, **worker_env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # The rotation queued before the backup was restored with it, and the restored worker did it.
    rotated = LiveSmApi(sm_url, tokens).account(host_id, "rotated")
    assert rotated["last_rotated"] and not rotated["last_error"], rotated
    newest = requests.get(f"{vault_url}{VAULT}/secret/data/hosts/{host_id}/rotated", headers=service, timeout=10)
    assert newest.json()["data"]["password"] != "Initial-rotated"


def _a_privx_client_works_on_the_restored_suite(vault_url, sm_url, tokens, role, host_id, accounts, load, vault_started):
    """The `secrets` command line (it speaks the API as the PrivX SDKs do) on the restored suite."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SECRETS_")}
    env.update(SECRETS_VAULT_URL=vault_url, SECRETS_SM_URL=sm_url,
               SECRETS_TOKEN=tokens("admin service user", roles=[role]))

    def secrets_cli(*args):
        done = subprocess.run([sys.executable, "-m", "common.cli.main", *args], env=env, capture_output=True, text=True,
                              timeout=60, input="")
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    path, value = next((path, value) for at, path, value in load.vault_writes if at < vault_started)
    assert json.loads(secrets_cli("-o", "json", "versions", "get", path, "1"))["data"] == {"value": value}
    name = f"after-restore/cli-{uuid.uuid4().hex[:8]}"
    secrets_cli("put", name, "password=from-the-cli", "--read-role", role["id"], "--write-role", role["id"])
    assert secrets_cli("get", name, "--field", "password") == "from-the-cli"
    assert secrets_cli("checkout", f"hosts/{host_id}/{accounts[1]}", "--field", "password")
