"""libpq's messages (host, port, user, the server's words) stay out of the logs."""
from __future__ import annotations

import logging
import time

from tests import support


def test_pool_errors_are_logged_without_libpq_details(caplog, vault_config):
    from vault_service.app import create_app

    port = support.free_port()  # nothing listens: every connection attempt is refused
    app = create_app({**vault_config, "DATABASE_URL": f"postgresql://secretuser@127.0.0.1:{port}/secretdb",
                      "DB_POOL_TIMEOUT_SECONDS": 0.5})
    try:
        with caplog.at_level(logging.INFO, logger="psycopg"):
            assert app.test_client().get("/vault/api/v1/status").status_code == 503
            deadline = time.monotonic() + 10
            while not [r for r in caplog.records if r.name.startswith("psycopg")] and time.monotonic() < deadline:
                time.sleep(0.05)  # the pool logs from its own thread
            lines = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    finally:
        app.extensions["db"].close()
    assert any("error connecting" in line and "OperationalError" in line for line in lines), lines
    for line in lines:
        assert str(port) not in line and "secretuser" not in line and "secretdb" not in line, line
        assert "refused" not in line.lower() and "127.0.0.1" not in line, line
