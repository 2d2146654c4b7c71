"""`vault-admin rewrap`: from environment keys into a SoftHSM2 token, killed halfway and resumed,
while a Vault under gunicorn serves reads and writes; then the old key is removed."""
from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import requests

from tests import support
from tests.vault.helpers import V1, unique

pytestmark = pytest.mark.slow

SECRETS = 120


def _rewrap(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vault_service.cli", "rewrap", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _by_key(url) -> dict:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT dek_key_id, count(*) FROM vault_secrets GROUP BY 1").fetchall())


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited in vain for {what}")
        time.sleep(0.1)


class _Load(support.LoadThreads):
    """Threads writing new versions, creating secrets and reading them back through HTTP until
    stopped; every answer that is not a 2xx is kept."""

    def __init__(self, base, headers, paths):
        super().__init__()
        self.base, self.headers, self.paths = base, headers, paths
        self.failures, self.done, self.created = [], 0, []
        for worker in range(3):
            self.thread(self._run, worker)


    def _run(self, worker: int):
        session, n = requests.Session(), 0
        while self.running():
            n += 1
            path = self.paths[(worker * 7 + n) % len(self.paths)]
            if n % 3 == 0:
                answer = session.post(f"{self.base}{V1}/secret/data/{path}", json={"data": {"n": n}},
                                      headers=self.headers, timeout=30)
            elif n % 10 == 1:
                path = unique("during")
                answer = session.post(f"{self.base}{V1}/secret/data/{path}", json={"data": {"new": True}},
                                      headers=self.headers, timeout=30)
                self.created.append(path)
            else:
                answer = session.get(f"{self.base}{V1}/secret/data/{path}", headers=self.headers, timeout=30)
            self.done += 1
            if answer.status_code >= 300:
                self.failures.append((answer.status_code, answer.text[:200]))


def test_rewrap_into_the_hsm_resumes_after_a_kill_under_load_and_the_old_key_can_go(
        db_server, data_dir, tokens, softhsm_token, vault_config):
    from vault_service.app import create_app

    old_key = "env-" + secrets.token_hex(3)
    old_spec = f"{old_key}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"
    label = unique("hsm-master")
    assert softhsm_token.create_key(label, {k: str(v) for k, v in vault_config.items()}) == f"pkcs11:{label}"
    svc = tokens.headers("service")

    with support.fresh_database(db_server, "vault_rewrap") as url:
        base_env = {k: str(v) for k, v in support.service_settings(data_dir, url, LOG_LEVEL="WARNING").items()}
        # Before: the master key is in the environment only.
        before = create_app({**base_env, "VAULT_MASTER_KEYS": old_spec})
        client = before.test_client()
        paths = [unique("rw") for _ in range(SECRETS)]
        for i, path in enumerate(paths):
            assert client.post(f"{V1}/secret/data/{path}", json={"data": {"i": i}}, headers=svc).status_code == 200
        before.extensions["db"].close()
        assert _by_key(url) == {old_key: SECRETS}

        # Both configured, the HSM's key active (the default once VAULT_PKCS11_MODULE is set).
        both = {**base_env, **softhsm_token.env(), **softhsm_token.settings(label), "VAULT_MASTER_KEYS": old_spec}

        # A writer holds the last 40 secrets (in id order): the run moves the others, and keeps
        # sweeping for those (SKIP LOCKED: it never waits on a writer) - killed there.
        with psycopg.connect(url) as holder:
            held = holder.execute("SELECT id FROM vault_secrets ORDER BY id DESC LIMIT 40 FOR UPDATE").fetchall()
            first = _rewrap(both, "--batch-size", "16")
            _wait_for(lambda: _by_key(url).get(f"pkcs11:{label}") == SECRETS - len(held), "the unheld secrets to move")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            holder.rollback()
        assert _by_key(url) == {old_key: 40, f"pkcs11:{label}": SECRETS - 40}

        # Resumed while a Vault (both keys, HSM active) serves reads, new versions and new secrets.
        with support.gunicorn("vault_service.wsgi:app", both, workers=2, health_path=f"{V1}/status") as base:
            with _Load(base, svc, paths) as load:
                _wait_for(lambda: load.done >= 30, "the load to start")
                second = _rewrap(both, "--batch-size", "16")
                out, err = second.communicate(timeout=120)
                _wait_for(lambda: load.done >= 60, "load after the run")
            assert second.returncode == 0, err
            result = json.loads(out.strip().splitlines()[-1])
            assert result["remaining"] == 0 and result["rewrapped"] == 40 and result["active_key_id"] == f"pkcs11:{label}"
            assert "rewrap: [" in err and "40/40 data keys (100%)" in err  # the progress bar, on stderr
            assert load.failures == [] and load.done >= 60, load.failures[:5]
        assert set(_by_key(url)) == {f"pkcs11:{label}"}

        # After: the environment key removed, every secret (and those made during the run) decrypts.
        after = create_app({**base_env, **softhsm_token.settings(label)})
        try:
            client = after.test_client()
            for path in paths + load.created:
                read = client.get(f"{V1}/secret/data/{path}", headers=svc)
                assert read.status_code == 200, (path, read.json)
        finally:
            after.extensions["keyring"].close()
            after.extensions["db"].close()
