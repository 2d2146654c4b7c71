"""The database goes away and comes back: clean 503s, then recovery without a restart."""
from __future__ import annotations

import time

import psycopg
import pytest
import requests

from tests import support
from tests.vault.helpers import V1, unique

pytestmark = pytest.mark.slow


def _url_through(link: support.TcpLink, url: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url)
    params.update(host="127.0.0.1", port=str(link.port))
    return psycopg.conninfo.make_conninfo(**params)


def test_database_down_gives_503_and_recovers(vault_db, vault_config, tokens):
    params = psycopg.conninfo.conninfo_to_dict(vault_db)
    if not params.get("host", "").startswith("127."):
        pytest.skip("needs a TCP database server to cut (the embedded one listens on a socket)")
    link = support.TcpLink("127.0.0.1", int(params.get("port", 5432))).start()
    env = {key: str(value) for key, value in vault_config.items()}
    env["DATABASE_URL"] = _url_through(link, vault_db)
    svc = {"Authorization": f"Bearer {tokens('service')}"}
    path = unique("outage")
    with support.gunicorn("vault_service.wsgi:app", env, workers=2, health_path=f"{V1}/status") as base:
        assert requests.post(f"{base}{V1}/secret/data/{path}", json={"data": {"v": 1}}, headers=svc, timeout=10).status_code == 200

        link.cut()
        for _ in range(4):  # both workers, stale and fresh connections
            response = requests.post(f"{base}{V1}/secret/data/{path}", json={"data": {"v": 2}}, headers=svc, timeout=15)
            assert response.status_code == 503
            assert response.json()["error_code"] == "DATABASE_ERROR"
        status = requests.get(f"{base}{V1}/status", timeout=15)
        assert status.status_code == 503 and status.json()["status"] == "ERROR"

        link.restore()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if requests.get(f"{base}{V1}/status", timeout=15).status_code == 200:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the service did not recover")
        for _ in range(4):
            read = requests.get(f"{base}{V1}/secret/data/{path}", headers=svc, timeout=10)
            assert read.status_code == 200 and read.json()["data"] == {"v": 1}, read.text
