"""The audit trail as a stream for SIEMs: sinks fed from the table, at least once, in chain order.

Sinks (settings AUDIT_SYSLOG_*, AUDIT_JSON_FILE): RFC 5424 syslog over TCP with TLS and
octet-counted framing (RFC 5425, RFC 6587), its message a JSON body or, with
AUDIT_SYSLOG_FORMAT=cef, a CEF record (ArcSight, QRadar); and JSON lines to a file or stdout.

Delivery is from the table, never from the request: each sink has a cursor (the last chain
`seq` it surely has, in audit_sink_cursors) and one process at a time feeds it (the one
holding its lease, renewed every pass). A pass sends what follows the cursor and moves the
cursor only once the sink has it: a file after fsync; a TLS connection once it has stayed
up SETTLE_SECONDS after the send (a receiver that went away in between resets or closes the
connection, and everything not yet confirmed is sent again on the next one). So a sink that
is down catches up when it is back, losing nothing; it may get an event twice.

Identifying values (AUDIT_HMAC_FIELDS: the target, the details' strings, ...) can leave as
"hmac-sha256:<hex>" keyed by AUDIT_HMAC_KEY, as HashiCorp Vault's audit devices do;
POST .../audit/hash gives an admin the same for a value to search for.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import ssl
import sys
import time
from datetime import timezone

from common import audit_chain, audit_store
from common.db import Database

log = logging.getLogger("audit")

BATCH = 500
SETTLE_SECONDS = 1.0
LEASE_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5.0
HEAD_EVERY_SECONDS = audit_chain.CHECKPOINT_SECONDS
HMAC_PREFIX = "hmac-sha256:"
HMAC_FIELDS = ("principal", "target", "request_id", "details")
# RFC 5612's example enterprise number: our structured data's SD-ID is audit@32473.
SD_ID = "audit@32473"
_SEVERITY = {"success": 6, "not_found": 5, "denied": 4, "failed": 3}  # RFC 5424 severities
_CEF_SEVERITY = {"success": 3, "not_found": 5, "denied": 7, "failed": 8}
_FORMATS = ("rfc5424", "cef")


# --------------------------------------------------------------------------- records


class Redactor:
    """HMAC-SHA256 of identifying values with the configured key (None: values go as they are)."""

    def __init__(self, key: str | None, fields: tuple[str, ...] = ()):
        self._key = key.encode() if key else None
        self.fields = fields if key else ()

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def hash(self, value: str) -> str:
        return HMAC_PREFIX + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def apply(self, event: dict) -> dict:
        shown = dict(event)
        for name in self.fields:
            if name == "details":
                shown["details"] = self._strings_hashed(event["details"])
            elif shown.get(name) is not None:
                shown[name] = self.hash(shown[name])
        return shown

    def _strings_hashed(self, value):
        if isinstance(value, str):
            return self.hash(value)
        if isinstance(value, dict):
            return {key: self._strings_hashed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._strings_hashed(item) for item in value]
        return value


def event_body(event: dict, redactor: Redactor) -> dict:
    """The JSON every sink carries for an event (never a value: events hold none)."""
    shown = redactor.apply(event)
    return {
        "type": "audit_event", "service": event["service"], "seq": event["seq"], "id": event["id"],
        "occurred": _timestamp(event["occurred"]), "request_id": shown["request_id"],
        "principal": shown["principal"], "action": event["action"], "target": shown["target"],
        "outcome": event["outcome"], "details": shown["details"], "chain_hash": bytes(event["chain_hash"]).hex(),
        **({"hmac": list(redactor.fields)} if redactor.fields else {}),
    }


def head_body(head: dict) -> dict:
    return {"type": "audit_chain_head", **head}


def _timestamp(moment) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _printable_ascii(text: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII without spaces, at most `limit`, else '-'."""
    cleaned = "".join(ch if "!" <= ch <= "~" else "_" for ch in text)[:limit]
    return cleaned or "-"


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(*, facility: int, severity: int, timestamp: str, hostname: str, app: str, msgid: str,
            structured: dict, message: str) -> bytes:
    """One RFC 5424 message, octet-counted for a stream (RFC 6587 section 3.4.1)."""
    params = " ".join(f'{key}="{_sd_value(str(value))}"' for key, value in structured.items())
    line = (f"<{facility * 8 + severity}>1 {timestamp} {_printable_ascii(hostname, 255)} {_printable_ascii(app, 48)} "
            f"{os.getpid()} {_printable_ascii(msgid, 32)} [{SD_ID} {params}] {message}").encode()
    return str(len(line)).encode() + b" " + line


