"""The workflow engine's mail over real SMTP (aiosmtpd on 127.0.0.1 with STARTTLS and AUTH
required): testsmtp, who gets which notification, no secret in any mail, retries while the
server is down, and a dead server that never fails a request."""
from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from secrets_manager_service.workflows import mail
from tests import support
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


def test_approvers_then_the_requester_get_their_mails(sm, smtp_server, trusted_ca, tokens):
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
    before = len(inbox.messages)
    request_id = _request(sm, people, request_justification="mail test")
    first = inbox.wait_for(before + 1)[before]
    assert first.rcpt_tos == [mails["a"]] and request_id in _text(first)
    assert _decide(sm, request_id, people.approver_a, 0).status_code == 200
    second = inbox.wait_for(before + 2)[before + 1]
    assert second.rcpt_tos == [mails["b"]]
    assert _decide(sm, request_id, people.approver_b, 1).status_code == 200
    third = inbox.wait_for(before + 3)[before + 2]
    assert third.rcpt_tos == [mails["r"]] and "APPROVED" in _text(third)
    assert "https://privx.example/" in _text(third)
    for message in inbox.messages:
        assert PASSWORD not in _text(message) and PASSWORD not in message.content.decode()


def test_a_dead_mail_server_fails_no_request_and_mail_is_retried(sm, smtp_server, trusted_ca, tokens, sm_config):
    port = support.free_port()  # nothing listens there yet
    assert sm.put("/settings", prefix=WF, json=_settings(port, smtp_retry_attempts=5)).status_code == 200
    people = People(tokens)
    headers = people.approver_a
    headers["Authorization"] = "Bearer " + tokens("user", sub=headers["sub"], roles=[people.a], email="late@example.com")
    assert sm.get("/workflows", prefix=WF, headers=headers).status_code == 200
    _workflow(sm, people)
    request_id = _request(sm, people)  # 201 although the mail server is down
    with psycopg.connect(sm_config["DATABASE_URL"], autocommit=True) as conn:
        def outbox():
            return conn.execute("SELECT attempts, sent, last_error FROM wf_mail_outbox WHERE request_id = %s",
                                (request_id,)).fetchone()
        deadline = time.monotonic() + 30
        while (outbox() or (0,))[0] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        attempts, sent, problem = outbox()
        assert attempts >= 1 and sent is None and PASSWORD not in problem
        # The server comes up on that port: the retry delivers.
        inbox = _Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=smtp_server["tls"], require_starttls=True,
                                authenticator=_authenticator, auth_require_tls=True)
        controller.start()
        try:
            conn.execute("UPDATE wf_mail_outbox SET next_attempt = now() WHERE request_id = %s", (request_id,))
            mail.sender_for(sm.app.extensions["db"]).poke()
            assert inbox.wait_for(1)[0].rcpt_tos == ["late@example.com"]
            deadline = time.monotonic() + 30  # the sender marks it sent once the session is over
            while outbox()[1] is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert outbox()[1] is not None
        finally:
            controller.stop()
