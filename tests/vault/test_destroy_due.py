"""Destruction when it is due, by `vault-admin destroy-due`, and what concurrent changes of one
version leave: a crash halfway leaves every version intact or destroyed; schedule, cancel,
delete, undelete and destroy racing on one version end in a state some serial order gives.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.vault.helpers import V1, unique
from tests.vault.test_version_lifecycle import assert_destroyed, assert_intact, listed, post, rows, write

BLOCK_KEY = 7_220_022  # the advisory lock the crash test parks destroy-due on


def destroy_due(vault_db, tmp_path, **popen):
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": vault_db, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"}
    argv = [sys.executable, "-m", "vault_service.cli", "destroy-due"]
    if popen:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def scheduled_secret(client, svc, sql, versions: int, *, due: bool = True, since: str = "2000-01-01") -> str:
    """A secret whose versions are all scheduled; with `due`, due long ago, oldest version first."""
    path = unique("lockbox/sweep")
    for i in range(versions):
        write(client, svc, path, {"data": {"v": i + 1}})
    assert post(client, svc, "schedule-destroy", path, {"versions": list(range(1, versions + 1))}).status_code == 200
    if due:
        sql.execute("""UPDATE vault_secret_versions v SET destroy_at = %s::timestamptz + make_interval(secs => v.version)
                        FROM vault_secrets s WHERE s.id = v.secret_id AND s.name = %s""", (since, path))
    return path


def test_destroy_due_destroys_what_is_due_in_every_secret_and_nothing_else(client, svc, sql, vault_db, tmp_path):
    due = [scheduled_secret(client, svc, sql, 2) for _ in range(2)]
    pending = scheduled_secret(client, svc, sql, 1, due=False)
    live = unique("lockbox/live")
    write(client, svc, live, {"data": {"v": 1}})
    result = destroy_due(vault_db, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["destroyed"] >= 4
    for path in due:
        for row in rows(sql, path).values():
            assert_destroyed(row)
        events = sql.execute("""SELECT principal, details FROM audit_events WHERE target = %s
                                 AND action = 'secret.destroy_versions' ORDER BY id""", (f"secret:{path}",)).fetchall()
        assert events == [("vault-admin destroy-due", {"versions": [1], "scheduled": True}),
                          ("vault-admin destroy-due", {"versions": [2], "scheduled": True})]
    assert_intact(rows(sql, pending)[1])
    assert listed(client, svc, pending)[1]["status"] == "SCHEDULED_FOR_DESTRUCTION"
    assert_intact(rows(sql, live)[1])
    again = destroy_due(vault_db, tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout) == {"destroyed": 0}


def test_a_crash_halfway_leaves_every_version_intact_or_destroyed(client, svc, sql, vault_db, tmp_path):
    """destroy-due is killed (SIGKILL) while it destroys the third of five due versions: a
    trigger parks that version's transaction on an advisory lock this test holds."""
    path = scheduled_secret(client, svc, sql, 5, since="1990-01-01")  # before any other test's: swept first
    secret_id = sql.execute("SELECT id FROM vault_secrets WHERE owner_id = '' AND name = %s", (path,)).fetchone()[0]
    sql.execute(f"""CREATE FUNCTION test_park_destroy() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.destroyed AND NOT OLD.destroyed AND NEW.secret_id = '{secret_id}' AND NEW.version = 3 THEN
                            PERFORM pg_advisory_xact_lock({BLOCK_KEY});
                        END IF;
                        RETURN NEW;
                    END $$""")
    sql.execute("""CREATE TRIGGER test_park_destroy BEFORE UPDATE ON vault_secret_versions
                   FOR EACH ROW EXECUTE FUNCTION test_park_destroy()""")
    try:
        sql.execute("SELECT pg_advisory_lock(%s)", (BLOCK_KEY,))
        process = destroy_due(vault_db, tmp_path, start_new_session=True)
        try:
            backend = _wait_for_lock_waiter(sql, process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        sql.execute("SELECT pg_advisory_unlock(%s)", (BLOCK_KEY,))
        _wait_until_gone(sql, backend)
    finally:
        sql.execute("DROP TRIGGER IF EXISTS test_park_destroy ON vault_secret_versions")
        sql.execute("DROP FUNCTION IF EXISTS test_park_destroy()")
    found = rows(sql, path)
    for version in (1, 2):
        assert_destroyed(found[version])
    for version in (3, 4, 5):  # the one in flight rolled back with the dead connection
        assert_intact(found[version])
        assert found[version]["destroy_at"] is not None and found[version]["payload_entry_keys"] == ["v"]
    assert {v["status"] for v in listed(client, svc, path).values()} == {"DESTROYED"}  # touched: due, so destroyed
    for row in rows(sql, path).values():
        assert_destroyed(row)


def _wait_for_lock_waiter(sql, process, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = sql.execute("""SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                                  AND objid = %s""", (BLOCK_KEY,)).fetchall()
        if waiting:
            return waiting[0][0]
        if process.poll() is not None:
            raise AssertionError(f"destroy-due ended before reaching version 3: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("destroy-due never reached version 3")


def _wait_until_gone(sql, backend: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sql.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchall():
            return
        time.sleep(0.05)
    raise AssertionError(f"the killed command's database session {backend} did not end")


# --------------------------------------------------------------------------- concurrency

# A model of one version, to enumerate what every serial order of the operations gives:
# (destroyed, scheduled, deleted) where `deleted` is the state a cancel returns to.
def _apply(state, operation):
    destroyed, scheduled, deleted = state
    if destroyed:
        return state
    if operation == "destroy":
        return (True, False, deleted)
    if operation == "schedule":
        return (False, True, deleted)
    if operation == "cancel":
        return (False, False, deleted)
    if operation == "undelete":
        return state if scheduled else (False, False, False)
    if operation == "delete":
        return state if scheduled else (False, False, True)
    raise ValueError(operation)


def _status(state) -> str:
    destroyed, scheduled, deleted = state
    return "DESTROYED" if destroyed else "SCHEDULED_FOR_DESTRUCTION" if scheduled else "DELETED" if deleted else "ACTIVE"


def _possible(operations, start=(False, False, False)) -> set[str]:
    outcomes = set()
    for order in itertools.permutations(operations):
        state = start
        for operation in order:
            state = _apply(state, operation)
        outcomes.add(_status(state))
    return outcomes


ROUTES = {"schedule": "schedule-destroy", "cancel": "cancel-destroy", "undelete": "undelete", "delete": "delete",
          "destroy": "destroy"}
RACES = [
    ("schedule", "cancel", "undelete", "destroy", "delete"),
    ("schedule", "cancel", "undelete", "delete"),
    ("schedule", "cancel", "cancel", "schedule"),
    ("schedule", "undelete", "delete"),
]


@pytest.mark.parametrize("operations", RACES, ids=["-".join(r) for r in RACES])
def test_concurrent_changes_of_one_version_end_in_a_serial_outcome(vault_app, svc, sql, operations):
    client = vault_app.test_client()
    for round_number in range(8):
        path = unique("lockbox/race")
        write(client, svc, path, {"data": {"v": 1}})
        write(client, svc, path, {"data": {"v": 2}})
        barrier = threading.Barrier(len(operations))
        statuses = []

        def run(operation):
            own = vault_app.test_client()
            barrier.wait()
            statuses.append(post(own, svc, ROUTES[operation], path, {"versions": [1]}).status_code)

        threads = [threading.Thread(target=run, args=(operation,)) for operation in operations]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * len(operations)
        item = listed(client, svc, path)[1]
        assert item["status"] in _possible(operations), (round_number, item)
        row = rows(sql, path)[1]
        # The table agrees with what the API says (its CHECK constraints hold the rest).
        assert (row["ciphertext"] is None) == (item["status"] == "DESTROYED")
        assert (row["destroy_at"] is not None) == (item["status"] == "SCHEDULED_FOR_DESTRUCTION")
        readable = client.get(f"{V1}/secret/data/{path}?version=1", headers=svc).status_code
        assert (readable == 200) == (item["status"] == "ACTIVE")
