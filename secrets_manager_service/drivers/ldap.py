"""Directories over LDAP (python-ldap, on OpenLDAP's libldap): bind, paged scans, password changes.

One `Endpoint` is one directory server of a target domain. `connect` binds to it
(LDAPS, or StartTLS that never falls back to plain LDAP; the chain is checked
against the endpoint's CA certificates and the name against its address unless
`skip_strict_cert_check`), and yields a `Directory`:

- `pages()` reads a subtree with the RFC 2696 simple paged results control, one
  page (500 entries) at a time, so a scan holds one page in memory at a time;
- `set_password()` changes a user's password: the RFC 3062 Password Modify extended
  operation for `LDAP` endpoints (an administrative reset, no old password), and a
  `replace: unicodePwd` for `AD` endpoints (AD accepts it over an encrypted connection only).

Every failure is a `DirectoryError` whose message is built from safe facts (the
LDAP result name and code, the server's diagnostic with any password cut out, the
endpoint's URL): it is shown as `scan_message` and `last_error_details`.

No password is sent to an endpoint it was not set for (drivers.binding): `connect` binds
only with a bind password stored under the endpoint's own fingerprint, and a managed
account's password (the current, previous, pending or new one) goes only to the endpoints
its binding names. The endpoint's protocol is followed as configured: plain LDAP only where
it says `LDAP`, and nothing falls back to it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import ssl
import struct
import tempfile
import uuid
from dataclasses import dataclass
from typing import Iterator

import ldap
from ldap.controls import SimplePagedResultsControl

from . import binding
from .base import RotationFailed, TargetUnreachable
from .dn import canonical_dn

PASSWORD_MODIFY_OID = "1.3.6.1.4.1.4203.1.11.1"
WHOAMI_OID = "1.3.6.1.4.1.4203.1.11.3"
PAGE_SIZE = 500
CONNECT_TIMEOUT = 5.0  # seconds to reach the server (TCP and TLS)
OPERATION_TIMEOUT = 30.0  # seconds for any one LDAP operation (a bind, a page, a password change)
DEFAULT_PORTS = {"LDAPS": 636, "LDAP": 389, "STARTTLS": 389}


class DirectoryError(RotationFailed):
    """A directory operation that failed; the message is safe to store and show."""


class BindRefused(DirectoryError):
    """The server answered and refused the credentials (as opposed to not answering)."""

    unchanged = True


class DirectoryUnreachable(DirectoryError, TargetUnreachable):
    """No connection (or no TLS session) to the server could be made: nothing reached it."""


@dataclass(frozen=True, repr=False)
class Endpoint:
    type: str  # "LDAP" | "AD"
    protocol: str  # "LDAP" | "LDAPS" | "STARTTLS"
    address: str
    port: int
    bind_dn: str
    bind_password: str
    root_certificates: str = ""  # PEM; "" = the system's trust store
    skip_strict_cert_check: bool = False
    # The fingerprint the bind password was stored under (drivers.binding); None: none was.
    bound_to: str | None = None

    @property
    def fingerprint(self) -> str:
        return binding.directory_fingerprint(self.protocol, self.address, self.port, self.root_certificates,
                                             self.skip_strict_cert_check, self.bind_dn)

    @property
    def url(self) -> str:
        scheme = "ldaps" if self.protocol == "LDAPS" else "ldap"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{scheme}://{host}:{self.port}"

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={'***' if f.name == 'bind_password' else repr(getattr(self, f.name))}"
                          for f in dataclasses.fields(self) if f.name not in ("root_certificates", "bound_to"))
        return f"Endpoint({shown})"

    __str__ = __repr__


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe(exc: ldap.LDAPError, endpoint: Endpoint, *secrets: str) -> str:
    """A safe one-line account of an LDAP failure, e.g. "invalid credentials (49)"."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    if isinstance(exc, ldap.TIMEOUT):
        return "timeout"
    name = type(exc).__name__.lower().replace("_", " ")
    result = info.get("result")
    text = f"{name} ({result})" if isinstance(result, int) and result >= 0 else name
    diagnostic = info.get("info")
    if isinstance(diagnostic, bytes):
        diagnostic = diagnostic.decode("utf-8", "replace")
    if diagnostic and diagnostic != "(unknown error code)":
        text += ": " + _redacted(str(diagnostic)[:300], (endpoint.bind_password, *secrets))
    return text


