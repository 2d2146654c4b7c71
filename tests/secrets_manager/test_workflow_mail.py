"""The workflow engine's mail over real SMTP (aiosmtpd on 127.0.0.1 with STARTTLS and AUTH
required): testsmtp, who gets which notification, no secret in any mail, retries while the
server is down, and a dead server that never fails a request. Mail is sent by a real worker
process (`secrets-manager-worker run`), as in production: no request wakes anything."""
from __future__ import annotations

import email
import email.policy
import logging
import os
import ssl
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from psycopg.types.json import Jsonb

from secrets_manager_service import worker
from secrets_manager_service.app import create_app
from secrets_manager_service.workflows import smtp_password
from tests import support
from tests.secrets_manager.helpers import SmApi
from tests.rsyslog import make_test_ca
from tests.secrets_manager.workflow_helpers import WF, People, _decide, _request, _workflow

USER, PASSWORD = "mailer", "smtp-s3cret-pw"


class _Inbox:
    def __init__(self):
        self.messages: list = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.arrived:
            self.messages.append(envelope)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def mail_to(self, address: str, timeout: float = 60):
        """The first mail that arrived for `address` (other tests' mail may arrive in between)."""
        def found():
            return next((m for m in self.messages if address in m.rcpt_tos), None)
        with self.arrived:
            self.arrived.wait_for(lambda: found() is not None, timeout)
            assert found() is not None, f"no mail to {address} in {timeout} s"
            return found()


def _text(envelope) -> str:
    """A received mail's subject and body, decoded."""
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return f"{message['Subject']}\n{message.get_content()}"


