"""The database goes away under /v1: 503 {"errors": ["storage unavailable"]}, a sealed
health and seal status, nothing written, and recovery without a restart."""
from __future__ import annotations

import time

import pytest
import requests

from tests import support
from tests.support import unique

pytestmark = pytest.mark.slow


def test_database_outage(kv_db, kv_env, service_token):
    link, through_link = support.cuttable_database(kv_db)
    env = {**kv_env, "DATABASE_URL": through_link}
    headers = {"X-Vault-Token": service_token}
    path = unique("outage")
    with support.gunicorn("vault_service.wsgi:app", env, workers=2, health_path="/v1/sys/health") as base:
        url = f"{base}/v1/secret/data/{path}"
        assert requests.post(url, json={"data": {"v": 1}}, headers=headers, timeout=10).status_code == 200

        link.cut()
        for _ in range(4):  # both workers, stale and fresh connections
            for response in (requests.post(url, json={"data": {"v": 2}}, headers=headers, timeout=15),
                             requests.get(url, headers=headers, timeout=15)):
                assert response.status_code == 503, response.text
                assert response.headers["Content-Type"] == "application/json"
                assert response.json() == {"errors": ["storage unavailable"]}
        health = requests.get(f"{base}/v1/sys/health", timeout=15)
        assert health.status_code == 503 and health.json()["sealed"] is True
        assert requests.get(f"{base}/v1/sys/health?sealedcode=200", timeout=15).status_code == 200
        assert requests.get(f"{base}/v1/sys/seal-status", timeout=15).json()["sealed"] is True

        link.restore()
        # Each worker leaves its outage state on its own, on the first request it gets after the
        # database is back (its probe may take longer than the request waits on a busy machine,
        # so that one request can still be a clean 503): recovered means 8 reads in a row, which
        # both workers serve, succeed without a restart.
        deadline = time.monotonic() + 30
        served_in_a_row = 0
        while served_in_a_row < 8:
            if time.monotonic() > deadline:
                pytest.fail("the service did not recover")
            response = requests.get(url, headers=headers, timeout=15)
            if response.status_code != 200:
                assert response.status_code == 503 and response.json() == {"errors": ["storage unavailable"]}, response.text
                served_in_a_row = 0
                time.sleep(0.5)
                continue
            served_in_a_row += 1
            read = response.json()["data"]
            assert read["data"] == {"v": 1} and read["metadata"]["version"] == 1  # the failed write left nothing
        assert requests.get(f"{base}/v1/sys/health", timeout=15).status_code == 200
