"""The failover in the test suite: synchronous replication, the standby cut off from the primary
(and the commits waiting for it cancelled, which PostgreSQL reports as committed), then the
primary killed under load and the standby promoted (`make failover-test` runs every mode,
asynchronous too)."""
from __future__ import annotations

import pytest

from tests.failover import cluster, run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(cluster.missing()), reason=cluster.missing() or "")]


def test_a_promoted_synchronous_standby_has_every_acknowledged_write_and_clients_saw_only_503s():
    report = run.run_mode(True, 2.0, cut_seconds=run.CUT_SECONDS)
    assert report["acknowledged_writes_lost"] == 0, report
    assert report["commits_waiting_for_the_standby_cancelled"] > 0, report
    assert report["server_errors_other_than_503"] == 0 and report["client_errors"] == 0, report
    assert report["seconds_crash_to_first_write_served"] is not None, report
    assert report["acknowledged_vault_writes"] > 0 and report["not_200"].get("503 DATABASE_ERROR", 0) > 0, report