@contextlib.contextmanager
def connect(endpoint: Endpoint) -> Iterator["Directory"]:
    """A Directory bound as the endpoint's bind account; unbound afterwards."""
    binding.require(endpoint.fingerprint, endpoint.bound_to, where=endpoint.url, whose="bind")
    if endpoint.type == "AD" and endpoint.protocol == "LDAP":
        raise DirectoryUnreachable("an AD endpoint needs LDAPS or STARTTLS: AD changes passwords only over encryption")
    with _ca_file(endpoint) as ca_file:
        conn = _open(endpoint, ca_file)
        try:
            _bind(conn, endpoint, endpoint.bind_dn, endpoint.bind_password, ca_file, what="bind")
            yield Directory(conn, endpoint)
        finally:
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_s()


def check_password(endpoint: Endpoint, dn: str, password: str, bound_to: frozenset[str] | None) -> bool:
    """Whether `dn` binds with `password` on the endpoint (False: refused; DirectoryError: not reachable).
    `bound_to`: the endpoints the password's account is bound to (binding.NotBound if not this one)."""
    binding.require(endpoint.fingerprint, bound_to, where=endpoint.url, whose="account")
    with _ca_file(endpoint) as ca_file:
        conn = _open(endpoint, ca_file)
        try:
            _bind(conn, endpoint, dn, password, ca_file, what="bind as the account")
            return True
        except BindRefused:
            return False
        finally:
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_s()


class Directory:
    def __init__(self, conn, endpoint: Endpoint):
        self._conn = conn
        self.endpoint = endpoint

    def pages(self, base_dn: str, user_filter: str, attributes: list[str], *,
              page_size: int = PAGE_SIZE) -> Iterator[list[tuple[str, dict[str, list[bytes]]]]]:
        """The subtree's matching entries, one page at a time (RFC 2696); referrals are left out."""
        control = SimplePagedResultsControl(True, size=page_size, cookie=b"")
        while True:
            try:
                msgid = self._conn.search_ext(base_dn, ldap.SCOPE_SUBTREE, user_filter, attributes,
                                              serverctrls=[control])
                _, data, _, controls = self._conn.result3(msgid, timeout=OPERATION_TIMEOUT)
            except ldap.LDAPError as exc:
                raise DirectoryError(f"search failed: {describe(exc, self.endpoint)} on {self.endpoint.url}") from None
            yield [(dn, attrs) for dn, attrs in data if dn is not None]
            cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
            if not cookie:
                return
            control.cookie = cookie

    def who_am_i(self) -> str | None:
        """The DN the server bound us as (RFC 4532 WhoAmI, `dn:...`); None where it cannot say
        (no WhoAmI, as Samba, or an answer that names no entry, as AD's `u:DOMAIN\\user`)."""
        try:
            answer = self._conn.whoami_s()
        except ldap.LDAPError:
            return None
        if isinstance(answer, bytes):
            answer = answer.decode("utf-8", "replace")
        return answer[3:] if answer and answer.startswith("dn:") and len(answer) > 3 else None

    def is_bound_as(self, dn: str) -> bool:
        """Whether this connection is bound as the entry `dn`: by the server's WhoAmI answer where
        it gives one, else by the endpoint's bind DN (both compared by identity, not spelling)."""
        wanted = canonical_dn(dn)
        said = self.who_am_i()
        return canonical_dn(self.endpoint.bind_dn) == wanted or (said is not None and canonical_dn(said) == wanted)

    def only_match(self, base_dn: str, search_filter: str) -> str | None:
        """The DN of the one entry under `base_dn` that matches; None if none or several do."""
        try:
            msgid = self._conn.search_ext(base_dn, ldap.SCOPE_SUBTREE, search_filter, ["1.1"], sizelimit=2)
            _, data, _, _ = self._conn.result3(msgid, timeout=OPERATION_TIMEOUT)
        except ldap.SIZELIMIT_EXCEEDED:
            return None
        except ldap.LDAPError as exc:
            raise DirectoryError(f"search failed: {describe(exc, self.endpoint)} on {self.endpoint.url}") from None
        found = [dn for dn, _ in data if dn is not None]
        return found[0] if len(found) == 1 else None

    def supports_password_modify(self) -> bool:
        try:
            found = self._conn.search_st("", ldap.SCOPE_BASE, "(objectClass=*)", ["supportedExtension"],
                                         timeout=OPERATION_TIMEOUT)
        except ldap.LDAPError as exc:
            raise DirectoryError(f"reading the root DSE failed: {describe(exc, self.endpoint)}") from None
        values = found[0][1].get("supportedExtension", []) if found else []
        return PASSWORD_MODIFY_OID.encode() in values

    def set_password(self, dn: str, new_password: str) -> None:
        """Reset `dn`'s password to `new_password` the endpoint type's way."""
        try:
            if self.endpoint.type == "AD":
                # AD wants the password in double quotes, UTF-16LE, as the only value of unicodePwd.
                value = f'"{new_password}"'.encode("utf-16-le")
                self._conn.modify_ext_s(dn, [(ldap.MOD_REPLACE, "unicodePwd", [value])])
            else:
                if not self.supports_password_modify():
                    raise DirectoryError("the directory does not support Password Modify (RFC 3062)", unchanged=True)
                self._conn.passwd_s(dn, None, new_password)
        except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR) as exc:
            # The request may or may not have reached the server: only asking it tells.
            raise DirectoryError(describe(exc, self.endpoint, new_password), unchanged=False) from None
        except ldap.LDAPError as exc:
            # The server answered with a refusal (constraintViolation, unwillingToPerform, ...).
            raise DirectoryError(describe(exc, self.endpoint, new_password), unchanged=True) from None


