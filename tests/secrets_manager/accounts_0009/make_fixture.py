"""Makes `sm_0009.sql` and `vault_0009.json`: data written by the code of a commit whose schema
ends at migration 0009, through its real API and worker, for test_accounts_migration.

    git worktree add /tmp/at-0009 <commit>      # e.g. 5cf725d, the last commit before 0012 (the one account model)
    cp -r tests/secrets_manager/accounts_0009 /tmp/at-0009/tests/secrets_manager/
    cd /tmp/at-0009 && .venv/bin/python -m pytest -q -p no:cacheprovider \
        tests/secrets_manager/accounts_0009/make_fixture.py      # (needs slapd, as the directory tests do)
    cp tests/secrets_manager/accounts_0009/{sm_0009.sql,vault_0009.json} <this folder>

(the file is not collected by a normal run: its name is not test_*). What it makes, by real
requests and worker passes (hosts on the NONE driver, directory accounts on a private slapd):
host checkouts live (two holders of one account), released and expired; a queued release
rotation and a queued manual one; a host rotation stopped by the worker's test checkpoint
after the target took the new password (state `changed`) and a directory rotation stopped
before the directory was changed (state `pending`), both left as a killed worker leaves
them; directory checkouts live and released; rotation history. The SM database is dumped
(data only, pg_dump) while the two rotations are stopped; the Vault's secrets of every
account (every version, the current mark) go to the JSON file, since the Vault keeps its
data encrypted under the test session's own keys.
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import requests

from common.devtools import slapd
from secrets_manager_service.app import create_app
from secrets_manager_service.rotation import service as rotation
from tests.secrets_manager.accounts_0009 import people
from tests.secrets_manager.helpers import VAULT
from tests.secrets_manager.target_domains.helpers import TD, create_domain, scan

HERE = Path(__file__).parent


def _paused_worker(settings: dict, folder: Path, step: str, run) -> threading.Thread:
    """A worker pass in a thread of its own that stops at `step` (rotation.service.checkpoint)."""
    app = create_app({**settings, "SM_WORKER_PAUSE_AT": step, "SM_WORKER_PAUSE_DIR": str(folder)})

    def work():
        with app.app_context():
            run()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (folder / f"{step}.reached").exists():
        assert time.monotonic() < deadline and thread.is_alive(), f"the worker did not reach {step}"
        time.sleep(0.05)
    return thread


def _vault_dump(vault_url: str, tokens, paths: list[str]) -> dict:
    headers = tokens.headers("service")
    base = f"{vault_url}{VAULT}/secret"
    found = {}
    for path in paths:
        meta = requests.get(f"{base}/metadata/{path}", headers=headers, timeout=10)
        if meta.status_code == 404:
            continue
        meta = meta.json()
        versions = []
        for version in meta["versions"]:
            response = requests.get(f"{base}/data/{path}", params={"version": version["version"]}, headers=headers,
                                    timeout=10)
            versions.append({"version": version["version"],
                             "data": response.json()["data"] if response.status_code == 200 else None})
        found[path] = {"max_versions": meta["metadata"]["max_versions"],
                       "custom_metadata": meta["metadata"].get("custom_metadata") or {}, "versions": versions}
    return found


def test_make_fixture(sm, sm_config, sm_db, vault_url, tokens, tmp_path):
    host_user = tokens.headers("user", sub=people.HOST_USER, roles=[people.HOST_ROLE])
    dir_user = tokens.headers("user", sub=people.DIRECTORY_USER, roles=[people.DIRECTORY_ROLE])

    # Hosts on the NONE driver (the Vault's version is the rotation).
    policy = sm.policy(rotate_on_release=True, max_versions=3)
    host = sm.host(policy, host_id=people.HOST, roles=[people.HOST_ROLE],
                   accounts={"root": "root-initial-1", "app": "app-initial-1", "pend": "pend-initial-1"})
    short = sm.host(sm.policy(max_checkout_duration="PT1S"), host_id=people.SHORT_HOST, roles=[people.HOST_ROLE],
                    accounts={"svc": "svc-initial-1"})

    # A host rotation stopped after the target took the new password (a killed worker's state).
    assert sm.post(f"/rotate/{host}/pend").status_code == 200
    host_worker = _paused_worker(sm_config, tmp_path, "target_accepted", lambda: rotation.run_one_due())

    live_root = sm.checkout(f"hosts/{host}/root", host_user)
    admin_root = sm.checkout(f"hosts/{host}/root", sm.admin)
    released = sm.checkout(f"hosts/{host}/app", host_user)
    assert sm.post(f"/secrets/checkouts/{released['id']}/release", headers=host_user).status_code == 200
    expired = sm.checkout(f"hosts/{short}/svc", host_user)
    time.sleep(1.2)
    with sm.app.app_context():
        assert rotation.expire_checkouts() == 1
    assert sm.post(f"/rotate/{short}/svc").status_code == 200  # queued, manual

    # Directory accounts on a private slapd, onboarded (ONBOARDING rotations: history).
    with slapd.Slapd(tmp_path / "slapd", users=4) as directory:
        dir_policy = sm.policy(max_concurrent_checkouts=1, rotate_on_release=True, verify_after_rotation=True)
        domain = create_domain(sm, directory, auto_onboarding_policy={"id": dir_policy})
        assert scan(sm, domain)["scan_status"] == "DONE"
        managed = {}
        for username in ("user1", "user2", "user3"):
            response = sm.post(f"{TD}/{domain}/managedaccounts", json={
                "username": username, "rotate": True, "explicit_checkout": True,
                "access_roles": [people.DIRECTORY_ROLE]})
            assert response.status_code == 201, response.get_json()
            managed[username] = response.get_json()["id"]
        from secrets_manager_service.target_domains import rotations, worker_steps

        with sm.app.app_context():
            assert worker_steps.run_pass().rotated == 3
        # A directory rotation stopped before the directory was changed.
        assert sm.post(f"{TD}/{domain}/managedaccounts/{managed['user3']}/rotate").status_code == 200
        dir_worker = _paused_worker(sm_config, tmp_path, "before_target_change", rotations.run_due)

        dir_live = sm.checkout(f"targetdomains/{domain}/{managed['user1']}", dir_user)
        dir_released = sm.checkout(f"targetdomains/{domain}/{managed['user2']}", dir_user)
        assert sm.post(f"/secrets/checkouts/{dir_released['id']}/release", headers=dir_user).status_code == 200

        with sm.app.app_context(), sm.app.extensions["db"].cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM sm_rotation_states) AS h, "
                        "(SELECT count(*) FROM sm_td_rotation_states) AS d")
            assert cur.fetchone() == {"h": 1, "d": 1}
        dump = subprocess.run(
            ["pg_dump", "--data-only", "--inserts", "--no-owner", "--no-privileges", "--exclude-table=schema_migrations",
             "--exclude-table=audit_*", sm_db], check=True, capture_output=True, text=True).stdout
        paths = [f"hosts/{host}/{a}" for a in ("root", "app", "pend")] + [f"hosts/{short}/svc"]
        paths += [f"targetdomains/{domain}/{m}" for m in managed.values()] + [f"targetdomains/{domain}/bind"]
        vault = _vault_dump(vault_url, tokens, paths)

        for step in ("target_accepted", "before_target_change"):
            (tmp_path / f"{step}.go").touch()
        host_worker.join(60)
        dir_worker.join(60)

    header = (f"-- Made by tests/secrets_manager/accounts_0009/make_fixture.py (see there) at schema 0009.\n"
              f"-- live host checkouts: {live_root['id']} {admin_root['id']}; ended: {released['id']} {expired['id']}\n"
              f"-- live directory checkout: {dir_live['id']}; ended: {dir_released['id']}\n")
    # The search path stays the loader's: the tables' triggers name other tables unqualified.
    lines = [line for line in dump.splitlines()
             if not line.startswith(("SET transaction_timeout", "\\restrict", "\\unrestrict",
                                     "SELECT pg_catalog.set_config('search_path'"))]
    (HERE / "sm_0009.sql").write_text(header + "\n".join(lines) + "\n")
    (HERE / "vault_0009.json").write_text(json.dumps(vault, indent=1, sort_keys=True) + "\n")
    (HERE / "made.json").write_text(json.dumps({
        "host": host, "short_host": short, "domain": domain, "managed": managed,
        "live": {"host": [live_root["id"], admin_root["id"]], "directory": [dir_live["id"]]},
        "ended": [released["id"], expired["id"], dir_released["id"]]}, indent=1) + "\n")
