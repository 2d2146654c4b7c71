"""A v2 write of an existing secret is two round trips to PostgreSQL (issue 25), counted at the
protocol level (tests/round_trips.py), and keeps every guarantee of the locking transaction it
replaced: check-and-set, version limits, the audit event with the version, a durable commit that
the synchronous standby must confirm (else 503), nothing written when the row changed between
the read and the write."""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests import round_trips, support
from tests.vault.helpers import V1, assert_error, unique


def _write(client, headers, path, data, **options):
    body = {"data": data, **({"options": options} if options else {})}
    return client.post(f"{V1}/secret/data/{path}", headers=headers, json=body)


def test_a_write_of_an_existing_secret_is_two_round_trips(client, svc, vault_app, sql):
    path = unique("rt/written")
    assert _write(client, svc, path, {"password": "one"}).status_code == 200
    client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"max_versions": 2})
    for version in (2, 3):
        with round_trips.counted(vault_app.extensions["db"].pool()) as counter:
            answer = _write(client, svc, path, {"password": f"v{version}"}, cas=version - 1)
        assert answer.status_code == 200 and answer.json["version"] == version, answer.json
        assert counter.round_trips <= 2, counter.statements
    assert client.get(f"{V1}/secret/data/{path}", headers=svc).json["data"] == {"password": "v3"}
    # max_versions 2: version 1 went with the write of version 3, in the same statement
    assert [row[0] for row in sql.execute(
        "SELECT v.version FROM vault_secret_versions v JOIN vault_secrets s ON s.id = v.secret_id "
        "WHERE s.name = %s ORDER BY 1", (path,))] == [2, 3]
    events = sql.execute("SELECT details->>'version' FROM audit_events WHERE action = 'secret.write' AND target = %s "
                         "ORDER BY id", (f"secret:{path}",)).fetchall()
    assert [row[0] for row in events] == ["1", "2", "3"]


def test_a_check_and_set_refused_in_the_two_round_trips_writes_nothing(client, svc, vault_app, sql):
    path = unique("rt/cas")
    assert _write(client, svc, path, {"v": 1}).status_code == 200
    with round_trips.counted(vault_app.extensions["db"].pool()) as counter:
        assert_error(_write(client, svc, path, {"v": 2}, cas=0), 409, "VALUE_DUPLICATE", "options.cas")
    assert counter.round_trips == 1, counter.statements
    assert sql.execute("SELECT current_version FROM vault_secrets WHERE name = %s", (path,)).fetchone()[0] == 1


def test_the_write_statement_writes_nothing_when_the_row_changed_since_it_was_read(client, svc, vault_app, sql):
    """Between the read and the write another change came (here a settings change): the statement
    writes no version, no audit event, and says so (None); the service then takes the lock."""
    from vault_service.secrets import store

    path = unique("rt/stale")
    assert _write(client, svc, path, {"v": 1}).status_code == 200
    db = vault_app.extensions["db"]
    with db.cursor() as cur:
        read = store.secret_for_write(cur, "", path)
    client.post(f"{V1}/secret/metadata/{path}", headers=svc, json={"max_versions": 5})
    event = {"service": "vault", "request_id": "r" * 32, "principal": "test", "action": "secret.write",
             "target": f"secret:{path}"}
    with db.cursor() as cur:
        assert store.add_version(cur, read, version=2, ciphertext=b"x" * 40, created_by="test", entry_keys=["v"],
                                 audit_event=event, unchanged_since=read["row_version"]) is None
    assert sql.execute("SELECT current_version FROM vault_secrets WHERE name = %s", (path,)).fetchone()[0] == 1
    assert sql.execute("SELECT count(*) FROM audit_events WHERE request_id = %s", ("r" * 32,)).fetchone()[0] == 0
    # the service itself, on the same stale start, still writes version 2 (through the lock)
    assert _write(client, svc, path, {"v": 2}, cas=1).json["version"] == 2


def test_entry_keys_of_any_text_are_kept_as_written(client, svc):
    path = unique("rt/keys")
    keys = {'a"b': 1, "back\\slash": 2, "{brace}": 3, "NULL": 4, " ": 5, "comma,": 6, "ünï": 7}
    assert _write(client, svc, path, keys).status_code == 200
    versions = client.get(f"{V1}/secret/metadata/{path}", headers=svc).json["versions"]
    assert versions[-1]["payload_entry_keys"] == sorted(keys)


