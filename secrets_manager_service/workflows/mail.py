"""The workflow engine's mail: SMTP (plain, SMTPS or STARTTLS, with AUTH) for testsmtp and for
notifications. Notifications go through an outbox (wf_mail_outbox) written in the request's own
transaction and delivered by the worker's loop (deliver_due), with smtp_retry_attempts retries
and a growing backoff, so a mail server that is down or slow never fails or delays a request. Mails name the
request, its role and people and link to privx_backend_address; they never hold a secret."""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from common.db import Database
from secrets_manager_service.vault_client import VaultClient
from secrets_manager_service.workflows import smtp_password, store

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10
# A mail server that is down usually stays down for minutes: the default 3 retries span 3.5 minutes.
RETRY_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
DELIVERIES_PER_PASS = 100


def _tls_context(settings: dict) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings["smtp_server_insecure_verify"]:  # the setting says: do not check the certificate
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_session(settings: dict, password: str) -> smtplib.SMTP:
    """A logged-in SMTP session as the settings say (the caller closes it)."""
    host, port, protocol = settings["smtp_server"], settings["smtp_server_port"], settings["smtp_server_protocol"]
    if protocol == "SMTPS":
        session = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=_tls_context(settings))
    else:
        session = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        session.ehlo()
        if protocol == "STARTTLS":
            session.starttls(context=_tls_context(settings))
            session.ehlo()
        if settings["smtp_server_username"]:
            session.login(settings["smtp_server_username"], password)
        return session
    except BaseException:
        session.close()
        raise


def _problem(exc: BaseException) -> str:
    """What went wrong, without anything the server echoed of our credentials."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    return f"{type(exc).__name__}: could not talk to the mail server"


def test_settings(settings: dict, password: str) -> dict:
    """testsmtp: a real exchange (connect, TLS, AUTH, NOOP); the SMTPResponse."""
    if not settings["smtp_server"]:
        return {"status": "ERROR", "details": "smtp_server is not set"}
    try:
        session = open_session(settings, password)
        try:
            session.noop()
        finally:
            session.quit()
    except (OSError, smtplib.SMTPException) as exc:
        return {"status": "ERROR", "details": _problem(exc)}
    return {"status": "OK", "details": f"{settings['smtp_server']}:{settings['smtp_server_port']} accepted the session"}


def _message(settings: dict, mail: dict) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings["smtp_sender_address"] or "privx@localhost"
    message["To"] = ", ".join(mail["recipients"])
    message["Subject"] = mail["subject"]
    message.set_content(mail["body"])
    return message


@dataclass
class MailPass:
    """What one pass over the outbox did."""

    sent: int = 0
    retried: int = 0  # failed, and due again after a backoff
    gave_up: int = 0  # failed smtp_retry_attempts retries


def deliver_due(db: Database, vault: VaultClient) -> MailPass:
    """The worker's step: send the outbox's due mails (at most DELIVERIES_PER_PASS, so a long
    outbox never holds up the worker's other work), each in a session of its own; a failure
    waits RETRY_BACKOFF_SECONDS, doubled after every failed try, up to smtp_retry_attempts
    retries. Mail queued while the server was down thus goes out once it is back, with no
    request needed to wake anything. The password is read from the Vault once a mail is due; while
    the Vault is down that raises (503), and the claimed mail is tried again once its lease ends,
    without counting as a try."""
    done = MailPass()
    with db.cursor() as cur:
        settings = store.read_settings(cur)
    password = None
    for _ in range(DELIVERIES_PER_PASS):
        with db.transaction() as cur:
            mail = store.claim_mail(cur)
        if mail is None:
            break
        if password is None:
            password = smtp_password.stored(db, vault) if (settings or {}).get("smtp_server_username") else ""
        problem = _send(settings, password, mail)
        if problem is None:
            with db.transaction() as cur:
                store.mail_sent(cur, mail["id"])
            done.sent += 1
            continue
        give_up = mail["attempts"] + 1 > (settings or {}).get("smtp_retry_attempts", 0)
        backoff = min(RETRY_BACKOFF_SECONDS * 2 ** mail["attempts"], MAX_BACKOFF_SECONDS)
        with db.transaction() as cur:
            store.mail_failed(cur, mail["id"], problem, give_up=give_up, backoff_seconds=backoff)
        log.warning("workflow mail not sent", extra={"mail_id": mail["id"], "problem": problem, "gave_up": give_up})
        if give_up:
            done.gave_up += 1
        else:
            done.retried += 1
    return done


def _send(settings: dict | None, password: str, mail: dict) -> str | None:
    """Send one mail; None when the server took it, else what went wrong (nothing secret)."""
    if not settings or not settings.get("smtp_server_enabled") or not settings.get("smtp_server"):
        return "mail is not enabled in the settings"
    try:
        session = open_session(settings, password)
        try:
            session.send_message(_message(settings, mail))
        finally:
            session.quit()
    except (OSError, smtplib.SMTPException) as exc:
        return _problem(exc)
    return None