def _cef_header(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return (text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n"))


def cef(body: dict, *, version: str) -> str:
    """An event (or a chain head) as one CEF:0 record."""
    if body["type"] == "audit_chain_head":
        signature, name, severity = "chain-head", "audit chain head", 1
        extension = {"rt": body["at"], "cn1Label": "seq", "cn1": body["seq"], "cs1Label": "chainHash",
                     "cs1": body["hash"]}
    else:
        signature, name = body["action"], f"{body['action']} {body['outcome']}"
        severity = _CEF_SEVERITY.get(body["outcome"], 5)
        extension = {"rt": body["occurred"], "act": body["action"], "outcome": body["outcome"],
                     "suser": body["principal"], "externalId": body["id"], "cn1Label": "seq", "cn1": body["seq"],
                     "cs1Label": "target", "cs1": body["target"], "cs2Label": "requestId", "cs2": body["request_id"],
                     "cs3Label": "details", "cs3": body["details"], "cs4Label": "chainHash", "cs4": body["chain_hash"]}
    header = "|".join(_cef_header(part) for part in
                      ("CEF:0", "privx-secrets-suite", body["service"], version, signature, name, severity))
    return header + "|" + " ".join(f"{key}={_cef_value(value)}" for key, value in extension.items()
                                   if value is not None)


# --------------------------------------------------------------------------- sinks


class SyslogSink:
    """RFC 5424 over TCP + TLS to one receiver (rsyslog, syslog-ng, a SIEM's collector)."""

    name = "syslog"

    def __init__(self, address: str, *, ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, facility: int = 13, message_format: str = "rfc5424",
                 version: str = "0", hostname: str | None = None):
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            self.context.load_cert_chain(cert_file, key_file)
        self.facility, self.format, self.version = facility, message_format, version
        self.hostname = hostname or socket.getfqdn()
        self._conn: ssl.SSLSocket | None = None

    def frame(self, body: dict) -> bytes:
        head = body["type"] == "audit_chain_head"
        message = cef(body, version=self.version) if self.format == "cef" else json.dumps(body, separators=(",", ":"))
        structured = ({"seq": body["seq"], "hash": body["hash"]} if head else
                      {"seq": body["seq"], "id": body["id"], "outcome": body["outcome"]})
        return rfc5424(facility=self.facility, severity=6 if head else _SEVERITY.get(body["outcome"], 5),
                       timestamp=body["at"] if head else body["occurred"], hostname=self.hostname,
                       app=body["service"], msgid="chain-head" if head else body["action"],
                       structured=structured, message=message)

    def send(self, bodies: list[dict]) -> None:
        if self._conn is None:
            raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                self._conn = self.context.wrap_socket(raw, server_hostname=self.host)
            except BaseException:
                raw.close()
                raise
        self._conn.sendall(b"".join(self.frame(body) for body in bodies))

    # What was sent is the receiver's once the connection stayed up this long after the send.
    settle_seconds = SETTLE_SECONDS

    def alive(self) -> bool:
        """Whether what was sent on this connection can still arrive. A receiver that went away
        closed or reset it: a read says so at once."""
        if self._conn is None:
            return False
        try:
            self._conn.setblocking(False)
            try:
                return self._conn.recv(1) != b""  # a syslog receiver never sends: data would be odd, not fatal
            finally:
                self._conn.setblocking(True)
                self._conn.settimeout(CONNECT_TIMEOUT_SECONDS)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except (OSError, ssl.SSLError):
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None


class JsonLinesSink:
    """One JSON object a line, to a file (appended, fsynced before the cursor moves) or stdout ('-')."""

    name = "jsonl"

    def __init__(self, path: str):
        self.path = path

    def send(self, bodies: list[dict]) -> None:
        text = "".join(json.dumps(body, separators=(",", ":")) + "\n" for body in bodies)
        if self.path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())

    settle_seconds = 0.0  # fsynced: the file has it

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


def sinks_from(settings) -> list:
    """The sinks the settings choose (zero or more)."""
    from common import programs

    chosen = []
    if settings.get("AUDIT_SYSLOG_ADDRESS"):
        chosen.append(SyslogSink(settings["AUDIT_SYSLOG_ADDRESS"], ca_file=settings.get("AUDIT_SYSLOG_CA_FILE"),
                                 cert_file=settings.get("AUDIT_SYSLOG_CERT_FILE"),
                                 key_file=settings.get("AUDIT_SYSLOG_KEY_FILE"),
                                 facility=settings.get("AUDIT_SYSLOG_FACILITY", 13),
                                 message_format=settings.get("AUDIT_SYSLOG_FORMAT", "rfc5424"),
                                 version=programs.version()))
    if settings.get("AUDIT_JSON_FILE"):
        chosen.append(JsonLinesSink(settings["AUDIT_JSON_FILE"]))
    return chosen


def redactor_from(settings) -> Redactor:
    return Redactor(settings.get("AUDIT_HMAC_KEY"), tuple(settings.get("AUDIT_HMAC_FIELDS") or ()))


# --------------------------------------------------------------------------- delivery


class Delivery:
    """Feeds one sink from the table while this process holds the sink's lease."""

    def __init__(self, db: Database, service: str, sink, redactor: Redactor, owner):
        """`owner()` names this process in the lease."""
        self.db, self.service, self.sink, self.redactor, self.owner = db, service, sink, redactor, owner
        self._in_flight: list[tuple[int, float]] = []  # (last seq of a send, when), not yet confirmed
        self._failing = False

    def tick(self) -> None:
        cursor = self._take_lease()
        if cursor is None:  # another process feeds this sink
            self._forget_in_flight()
            return
        delivered, head_due = cursor
        try:
            self._confirm_settled()
            start = self._in_flight[-1][0] if self._in_flight else delivered
            events = self._events_after(start)
            bodies = [event_body(event, self.redactor) for event in events]
            if head_due:  # at least every HEAD_EVERY_SECONDS, busy or not
                head = audit_chain.head(self.db, self.service)
                if head is not None and head["chained_at"] is not None:
                    bodies.append(head_body(audit_chain.head_record(self.service, head["seq"],
                                                                    bytes.fromhex(head["hash"]), audit_store.database_now(self.db))))
            if bodies:
                self.sink.send(bodies)
                if events:
                    self._in_flight.append((events[-1]["seq"], time.monotonic()))
                if len(bodies) > len(events):
                    self._mark_head_sent()
                self._confirm_settled()
            if self._failing:
                log.warning("audit sink delivering again", extra={"audit_sink": self.sink.name})
                self._failing = False
        except (OSError, ssl.SSLError) as exc:
            self._forget_in_flight()
            if not self._failing:
                log.warning("audit sink unreachable: its events wait in the table",
                            extra={"audit_sink": self.sink.name, "exception_type": type(exc).__name__})
                self._failing = True

    def _confirm_settled(self) -> None:
        """Move the cursor past the sends that have settled; a broken connection sends them again."""
        if not self._in_flight:
            return
        if not self.sink.alive():
            self._forget_in_flight()
            return
        settled_before = time.monotonic() - self.sink.settle_seconds
        settled = [seq for seq, sent in self._in_flight if sent <= settled_before]
        if settled:
            self._confirm(settled[-1])
            self._in_flight = [(seq, sent) for seq, sent in self._in_flight if seq > settled[-1]]

    def _take_lease(self):
        """(delivered_seq, head due) if this process feeds the sink now."""
        return audit_store.take_sink_lease(self.db, self.service, self.sink.name, owner=self.owner(),
                                           lease_seconds=LEASE_SECONDS, head_every_seconds=HEAD_EVERY_SECONDS)

    def _forget_in_flight(self) -> None:
        """What was sent and not confirmed is sent again (from the cursor), on a new connection."""
        self._in_flight = []
        self.sink.close()

    def _events_after(self, seq: int) -> list[dict]:
        return audit_store.chained_events_after(self.db, self.service, seq, limit=BATCH)

    def _confirm(self, seq: int) -> None:
        audit_store.confirm_delivered(self.db, self.service, self.sink.name, seq, owner=self.owner())

    def _mark_head_sent(self) -> None:
        audit_store.mark_head_sent(self.db, self.service, self.sink.name)


def oldest_undelivered_age(db: Database, service: str, sinks: list[str]) -> float:
    """Seconds since the oldest event some sink does not have yet occurred (0: none waits)."""
    return audit_store.oldest_undelivered_age(db, service, sinks, late_limit=audit_chain.LATE_LIMIT)