def _authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory):
    tls = make_test_ca(tmp_path_factory.mktemp("smtp-tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls["cert"], tls["key"])
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=support.free_port(), tls_context=context,
                            require_starttls=True, authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    try:
        yield {"port": controller.port, "inbox": inbox, "ca": tls["ca"], "tls": context}
    finally:
        controller.stop()


@pytest.fixture()
def trusted_ca(smtp_server, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", smtp_server["ca"])  # the test CA, as an operator would install it


@pytest.fixture(scope="module")
def mail_worker(sm_config, smtp_server, tmp_path_factory):
    """`secrets-manager-worker run` on the tests' database, trusting the test CA; its log file."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    port = support.free_port()  # its metrics listener opens just before the loop: then it runs
    env = {**os.environ, **{key: str(value) for key, value in sm_config.items()}, "LOG_LEVEL": "INFO",
           "SM_WORKER_METRICS_PORT": str(port), "SSL_CERT_FILE": smtp_server["ca"]}
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "secrets_manager_service.worker", "run", "--interval", "0.3"],
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        support.wait_until_listening(port, process, timeout=120)
        yield log
    finally:
        support.stop(process, timeout=30)


def _outbox(sm_config, request_id):
    with psycopg.connect(sm_config["DATABASE_URL"], autocommit=True) as conn:
        return conn.execute("""SELECT attempts, sent, failed, last_error, next_attempt - now() AS wait
                                 FROM wf_mail_outbox WHERE request_id = %s""", (request_id,)).fetchone()


def _until(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _backoff_passes(sm_config, request_id) -> None:
    """The retry's backoff (mail.RETRY_BACKOFF_SECONDS and more) has passed: its due time is now."""
    with psycopg.connect(sm_config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("UPDATE wf_mail_outbox SET next_attempt = now() WHERE request_id = %s", (request_id,))


def _settings(port: int, **overrides) -> dict:
    return {"smtp_server": "127.0.0.1", "smtp_server_port": port, "smtp_server_enabled": True,
            "privx_backend_address": "https://privx.example", "smtp_server_username": USER,
            "smtp_server_password": PASSWORD, "smtp_server_protocol": "STARTTLS",
            "smtp_sender_address": "privx@example.com", "smtp_retry_attempts": 3,
            "smtp_server_insecure_verify": False, **overrides}


def test_testsmtp_does_a_real_exchange(sm, smtp_server, trusted_ca):
    port = smtp_server["port"]
    assert sm.put("/settings", prefix=WF, json=_settings(port, smtp_server_enabled=False)).status_code == 200
    ok = sm.post("/testsmtp", prefix=WF, json=_settings(port, smtp_server_password="")).get_json()
    assert ok["status"] == "OK", ok  # "" took the stored password
    wrong = sm.post("/testsmtp", prefix=WF, json=_settings(port, smtp_server_password="wrong")).get_json()
    assert wrong["status"] == "ERROR" and "wrong" not in wrong["details"]  # refused (or cut off) at AUTH
    plain = sm.post("/testsmtp", prefix=WF, json=_settings(port, smtp_server_protocol="SMTP")).get_json()
    assert plain["status"] == "ERROR"  # the server requires STARTTLS before AUTH
    dead = sm.post("/testsmtp", prefix=WF, json=_settings(support.free_port())).get_json()
    assert dead["status"] == "ERROR"


def test_an_unknown_certificate_is_refused_unless_insecure_verify(sm, smtp_server):
    port = smtp_server["port"]  # no trusted_ca: the server's certificate is unknown
    refused = sm.post("/testsmtp", prefix=WF, json=_settings(port)).get_json()
    assert refused["status"] == "ERROR" and "TLS" in refused["details"]
    accepted = sm.post("/testsmtp", prefix=WF, json=_settings(port, smtp_server_insecure_verify=True)).get_json()
    assert accepted["status"] == "OK"


def test_approvers_then_the_requester_get_their_mails(sm, smtp_server, trusted_ca, tokens, mail_worker):
    inbox = smtp_server["inbox"]
    assert sm.put("/settings", prefix=WF, json=_settings(smtp_server["port"])).status_code == 200
    people = People(tokens)
    mails = {}
    for who, headers in (("a", people.approver_a), ("b", people.approver_b), ("r", people.requester)):
        mails[who] = f"{who}-{support.unique()}@example.com"
        headers["Authorization"] = "Bearer " + tokens(
            "user", sub=headers["sub"], roles=[{"a": people.a, "b": people.b, "r": people.requester_role}[who]],
            name=who, email=mails[who])
        assert sm.get("/workflows", prefix=WF, headers=headers).status_code == 200  # the suite sees them
    _workflow(sm, people)
    request_id = _request(sm, people, request_justification="mail test")
    first = inbox.mail_to(mails["a"])
    assert first.rcpt_tos == [mails["a"]] and request_id in _text(first)
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    assert inbox.mail_to(mails["b"]).rcpt_tos == [mails["b"]]
    assert _decide(sm, request_id, people.approver_b, 1).status_code == 200
    third = inbox.mail_to(mails["r"])
    assert third.rcpt_tos == [mails["r"]] and "APPROVED" in _text(third)
    assert "https://privx.example/" in _text(third)
    for message in inbox.messages:
        assert PASSWORD not in _text(message) and PASSWORD not in message.content.decode()


def _mailed_request(sm, tokens, address: str) -> str:
    """A new request whose first step's approver has `address`: one mail queued for it."""
    people = People(tokens)
    headers = people.approver_a
    headers["Authorization"] = "Bearer " + tokens("user", sub=headers["sub"], roles=[people.a], email=address)
    assert sm.get("/workflows", prefix=WF, headers=headers).status_code == 200
    _workflow(sm, people)
    started = time.monotonic()
    request_id = _request(sm, people)  # 201 although the mail server is down
    assert time.monotonic() - started < 5  # and no SMTP timeout was waited for
    return request_id


def test_mail_queued_while_the_server_is_down_goes_out_once_it_is_back(sm, smtp_server, tokens, sm_config,
                                                                      mail_worker):
    port = support.free_port()  # nothing listens there yet
    assert sm.put("/settings", prefix=WF, json=_settings(port, smtp_retry_attempts=5)).status_code == 200
    address = f"late-{support.unique()}@example.com"
    request_id = _mailed_request(sm, tokens, address)
    _until(lambda: (_outbox(sm_config, request_id) or (0,))[0] >= 1)  # the worker tried, on its own
    attempts, sent, failed, problem, wait = _outbox(sm_config, request_id)
    assert sent is None and failed is None and PASSWORD not in problem
    assert wait.total_seconds() > 20  # the retry waits its backoff
    # The server comes up on that port; once the backoff has passed the worker delivers, with
    # no request to the Secrets Manager in between.
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=smtp_server["tls"], require_starttls=True,
                            authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    try:
        _backoff_passes(sm_config, request_id)
        assert inbox.mail_to(address).rcpt_tos == [address]
        _until(lambda: _outbox(sm_config, request_id)[1] is not None)  # marked sent once the session is over
    finally:
        controller.stop()
    assert PASSWORD not in mail_worker.read_text()


def test_retries_run_out_after_smtp_retry_attempts(sm, smtp_server, tokens, sm_config, mail_worker):
    assert sm.put("/settings", prefix=WF, json=_settings(support.free_port(), smtp_retry_attempts=1)).status_code == 200
    request_id = _mailed_request(sm, tokens, f"never-{support.unique()}@example.com")
    _until(lambda: (_outbox(sm_config, request_id) or (0,))[0] >= 1)
    assert _outbox(sm_config, request_id)[2] is None  # one retry left
    _backoff_passes(sm_config, request_id)
    _until(lambda: _outbox(sm_config, request_id)[0] >= 2)
    attempts, sent, failed, problem, _ = _outbox(sm_config, request_id)
    assert attempts == 2 and sent is None and failed is not None  # the first try and its one retry


# --- the SMTP password: only in the Vault, never in a log, an audit row, an error ---------------

def _tables_holding(database_url: str, secret: str) -> list[str]:
    """The tables of a database where `secret` is in any row, as text or as bytes (bytea's hex)."""
    found = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            """SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
                WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'""")]
        for table in tables:
            hit = conn.execute(f"SELECT 1 FROM {table} t WHERE t::text LIKE %s OR t::text LIKE %s LIMIT 1",
                               (f"%{secret}%", f"%{secret.encode().hex()}%")).fetchone()
            if hit:
                found.append(table)
    return found


def _settings_row(database_url: str) -> tuple:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT smtp_password, smtp_password_version FROM wf_settings").fetchone()


def test_the_password_is_kept_only_in_the_vault(sm, sm_config, sm_vault_db, vault_reader, vault_url, tokens,
                                                smtp_server, trusted_ca, caplog):
    caplog.set_level(logging.DEBUG)
    assert sm.put("/settings", prefix=WF, json=_settings(smtp_server["port"])).status_code == 200
    assert sm.get("/settings", prefix=WF).get_json()["smtp_server_password"] == ""
    plain_text, version = _settings_row(sm_config["DATABASE_URL"])
    assert plain_text == "" and version == vault_reader.versions(smtp_password.PATH)[-1]["version"]
    assert vault_reader.raw(smtp_password.PATH) == {"password": PASSWORD}  # encrypted at rest by the Vault
    assert sm.post("/testsmtp", prefix=WF, json=_settings(smtp_server["port"], smtp_server_password="")).get_json()[
        "status"] == "OK"
    # In no table of either service (settings, audit rows, the Vault's versions: ciphertext only).
    assert _tables_holding(sm_config["DATABASE_URL"], PASSWORD) == []
    assert _tables_holding(sm_vault_db, PASSWORD) == []
    assert PASSWORD not in caplog.text
    # The Secrets Manager's reserved part: no Vault user reaches it, not even an admin.
    admin = {"Authorization": f"Bearer {tokens('admin user vaultManage')}"}
    assert requests.get(f"{vault_url}/vault/api/v1/secrets/{smtp_password.PATH.replace('/', '%2F')}",
                        headers=admin, timeout=10).status_code == 404


def test_a_vault_outage_refuses_a_new_password_and_changes_nothing(sm, sm_config, tokens, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    assert sm.put("/settings", prefix=WF, json=_settings(smtp_server["port"])).status_code == 200
    before = _settings_row(sm_config["DATABASE_URL"])
    app = create_app({**sm_config, "VAULT_URL": f"http://127.0.0.1:{support.free_port()}"})  # no Vault there
    try:
        cut_off = SmApi(app.test_client(), tokens)
        other = "another-s3cret-smtp-pw"
        refused = cut_off.put("/settings", prefix=WF, json=_settings(1025, smtp_server_password=other))
        assert refused.status_code == 503 and other not in refused.get_data(as_text=True)
        tried = cut_off.post("/testsmtp", prefix=WF, json=_settings(smtp_server["port"], smtp_server_password=""))
        assert tried.status_code == 503  # the stored password is out of reach, and nothing is guessed
    finally:
        app.extensions["db"].close()
    assert _settings_row(sm_config["DATABASE_URL"]) == before
    assert sm.get("/settings", prefix=WF).get_json()["smtp_server_port"] == smtp_server["port"]
    assert other not in caplog.text and PASSWORD not in caplog.text
    assert _tables_holding(sm_config["DATABASE_URL"], other) == []


UNDO_0013 = """
    ALTER TABLE wf_settings DROP COLUMN smtp_password_version;
    DELETE FROM schema_migrations WHERE service = 'secrets-manager' AND version = 13;
"""


def test_a_password_stored_in_plain_text_is_moved_into_the_vault(db_server, sm_config, vault_reader, tokens,
                                                                  smtp_server, trusted_ca, caplog):
    caplog.set_level(logging.DEBUG)
    with support.fresh_database(db_server, "sm_smtp_move") as url:
        app = create_app({**sm_config, "DATABASE_URL": url})
        try:
            app.extensions["db"].migrate()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(UNDO_0013)  # the schema as 0012 left it, and a row as that release wrote it
                doc = {key: value for key, value in _settings(smtp_server["port"]).items()
                       if key != "smtp_server_password"}
                conn.execute("INSERT INTO wf_settings (id, doc, smtp_password, updated_by) VALUES (1, %s, %s, 'me')",
                             (Jsonb(doc), PASSWORD))
            assert app.extensions["db"].migrate() == ["secrets-manager/0013_workflow_smtp_password_in_vault.sql"]
            api = SmApi(app.test_client(), tokens)
            retest = _settings(smtp_server["port"], smtp_server_password="")
            assert api.post("/testsmtp", prefix=WF, json=retest).get_json()["status"] == "OK"  # still found
            with app.app_context():
                assert worker.run(once=True, interval=0) == 0  # the pass that moves it
            plain_text, version = _settings_row(url)
            assert plain_text == "" and version == vault_reader.versions(smtp_password.PATH)[-1]["version"]
            assert vault_reader.raw(smtp_password.PATH) == {"password": PASSWORD}
            assert api.post("/testsmtp", prefix=WF, json=retest).get_json()["status"] == "OK"  # from the Vault now
            assert _tables_holding(url, PASSWORD) == []
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM audit_events WHERE action = %s",
                                    ("workflow.settings.password_encrypted",)).fetchone()[0] == 1
            with app.app_context():
                assert worker.run(once=True, interval=0) == 0  # nothing left to move: no second version
            assert vault_reader.versions(smtp_password.PATH)[-1]["version"] == version
        finally:
            app.extensions["db"].close()
    assert PASSWORD not in caplog.text
