"""The audit stream with a real receiver: a private rsyslog with a TLS listener on 127.0.0.1
(tests/rsyslog.py) writes what it parsed; the tests read it back: octet-counted framing, the
RFC 5424 fields, the JSON body, the HMACs, the chain's head; a receiver that is down for a
while loses nothing and keeps the order; CEF; requests fail closed while a sink is behind."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import time
from datetime import datetime, timezone

import pytest

from common import audit, audit_stream
from common.audit_pump import AuditPump
from common.db import Database
from tests import support
from tests.rsyslog import Rsyslog, make_test_ca, require_rsyslog

V1 = "/vault/api/v1"
SALT = "test-hmac-salt"


@pytest.fixture()
def rsyslog(tmp_path):
    require_rsyslog()
    receiver = Rsyslog(tmp_path / "rsyslog")
    receiver.start()
    yield receiver
    receiver.close()


@pytest.fixture()
def audit_db(db_server):
    with support.fresh_database(db_server, "audit_stream") as url:
        yield url


def _vault(data_dir, url, master_keys, **extra):
    from vault_service.app import create_app

    return create_app(support.service_settings(data_dir, url, VAULT_MASTER_KEYS=master_keys, LOG_LEVEL="WARNING",
                                               **extra))


def _chained(db: Database, service: str = "vault") -> list[dict]:
    """Every event of `service`, once the chainer has taken them all."""
    deadline = time.monotonic() + 90
    while True:
        with db.cursor() as cur:
            cur.execute("SELECT * FROM audit_events WHERE service = %s ORDER BY seq NULLS LAST, id", (service,))
            rows = cur.fetchall()
        if rows and all(row["seq"] is not None for row in rows):
            return rows
        assert time.monotonic() < deadline, "the chainer did not take every event"
        time.sleep(0.2)


def _events_in(messages: list[dict]) -> list[dict]:
    return [json.loads(m["msg"]) for m in messages if m["msgid"] != "chain-head"]


def _has_seqs(upto: int):
    def condition(messages):
        return {body["seq"] for body in _events_in(messages)} >= set(range(1, upto + 1))
    return condition


def _hmac(value: str) -> str:
    return "hmac-sha256:" + hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


def _wait_until_sink_row(db: Database, sink: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with db.cursor() as cur:
            cur.execute("SELECT 1 FROM audit_sink_cursors WHERE sink = %s", (sink,))
            if cur.fetchone():
                return
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_events_reach_rsyslog_over_tls_framed_and_hashed_and_survive_its_outage(rsyslog, audit_db, data_dir,
                                                                                  master_keys, tokens, tmp_path):
    jsonl = tmp_path / "audit.jsonl"
    app = _vault(data_dir, audit_db, master_keys, AUDIT_SYSLOG_ADDRESS=f"127.0.0.1:{rsyslog.port}",
                 AUDIT_SYSLOG_CA_FILE=rsyslog.tls["ca"], AUDIT_HMAC_KEY=SALT, AUDIT_JSON_FILE=str(jsonl))
    db = app.extensions["db"]
    try:
        client = app.test_client()
        svc, admin = tokens.headers("service"), tokens.headers("admin")
        path = support.unique("streamed")
        assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"pw": "never-sent"}}).status_code == 200
        for _ in range(3):
            assert client.get(f"{V1}/secret/data/{path}", headers=svc).status_code == 200
        assert client.get(f"{V1}/secret/data/{path}-missing", headers=svc).status_code == 404
        rows = _chained(db)
        by_seq = {row["seq"]: row for row in rows}
        messages = rsyslog.wait_for(_has_seqs(len(rows)))

        hashed = client.post(f"{V1}/audit/hash", headers=admin, json={"input": f"secret:{path}"})
        assert hashed.status_code == 200 and hashed.json["hash"] == _hmac(f"secret:{path}")
        sink = app.extensions["audit_pump"].deliveries[0].sink
        for message in messages:
            if message["msgid"] == "chain-head":
                continue
            body = json.loads(message["msg"])
            row = by_seq[body["seq"]]
            severity = {"success": 6, "not_found": 5}[row["outcome"]]
            # RFC 5424 as rsyslog parsed it: PRI (facility 13, log audit), version 1, header fields
            assert message["raw"].startswith(f"<{13 * 8 + severity}>1 ")
            assert message["pri"] == str(13 * 8 + severity)
            assert message["app_name"] == "vault" and message["msgid"] == row["action"]
            assert message["hostname"] == socket.getfqdn()[:255]
            assert message["timestamp"] == row["occurred"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert message["structured_data"] == (f'[audit@32473 seq="{row["seq"]}" id="{row["id"]}" '
                                                  f'outcome="{row["outcome"]}"]')
            # Octet counting: the count our frame carries is exactly the message rsyslog took.
            count, _, framed = sink.frame(audit_stream.event_body(row, sink_redactor(app))).partition(b" ")
            assert int(count) == len(framed) and framed.decode().split(" ", 2)[2] == message["raw"].split(" ", 2)[2]
            # The JSON body: identifying values as HMACs (target, details' strings), the chain link.
            assert body["target"] == _hmac(row["target"]) == (hashed.json["hash"] if row["target"] == f"secret:{path}"
                                                               else body["target"])
            assert body["principal"] == row["principal"] and body["request_id"] == row["request_id"]
            assert body["details"] == row["details"]  # versions are numbers: nothing to hash
            assert body["chain_hash"] == bytes(row["chain_hash"]).hex() and body["hmac"] == ["target", "details"]
            assert "never-sent" not in message["raw"] and path not in message["raw"]
        # The chain's head goes to the stream too, and matches the trail.
        messages = rsyslog.wait_for(lambda ms: any(m["msgid"] == "chain-head" for m in ms))
        head = json.loads(next(m["msg"] for m in messages if m["msgid"] == "chain-head"))
        assert head["type"] == "audit_chain_head" and bytes(by_seq[head["seq"]]["chain_hash"]).hex() == head["hash"]
        # The JSON lines file gets every event as well (its own cursor, fed in the same passes).
        deadline = time.monotonic() + 60
        while not (jsonl.exists() and {b["seq"] for b in map(json.loads, jsonl.read_text().splitlines())
                                       if b["type"] == "audit_event"} >= set(by_seq)):
            assert time.monotonic() < deadline, "the JSON lines sink did not get every event"
            time.sleep(0.2)

        # The receiver goes away; events keep coming; it is back: every event arrives, in order.
        rsyslog.stop()
        for _ in range(15):
            assert client.get(f"{V1}/secret/data/{path}", headers=svc).status_code == 200
        delivery = app.extensions["audit_pump"].deliveries[0]
        deadline = time.monotonic() + 60
        while not delivery._failing:  # the pump found it down
            assert time.monotonic() < deadline
            time.sleep(0.2)
        for _ in range(5):
            assert client.get(f"{V1}/secret/data/{path}", headers=svc).status_code == 200
        rsyslog.start()
        rows = _chained(db)
        messages = rsyslog.wait_for(_has_seqs(len(rows)))
        arrived = [body["seq"] for body in _events_in(messages)]
        first_arrivals = list(dict.fromkeys(arrived))
        assert first_arrivals == sorted(first_arrivals)  # order kept; repeats (at least once) allowed
        assert set(arrived) == {row["seq"] for row in rows}  # none lost
    finally:
        db.close()


def sink_redactor(app):
    return app.extensions["audit_pump"].redactor


def _cef_fields(record: str) -> tuple[list[str], dict]:
    header = re.findall(r"((?:[^|\\]|\\.)*)\|", record)[:7]
    extension = record[sum(len(h) + 1 for h in header):]
    pairs = re.findall(r"(\w+)=((?:[^=\\]|\\.)*?)(?=\s\w+=|$)", extension)

    def unescape(text: str) -> str:
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), text)

    return [unescape(h) for h in header], {key: unescape(value) for key, value in pairs}


def _cef_by_seq(messages: list[dict]) -> dict[int, dict]:
    return {int(_cef_fields(m["msg"])[1]["cn1"]): m for m in messages if m["msgid"] != "chain-head"}


def test_cef_records_through_rsyslog(rsyslog, audit_db):
    db = Database(audit_db, service="vault", migrations_package="vault_service")
    db.migrate()
    try:
        awkward = "secret:a=b|c\\d e"
        audit.record("secret.read", awkward, audit.DENIED, db=db, principal="p1", service="vault",
                     details={"reason": "x=y\nz"})
        audit.record("secret.write", "secret:plain", db=db, principal="p2", service="vault", details={"version": 2})
        sink = audit_stream.SyslogSink(f"127.0.0.1:{rsyslog.port}", ca_file=rsyslog.tls["ca"], message_format="cef")
        pump = AuditPump(db, "vault", sinks=[sink], redactor=audit_stream.Redactor(None))
        deadline = time.monotonic() + 90
        while not {1, 2} <= set(_cef_by_seq(rsyslog.received())):
            pump.tick()
            assert time.monotonic() < deadline, "the CEF records did not arrive"
            time.sleep(0.3)
        records = _cef_by_seq(rsyslog.received())
        header, ext = _cef_fields(records[1]["msg"])
        assert header[:3] == ["CEF:0", "privx-secrets-suite", "vault"]
        assert header[4:] == ["secret.read", "secret.read denied", "7"]
        assert ext["cs1Label"] == "target" and ext["cs1"] == awkward
        assert ext["suser"] == "p1" and ext["outcome"] == "denied" and json.loads(ext["cs3"]) == {"reason": "x=y\nz"}
        assert records[1]["raw"].startswith(f"<{13 * 8 + 4}>1 ")  # denied: warning
        assert _cef_fields(records[2]["msg"])[0][4] == "secret.write"
        # Under steady traffic (an event every pass, never a pause) the cursor still moves.
        deadline = time.monotonic() + 60
        while True:
            audit.record("secret.read", "secret:busy", db=db, principal="p", service="vault")
            pump.tick()
            with db.cursor() as cur:
                cur.execute("SELECT delivered_seq FROM audit_sink_cursors WHERE sink = 'syslog'")
                if cur.fetchone()["delivered_seq"] >= 6:
                    break
            assert time.monotonic() < deadline, "the cursor stood still while events kept coming"
            time.sleep(0.3)
    finally:
        sink.close()
        db.close()


def test_requests_fail_closed_while_a_sink_is_too_far_behind(audit_db, data_dir, master_keys, tokens, tmp_path):
    require_rsyslog()
    folder = tmp_path / "late-receiver"
    port = support.free_port()  # nothing listens there yet
    ca = make_test_ca(tmp_path)
    receiver = None
    app = _vault(data_dir, audit_db, master_keys, AUDIT_SYSLOG_ADDRESS=f"127.0.0.1:{port}",
                 AUDIT_SYSLOG_CA_FILE=ca["ca"], AUDIT_SINK_MAX_LAG_SECONDS="1")
    try:
        client = app.test_client()
        svc = tokens.headers("service")
        path = support.unique("closed")
        assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"a": 1}}).status_code == 200
        deadline = time.monotonic() + 60
        while (response := client.get(f"{V1}/secret/data/{path}", headers=svc)).status_code != 503:
            assert response.status_code == 200 and time.monotonic() < deadline
            time.sleep(0.2)
        assert response.json["error_code"] == "INTRA_SERVICE_COMMUNICATION_ERROR"
        assert "audit stream" in response.json["error_message"]
        assert client.get(f"{V1}/status").status_code == 200  # health still answers
        receiver = Rsyslog(folder, port=port, tls=ca)
        receiver.start()
        deadline = time.monotonic() + 60
        while client.get(f"{V1}/secret/data/{path}", headers=svc).status_code != 200:
            assert time.monotonic() < deadline, "requests were still refused after the sink caught up"
            time.sleep(0.2)
        receiver.wait_for(lambda ms: any(m["msgid"] == "secret.write" for m in ms))
    finally:
        if receiver:
            receiver.close()
        app.extensions["db"].close()


def test_the_hash_route_refuses_bad_input_and_says_when_no_key_is_set(audit_db, data_dir, master_keys, tokens):
    admin = tokens.headers("admin")
    app = _vault(data_dir, audit_db, master_keys)  # the tests' settings carry a key
    try:
        client = app.test_client()
        good = client.post(f"{V1}/audit/hash", headers=admin, json={"input": "secret:a"})
        assert good.status_code == 200
        assert good.json == {"hash": "hmac-sha256:" + hmac.new(b"test-audit-hmac-key", b"secret:a",
                                                               hashlib.sha256).hexdigest()}
        for body, code in (({}, "REQUIRED_VALUE_MISSING"), ({"input": ""}, None), ({"input": 5}, "VALUE_INCORRECT_TYPE"),
                           ({"input": "a", "extra": 1}, "INVALID_REQUEST_DATA"), ({"input": "x" * 8193}, None)):
            response = client.post(f"{V1}/audit/hash", headers=admin, json=body)
            assert response.status_code == 400 and response.json["property"] in ("input", "extra"), response.json
            assert code is None or response.json["error_code"] == code
        assert client.post(f"{V1}/audit/hash", headers=tokens.headers("user"), json={"input": "a"}).status_code == 403
    finally:
        app.extensions["db"].close()
    app = _vault(data_dir, audit_db, master_keys, AUDIT_HMAC_KEY="")
    try:
        response = app.test_client().post(f"{V1}/audit/hash", headers=admin, json={"input": "secret:a"})
        assert response.status_code == 400 and response.json["error_code"] == "CONFIGURATION_ERROR"
        assert "AUDIT_HMAC_KEY" in response.json["error_message"]
    finally:
        app.extensions["db"].close()


def test_one_process_feeds_a_sink_and_another_takes_over_when_it_stops(audit_db, tmp_path, capsys):
    """Two processes' pumps (two owners) and one JSON-lines sink: the lease holder feeds it; when
    it stops, the other takes the lease after it runs out and goes on from the cursor."""
    db = Database(audit_db, service="vault", migrations_package="vault_service")
    db.migrate()
    out = tmp_path / "audit.jsonl"
    first = AuditPump(db, "vault", sinks=[audit_stream.JsonLinesSink(str(out))], redactor=audit_stream.Redactor(None))
    second = AuditPump(db, "vault", sinks=[audit_stream.JsonLinesSink(str(out))], redactor=audit_stream.Redactor(None))
    second._nonce = first._nonce + "-other"

    def seqs():
        return [b["seq"] for b in map(json.loads, out.read_text().splitlines()) if b["type"] == "audit_event"] \
            if out.exists() else []

    def pump_until(pumps, done):
        deadline = time.monotonic() + 60
        while not done():
            for pump in pumps:
                pump.tick()
            assert time.monotonic() < deadline
            time.sleep(0.2)

    try:
        for i in range(5):
            audit.record("secret.read", f"secret:x{i}", db=db, principal="p", service="vault")
        pump_until([first, second], lambda: len(seqs()) >= 5)
        with db.cursor() as cur:
            cur.execute("SELECT lease_owner FROM audit_sink_cursors WHERE sink = 'jsonl'")
            holder = cur.fetchone()["lease_owner"]
        leader, other = (first, second) if holder == first._owner() else (second, first)
        for i in range(5, 9):
            audit.record("secret.read", f"secret:x{i}", db=db, principal="p", service="vault")
        pump_until([other], lambda: len(seqs()) >= 9)  # only after the leader's lease ran out
        with db.cursor() as cur:
            cur.execute("SELECT lease_owner, delivered_seq FROM audit_sink_cursors WHERE sink = 'jsonl'")
            row = cur.fetchone()
        assert row["lease_owner"] == other._owner() != leader._owner() and row["delivered_seq"] == 9
        assert seqs() == list(range(1, 10))  # once each, in order
        # stdout is a sink too ('-')
        to_stdout = AuditPump(db, "secrets-manager", sinks=[audit_stream.JsonLinesSink("-")],
                              redactor=audit_stream.Redactor("k", ("principal",)))
        audit.record("checkout.create", "hosts/h/root", db=db, principal="alice", service="secrets-manager")
        deadline = time.monotonic() + 60
        lines = []
        while not any(line.get("type") == "audit_event" for line in lines):
            to_stdout.tick()
            lines += [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        event = next(line for line in lines if line.get("type") == "audit_event")
        assert event["principal"] == audit_stream.Redactor("k").hash("alice") and event["target"] == "hosts/h/root"
    finally:
        db.close()


def test_identifying_values_leave_hashed_and_numbers_as_they_are():
    redactor = audit_stream.Redactor(SALT, ("target", "details"))
    event = {"service": "secrets-manager", "seq": 7, "id": 70, "occurred": datetime.now(timezone.utc),
             "request_id": "r1", "principal": "alice", "action": "host.save", "target": "hosts/h1",
             "outcome": "success", "chain_hash": bytes(32),
             "details": {"name": "db-01", "accounts": ["root", "app"], "version": 3, "nested": {"dn": "cn=x"}}}
    body = audit_stream.event_body(event, redactor)
    assert body["target"] == _hmac("hosts/h1") and body["principal"] == "alice" and body["request_id"] == "r1"
    assert body["details"] == {"name": _hmac("db-01"), "accounts": [_hmac("root"), _hmac("app")], "version": 3,
                               "nested": {"dn": _hmac("cn=x")}}
    assert event["details"]["name"] == "db-01"  # the event itself is untouched
    assert audit_stream.event_body(event, audit_stream.Redactor(None, ("target",)))["target"] == "hosts/h1"
