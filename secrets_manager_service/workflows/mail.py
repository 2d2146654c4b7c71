"""The workflow engine's mail: SMTP (plain, SMTPS or STARTTLS, with AUTH) for testsmtp and for
notifications. Notifications go through an outbox (wf_mail_outbox) written in the request's own
transaction and delivered by a background thread of the process, with smtp_retry_attempts
retries, so a mail server that is down or slow never fails or delays a request. Mails name the
request, its role and people and link to privx_backend_address; they never hold a secret."""
from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage

from common.db import Database
from secrets_manager_service.workflows import store

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10
POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300


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


class Sender:
    """This process's background sender (started on first need; one per process)."""

    def __init__(self, db: Database):
        self._db = db
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Deliver soon (after a request queued a mail)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="workflow-mail", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            try:
                while self.deliver_one():
                    pass
            except Exception:  # the database is down: try again on the next round
                log.warning("workflow mail: the outbox could not be read", exc_info=True)

    def deliver_one(self) -> bool:
        """Send the next due mail; False when none is due."""
        with self._db.transaction() as cur:
            mail = store.claim_mail(cur)
            settings, password = store.mail_settings(cur)
        if mail is None:
            return False
        try:
            if not settings or not settings.get("smtp_server_enabled") or not settings.get("smtp_server"):
                raise smtplib.SMTPException("mail is not enabled")
            session = open_session(settings, password)
            try:
                session.send_message(_message(settings, mail))
            finally:
                session.quit()
        except (OSError, smtplib.SMTPException) as exc:
            retries = (settings or {}).get("smtp_retry_attempts", 0)
            give_up = mail["attempts"] + 1 > retries
            backoff = min(2 ** mail["attempts"], MAX_BACKOFF_SECONDS)
            with self._db.transaction() as cur:
                store.mail_failed(cur, mail["id"], _problem(exc), give_up=give_up, backoff_seconds=backoff)
            log.warning("workflow mail not sent", extra={"mail_id": mail["id"], "problem": _problem(exc),
                                                         "gave_up": give_up})
            return True
        with self._db.transaction() as cur:
            store.mail_sent(cur, mail["id"])
        return True


_senders: dict[int, Sender] = {}
_senders_lock = threading.Lock()


def sender_for(db: Database) -> Sender:
    """The process's sender of this database's outbox."""
    with _senders_lock:
        return _senders.setdefault(id(db), Sender(db))