# --- rotation: the driver interface of drivers/ -----------------------------------

@dataclass(frozen=True, repr=False)
class DirectoryTarget:
    """A managed account of a target domain: its DN, the endpoints in rotation order, and the
    fingerprints of the endpoints its stored passwords are bound to (None: to none)."""

    dn: str
    endpoints: tuple[Endpoint, ...]
    bound_to: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"DirectoryTarget(dn={self.dn!r}, endpoints={list(self.endpoints)!r})"

    __str__ = __repr__


class DirectoryDriver:
    """Rotates through the first endpoint that connects and binds; verifies on that endpoint first."""

    def __init__(self):
        self.used: Endpoint | None = None

    def rotate(self, target: DirectoryTarget, new_password: str) -> None:
        failures = []
        for endpoint in target.endpoints:
            try:
                # The new password goes only where the account's passwords are bound (connect
                # checks the bind password's own binding).
                binding.require(endpoint.fingerprint, target.bound_to, where=endpoint.url, whose="account")
                with connect(endpoint) as directory:
                    if directory.is_bound_as(target.dn):  # (one managed before the onboarding guards knew it)
                        raise DirectoryError("the account is the endpoint's bind account: resetting its password "
                                             "would cut the domain off", unchanged=True)
                    self.used = endpoint
                    directory.set_password(target.dn, new_password)
                    return
            except (DirectoryUnreachable, BindRefused, binding.NotBound) as exc:
                failures.append(str(exc))  # nothing reached this one: try the next
        raise _nothing_reached(failures)

    def verify(self, target: DirectoryTarget, password: str) -> bool:
        """A simple bind as the account, on the endpoint that took the password if known (AD
        replication between DCs lags), else on the first that answers."""
        order = [self.used] if self.used else []
        order += [e for e in target.endpoints if e is not self.used]
        failures = []
        for endpoint in order:
            try:
                return check_password(endpoint, target.dn, password, target.bound_to)
            except (DirectoryUnreachable, binding.NotBound) as exc:
                failures.append(str(exc))
        raise _nothing_reached(failures)

    def check_bound(self, target: DirectoryTarget) -> None:
        """binding.NotBound unless some endpoint has both a bound bind password and the account's binding."""
        failures = []
        for endpoint in target.endpoints:
            try:
                binding.require(endpoint.fingerprint, endpoint.bound_to, where=endpoint.url, whose="bind")
                binding.require(endpoint.fingerprint, target.bound_to, where=endpoint.url, whose="account")
                return
            except binding.NotBound as exc:
                failures.append(str(exc))
        raise binding.NotBound("; ".join(failures) or "the domain has no endpoint")


def _nothing_reached(failures: list[str]) -> RotationFailed:
    """No endpoint was used: unreachable ones, and ones no stored password is bound to (never contacted)."""
    return DirectoryUnreachable("; ".join(failures) or "the domain has no endpoint")


# --- connections -------------------------------------------------------------

