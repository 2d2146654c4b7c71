"""The database goes away and comes back: clean 503s, then recovery without a restart."""
from __future__ import annotations

import contextlib
import time

import pytest
import requests

from tests import support
from tests.vault.helpers import V1, unique

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _vault_behind_a_link(vault_db, vault_config, tokens, *, workers: int):
    """(base URL, link, service headers, a secret path holding {"v": 1}) of a Vault under
    gunicorn whose database connections all go through a TcpLink the test controls."""
    link, through_link = support.cuttable_database(vault_db)
    env = {key: str(value) for key, value in vault_config.items()}
    env["DATABASE_URL"] = through_link
    svc = {"Authorization": f"Bearer {tokens('service')}"}
    path = unique("outage")
    with support.gunicorn("vault_service.wsgi:app", env, workers=workers, health_path=f"{V1}/status") as base:
        assert requests.post(f"{base}{V1}/secret/data/{path}", json={"data": {"v": 1}}, headers=svc, timeout=10).status_code == 200
        yield base, link, svc, path


def test_database_down_gives_503_and_recovers(vault_db, vault_config, tokens):
    with _vault_behind_a_link(vault_db, vault_config, tokens, workers=2) as (base, link, svc, path):

        link.cut()
        for _ in range(4):  # both workers, stale and fresh connections
            response = requests.post(f"{base}{V1}/secret/data/{path}", json={"data": {"v": 2}}, headers=svc, timeout=15)
            assert response.status_code == 503
            assert response.json()["error_code"] == "DATABASE_ERROR"
        status = requests.get(f"{base}{V1}/status", timeout=15)
        assert status.status_code == 503 and status.json()["status"] == "ERROR"

        link.restore()
        # Each worker finds the database back by its own probe, so one worker may still answer
        # 503 for a moment after the other serves again: wait until four reads in a row succeed.
        deadline, in_a_row = time.monotonic() + 30, 0
        while in_a_row < 4:
            if time.monotonic() > deadline:
                pytest.fail("the service did not recover")
            read = requests.get(f"{base}{V1}/secret/data/{path}", headers=svc, timeout=10)
            if read.status_code == 200:
                assert read.json()["data"] == {"v": 1}, read.text
                in_a_row += 1
            else:
                assert read.status_code == 503, read.text
                in_a_row = 0
                time.sleep(0.5)


def test_while_the_database_is_known_down_requests_fail_fast_and_one_probe_finds_it_back(vault_db, vault_config, tokens):
    """Counted, not timed: once the outage is known, 40 requests cost at most a few connection
    attempts (one probe at a time), where each would otherwise wait the pool timeout while the
    pool kept retrying. Then the database returns and the service follows without a restart."""
    with _vault_behind_a_link(vault_db, vault_config, tokens, workers=1) as (base, link, svc, path):
        link.reject()
        # The first request finds out (it waits for the pool like any request before the outage is known).
        first = requests.get(f"{base}{V1}/secret/data/{path}", headers=svc, timeout=30)
        assert first.status_code == 503 and first.json()["error_code"] == "DATABASE_ERROR"

        attempts_before = link.attempts
        answers = [requests.get(f"{base}{V1}/secret/data/{path}" if i % 4 else f"{base}{V1}/status",
                                headers=svc, timeout=30) for i in range(40)]
        assert [a.status_code for a in answers] == [503] * 40
        assert all(a.json().get("error_code") == "DATABASE_ERROR" or a.json().get("status") == "ERROR" for a in answers)
        assert link.attempts - attempts_before <= 6, link.attempts - attempts_before

        link.restore()
        deadline = time.monotonic() + 30
        while requests.get(f"{base}{V1}/status", timeout=30).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("the service did not recover")
            time.sleep(0.2)
        read = requests.get(f"{base}{V1}/secret/data/{path}", headers=svc, timeout=10)
        assert read.status_code == 200 and read.json()["data"] == {"v": 1}, read.text
