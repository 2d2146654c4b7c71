"""The audit trail of the Secrets Manager: checkouts, their reads, releases, rotations, host changes."""
from __future__ import annotations

import json
import time

import pytest

from tests import support

pytestmark = pytest.mark.slow


def _events(sm, target: str) -> list[tuple[str, str, str]]:
    items = sm.get("/audit-events", query={"target": target, "sortdir": "asc"}).get_json()["items"]
    return [(e["action"], e["outcome"], e["principal"]) for e in items]


def test_an_accounts_story_is_in_the_audit_trail(sm, tokens):
    role = support.new_role()
    user_id = "00000000-0000-4000-8000-" + support.unique("")[-12:]
    user = tokens.headers("user", roles=[role], sub=user_id)
    stranger = tokens.headers("user")
    host_id = sm.host(sm.policy(rotate_on_release=True, max_concurrent_checkouts=1), accounts={"root": "audited-pw"},
                      roles=[role])
    path = f"hosts/{host_id}/root"
    checkout = sm.checkout(path, user)
    sm.get(f"/secrets/checkouts/{checkout['id']}", headers=user)
    assert sm.post("/secrets/checkouts", headers=tokens.headers("user", roles=[role]), json={"path": path}).status_code == 409
    assert sm.post("/secrets/checkouts", headers=stranger, json={"path": path}).status_code == 404
    sm.post(f"/secrets/checkouts/{checkout['id']}/release", headers=user)
    sm.run_worker()
    sm.post(f"/set-password/{host_id}/root", json={"password": "set-by-hand"})

    events = _events(sm, path)
    assert [(action, outcome) for action, outcome, _ in events] == [
        ("checkout.create", "success"),
        ("checkout.read", "success"),
        ("checkout.create", "denied"),
        ("checkout.create", "not_found"),
        ("checkout.release", "success"),
        ("password.rotate", "success"),
        ("password.set", "success"),
    ]
    assert events[0][2] == user_id and events[5][2] == "secrets-manager-worker"
    host_events = _events(sm, f"hosts/{host_id}")
    assert host_events[0][:2] == ("host.save", "success")
    everything = json.dumps(sm.get("/audit-events", query={"limit": 100}).get_json())
    assert "audited-pw" not in everything and "set-by-hand" not in everything


def test_expiry_and_failed_rotations_are_audited(sm, tokens):
    role = support.new_role()
    host_id = sm.host(sm.policy(max_checkout_duration="PT1S", number_of_retries=0), roles=[role], protocol="POSTGRESQL",
                      address="127.0.0.1", port=support.free_port(), accounts={"app": "pw"})
    path = f"hosts/{host_id}/app"
    sm.checkout(path, tokens.headers("user", roles=[role]))
    sm.post(f"/rotate/{host_id}/app")
    time.sleep(1.2)
    sm.run_worker()
    actions = [(a, o) for a, o, _ in _events(sm, path)]
    assert ("checkout.expire", "success") in actions
    assert ("rotation.request", "success") in actions
    assert ("password.rotate", "failed") in actions
    assert sm.get("/audit-events", headers=sm.manager).status_code == 403