@contextlib.contextmanager
def _ca_file(endpoint: Endpoint):
    """libldap reads CA certificates from a file: the endpoint's PEM, in a private temp file."""
    if endpoint.protocol == "LDAP" or not endpoint.root_certificates.strip():
        yield None
        return
    handle, path = tempfile.mkstemp(prefix="sm-ldap-ca-", suffix=".pem")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(endpoint.root_certificates)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _open(endpoint: Endpoint, ca_file: str | None):
    conn = ldap.initialize(endpoint.url, bytes_mode=False)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)  # AD's referrals would be chased with our credentials
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, CONNECT_TIMEOUT)
    conn.set_option(ldap.OPT_TIMEOUT, OPERATION_TIMEOUT)
    if endpoint.protocol != "LDAP":
        if endpoint.skip_strict_cert_check:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
        else:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_file)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # this connection's TLS settings, not the process's
    return conn


def _bind(conn, endpoint: Endpoint, dn: str, password: str, ca_file: str | None, *, what: str) -> None:
    try:
        if endpoint.protocol == "STARTTLS":
            conn.start_tls_s()  # raises on failure: nothing ever continues in plain text
    except ldap.LDAPError as exc:
        raise DirectoryUnreachable(_connect_failure(exc, endpoint, ca_file, starttls=True)) from None
    try:
        conn.simple_bind_s(dn, password)
    except ldap.INVALID_CREDENTIALS:
        raise BindRefused(f"{what} failed: invalid credentials (49) on {endpoint.url}") from None
    except (ldap.SERVER_DOWN, ldap.TIMEOUT) as exc:
        raise DirectoryUnreachable(_connect_failure(exc, endpoint, ca_file, starttls=False)) from None
    except ldap.LDAPError as exc:
        raise DirectoryError(f"{what} failed: {describe(exc, endpoint, password)} on {endpoint.url}") from None


def _connect_failure(exc: ldap.LDAPError, endpoint: Endpoint, ca_file: str | None, *, starttls: bool) -> str:
    """Why the server could not be used: unreachable, a timeout, or TLS (libldap says only "can't contact")."""
    if isinstance(exc, ldap.TIMEOUT):
        return "timeout"
    try:
        with socket.create_connection((endpoint.address, endpoint.port), timeout=CONNECT_TIMEOUT):
            pass
    except socket.timeout:
        return f"timeout connecting to {endpoint.url}"
    except OSError as err:
        return f"cannot connect to {endpoint.url}: {os.strerror(err.errno) if err.errno else type(err).__name__}"
    if endpoint.protocol == "LDAP":
        return f"the server at {endpoint.url} closed the connection"
    if starttls:
        return f"TLS: StartTLS failed on {endpoint.url} ({describe(exc, endpoint)})"
    return "TLS: " + _tls_diagnosis(endpoint, ca_file)


def _tls_diagnosis(endpoint: Endpoint, ca_file: str | None) -> str:
    """The reason an LDAPS handshake failed, found by repeating it with Python's ssl module."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection((endpoint.address, endpoint.port), timeout=CONNECT_TIMEOUT) as sock:
            with context.wrap_socket(sock, server_hostname=endpoint.address):
                pass
    except ssl.SSLCertVerificationError as err:
        return f"certificate verify failed ({err.verify_message}) on {endpoint.url}"
    except (ssl.SSLError, OSError) as err:
        return f"handshake failed ({type(err).__name__}) on {endpoint.url}"
    return f"handshake failed on {endpoint.url}"


# --- attribute values ----------------------------------------------------------

def guid_text(raw: bytes) -> str:
    """An AD objectGUID (16 bytes, the first three fields little-endian) in its 8-4-4-4-12 form."""
    if len(raw) != 16:
        return raw.hex()
    return str(uuid.UUID(bytes_le=raw))


def sid_text(raw: bytes) -> str:
    """An AD objectSid in its S-1-5-... form."""
    if len(raw) < 8:
        return raw.hex()
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8:8 + 4 * count]) if len(raw) >= 8 + 4 * count else ()
    return "S-" + "-".join(str(part) for part in (revision, authority, *subs))


def attribute_text(name: str, values: list[bytes]) -> str:
    """The first value of an attribute as text (objectGUID and objectSid in their canonical forms)."""
    if not values:
        return ""
    first = values[0]
    lowered = name.lower()
    if lowered == "objectguid":
        return guid_text(first)
    if lowered == "objectsid":
        return sid_text(first)
    return first.decode("utf-8", "replace")
