"""Hostile servers on 127.0.0.1 that record what a client hands them, for the credential tests.

- `PasswordPhishingPostgres`: speaks just enough of the PostgreSQL protocol to ask each client
  for its password in clear text (AuthenticationCleartextPassword, 'R' code 3) or as MD5
  ('R' code 5), and records every password message that arrives.
- `BindRecordingLdap`: an LDAP listener that decodes each BindRequest (DN, simple password),
  records it and answers success; a StartTLS request is refused, a search finds nothing, any
  other extended operation is refused. Enough for libldap to bind and scan, never to change
  a password.

Both count connections, so a test can tell "nothing was sent" from "nothing was accepted".
"""
from __future__ import annotations

import socket
import socketserver
import struct
import threading

SSL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877104, 196608
STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"


class _Listener:
    """A TCP listener on 127.0.0.1 with a thread per connection; `handle(sock)` is the protocol."""

    def __init__(self):
        self.connections = 0
        self._lock = threading.Lock()
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with listener._lock:
                    listener.connections += 1
                self.request.settimeout(10)
                try:
                    listener.handle(self.request)
                except (OSError, ValueError, struct.error):
                    pass  # the client went away (or spoke nonsense): this connection is over

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address, self.port = self._server.server_address[:2]

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


def _read_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ValueError("closed")
        data += chunk
    return data


class PasswordPhishingPostgres(_Listener):
    """Asks every client for its password in clear text (`method="cleartext"`) or as MD5; records
    the password messages that arrive (`passwords`: their bytes, NUL-terminated text or digest)."""

    def __init__(self, method: str = "cleartext"):
        super().__init__()
        self.method = method
        self.passwords: list[bytes] = []

    def handle(self, conn):
        while True:  # the startup packet, after any SSL or GSSAPI encryption request (refused: 'N')
            length = struct.unpack("!I", _read_exactly(conn, 4))[0]
            body = _read_exactly(conn, length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                conn.sendall(b"N")
                continue
            if code != PROTOCOL_3:
                return
            break
        if self.method == "md5":
            conn.sendall(b"R" + struct.pack("!II", 12, 5) + b"salt")
        else:
            conn.sendall(b"R" + struct.pack("!II", 8, 3))
        kind = _read_exactly(conn, 1)
        length = struct.unpack("!I", _read_exactly(conn, 4))[0]
        payload = _read_exactly(conn, length - 4)
        if kind == b"p":
            with self._lock:
                self.passwords.append(payload.rstrip(b"\0"))
        error = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)


# --- LDAP: the few BER shapes of RFC 4511 a bind and a scan need -----------------------

def _ber_length(data: bytes, i: int) -> tuple[int, int]:
    """(length, index of the value) of the BER length at data[i]."""
    first = data[i]
    if first < 0x80:
        return first, i + 1
    count = first & 0x7F
    return int.from_bytes(data[i + 1:i + 1 + count], "big"), i + 1 + count


def _ber_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) items one after another in `data`."""
    items, i = [], 0
    while i < len(data):
        tag = data[i]
        length, start = _ber_length(data, i + 1)
        items.append((tag, data[start:start + length]))
        i = start + length
    return items


def _ber(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        return bytes([tag, length]) + value
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + value


def _ldap_result(message_id: bytes, op_tag: int, code: int) -> bytes:
    result = _ber(0x0A, bytes([code])) + _ber(0x04, b"") + _ber(0x04, b"")
    return _ber(0x30, _ber(0x02, message_id) + _ber(op_tag, result))


class BindRecordingLdap(_Listener):
    """Records every BindRequest as `(dn, password)` (password None for a non-simple bind) and
    answers success; StartTLS and every other extended operation: protocolError (2); a search:
    no entries."""

    def __init__(self):
        super().__init__()
        self.binds: list[tuple[str, str | None]] = []

    def handle(self, conn):
        while True:
            tag = _read_exactly(conn, 1)[0]
            first = _read_exactly(conn, 1)
            if first[0] < 0x80:
                length = first[0]
            else:
                length = int.from_bytes(_read_exactly(conn, first[0] & 0x7F), "big")
            if tag != 0x30:
                return
            (_, message_id), (op_tag, op) = _ber_items(_read_exactly(conn, length))[:2]
            if op_tag == 0x60:  # BindRequest: version, name, authentication
                _, (_, name), (auth_tag, auth) = _ber_items(op)[:3]
                with self._lock:
                    self.binds.append((name.decode("utf-8", "replace"),
                                       auth.decode("utf-8", "replace") if auth_tag == 0x80 else None))
                conn.sendall(_ldap_result(message_id, 0x61, 0))
            elif op_tag == 0x63:  # SearchRequest: done, nothing found
                conn.sendall(_ldap_result(message_id, 0x65, 0))
            elif op_tag == 0x77:  # ExtendedRequest (StartTLS, WhoAmI, Password Modify): refused
                conn.sendall(_ldap_result(message_id, 0x78, 2))
            elif op_tag == 0x42:  # UnbindRequest
                return
            else:
                return

    def binds_with_password(self) -> list[tuple[str, str]]:
        return [(dn, password) for dn, password in self.binds if password]
