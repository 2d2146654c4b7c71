"""`make run` destroys due versions on a timer, as the CronJob does in a cluster: its
`vault-admin destroy-due --every 60` runs beside the services, against the Vault's database.
(What a pass destroys, and that a crash halfway destroys nothing by halves:
tests/vault/test_destroy_due.py.)"""
from __future__ import annotations

import json
import time

import pytest

from tests.e2e.suite import descendants

pytestmark = pytest.mark.slow


def test_the_suite_runs_destroy_due_passes_against_the_vaults_database(suite, suite_data):
    log = suite_data / "logs" / "destroy-due.log"
    deadline = time.monotonic() + 60
    passes = []
    while not passes and time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        passes = [json.loads(line) for line in text.splitlines() if line.startswith('{"destroyed"')]
        time.sleep(0.2)
    assert passes, f"no destroy-due pass in {log}: {log.read_text() if log.exists() else 'no log'}"
    assert all(isinstance(p["destroyed"], int) for p in passes)
    assert "Traceback" not in log.read_text()
    assert any("destroy-due" in _command_line(pid) for pid in descendants(suite.process.pid)), (
        "the destroy-due timer is not running under the launcher")


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""