# --- a synchronous standby that does not confirm ---------------------------------

@pytest.mark.slow
def test_a_write_the_synchronous_standby_did_not_confirm_is_a_503(data_dir, master_keys, tokens):
    """The standby cut off: each commit waits for it until an operator cancels the wait, which
    PostgreSQL answers as a success with a WARNING. Both ways a v2 write commits (its own statement
    for an existing secret, the locking transaction for a new one) answer 503."""
    from tests.failover import cluster

    if cluster.missing():
        pytest.skip(cluster.missing())
    folder = Path(tempfile.mkdtemp(prefix="vault-sync-"))  # pytest's own is closed to the postgres user
    pair = cluster.Pair(folder / "pg", synchronous=True)
    try:
        pair.start()
        # (not dropped at the end: a DROP DATABASE would wait for the standby too; the cluster goes)
        url = support.create_database(pair.primary_url("postgres"), "vault_sync")
        from vault_service.app import create_app

        app = create_app(support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING"))
        client, svc = app.test_client(), tokens.headers("service")
        path = unique("sync/existing")
        assert _write(client, svc, path, {"v": 1}).status_code == 200  # the standby is there
        pair.replication_link.cut()
        for target in (path, unique("sync/new")):
            answers = []
            writer = threading.Thread(target=lambda: answers.append(_write(client, svc, target, {"v": 2})))
            writer.start()
            cancelled = _cancel_waiting_commits_until_done(pair, writer)
            assert answers, "the write still waits for the standby"
            assert cancelled >= 1  # the write's commit; the app's audit pump may have waited too
            assert_error(answers[0], 503, "DATABASE_ERROR")
        app.extensions["db"].close()
    finally:
        pair.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _cancel_waiting_commits_until_done(pair, writer: threading.Thread) -> int:
    """Cancel every commit waiting for the standby until the write has its answer; how many. The
    app's own background commits (the audit pump's) wait too and may be cancelled first: stopping
    at the first cancel left the write's commit waiting (CI saw 2 cancelled at once, and could
    hang), so this goes on until the writer is done."""
    cancelled, deadline = 0, time.monotonic() + 30
    while writer.is_alive() and time.monotonic() < deadline:
        cancelled += pair.cancel_commits_waiting_for_the_standby()
        writer.join(0.05)
    if writer.is_alive():  # leave nothing waiting behind the test
        cancelled += pair.cancel_commits_waiting_for_the_standby()
        writer.join(10)
    return cancelled


@pytest.mark.parametrize("body", [
    {"data": {"password": "p", "n": 1}},
    {"data": {}},
    {"data": {"a": {"b": [1, {"c": None}]}, "d": [[]]}},
    {"data": {"deep": {"a": {"b": {"c": 1}}}}},
])
def test_the_usual_write_body_loads_as_the_full_schema_loads_it(vault_app, body):
    """schemas.WriteBody takes {"data": {...}} without marshmallow's walk: the same result."""
    from marshmallow import Schema

    from vault_service.versioned import schemas

    with vault_app.test_request_context("/vault/api/v1/secret/data/x", method="POST"):
        schema = schemas.WriteBody()
        fast, full = schema.load(body), Schema.load(schema, body)
    assert fast == full and list(fast) == list(full)


def test_write_bodies_the_usual_path_does_not_take_answer_as_before(client, svc):
    path = unique("rt/bodies")
    deep = current = {}
    for _ in range(40):
        current["x"] = {}
        current = current["x"]
    assert_error(_write(client, svc, path, deep), 400, "VALUE_OUT_OF_BOUNDS", "data")
    assert_error(_write(client, svc, path, {"k": "v" * (70 * 1024)}), 400, "VALUE_OUT_OF_BOUNDS", "data")
    answer = client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"v": 1}, "surprise": 1})
    assert answer.status_code == 400
    assert client.get(f"{V1}/secret/data/{path}", headers=svc).status_code == 404  # nothing written
