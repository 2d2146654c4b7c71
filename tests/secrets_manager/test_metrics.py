"""Checkout and rotation counters reach /metrics; the worker can serve its own."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from tests import support

pytestmark = pytest.mark.slow


def _sample(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_checkout_and_rotation_counters(sm, tokens):
    role = support.new_role()
    user = tokens.headers("user", roles=[role])
    host_id = sm.host(sm.policy(rotate_on_release=True, max_concurrent_checkouts=1), accounts={"root": "metric-pw"},
                      roles=[role])
    before = sm.app.test_client().get("/metrics").get_data(as_text=True)
    checkout = sm.checkout(f"hosts/{host_id}/root", user)
    assert sm.post("/secrets/checkouts", headers=tokens.headers("user", roles=[role]),
                   json={"path": f"hosts/{host_id}/root"}).status_code == 409
    sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user)
    sm.run_worker()
    after = sm.app.test_client().get("/metrics").get_data(as_text=True)
    name = "secrets_manager_checkouts_total"
    for event, outcome in (("create", "success"), ("create", "conflict"), ("release", "success")):
        assert _sample(after, name, event=event, outcome=outcome) == _sample(before, name, event=event, outcome=outcome) + 1
    rotations = "secrets_manager_rotations_total"
    assert _sample(after, rotations, protocol="NONE", outcome="success") >= \
        _sample(before, rotations, protocol="NONE", outcome="success") + 1


def test_worker_serves_its_own_metrics(sm_config):
    port = support.free_port()
    env = {**os.environ, **{k: str(v) for k, v in sm_config.items() if v is not None},
           "SM_WORKER_METRICS_PORT": str(port), "SM_WORKER_INTERVAL_SECONDS": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "secrets_manager_service.worker", "run"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        support.wait_until_up(f"http://127.0.0.1:{port}/metrics", process)
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "secrets_manager_rotations_total" in text and "secrets_manager_checkouts_total" in text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
