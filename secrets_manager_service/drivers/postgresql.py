"""Rotation of a PostgreSQL role's password with ALTER ROLE.

The new password is hashed on this side (libpq's PQencryptPasswordConn, as
psql's \\password does), so the statement carries a SCRAM verifier, not the
password: the target's statement log, pg_stat_activity and error reports
never see it. Errors are reported by SQLSTATE class only, never by message.

Logging in never hands a password to the server: libpq is told to accept SCRAM only
(`require_auth=scram-sha-256`), so a server (or whoever sits on the path) that asks for a
cleartext or MD5 password gets nothing. Only a connection whose TLS certificate is checked
(sslmode verify-ca or verify-full) may use whatever method the server asks for.
"""
from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from . import binding
from .base import RotationFailed, Target, TargetUnreachable

log = logging.getLogger(__name__)

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VERIFIED_TLS = ("verify-ca", "verify-full")
PROTOCOL = "POSTGRESQL"
CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 15000


class PostgreSQLDriver:
    def rotate(self, target: Target, new_password: str) -> None:
        user, password = target.login()
        log.info("rotating PostgreSQL role %r on %s:%s as %r", target.account, target.address, target.port, user)
        with _connect(target, user, password) as conn:
            try:
                conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS)))
                secret = _hashed(conn, target.account, new_password)
                # Utility statements take no bind parameters: the literal is quoted by psycopg.
                conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(target.account), sql.Literal(secret)))
            except psycopg.Error as exc:
                # An error the server answered with left the role as it was; a lost connection may not have.
                raise RotationFailed(f"ALTER ROLE failed: {_sqlstate(exc)}", unchanged=bool(exc.sqlstate)) from None

    def verify(self, target: Target, password: str) -> bool:
        try:
            with _connect(target, target.account, password):
                return True
        except LoginRefused:
            return False

    def check_bound(self, target: Target) -> None:
        _check_bound(target)


def _check_bound(target: Target) -> None:
    binding.require(binding.host_fingerprint(PROTOCOL, target.address, target.port,
                                             target.certificate_validation_options),
                    target.bound_to, where=f"{target.address}:{target.port}", whose="host")


class LoginRefused(RotationFailed):
    """The server answered and refused these credentials (as opposed to not answering)."""

    unchanged = True


def sslmode(target: Target) -> str:
    option = (target.certificate_validation_options or "").strip().lower()
    return option if option in SSLMODES else "prefer"


def password_methods(mode: str) -> dict:
    """libpq's `require_auth` for an sslmode: SCRAM only, unless TLS checks the server's certificate."""
    return {} if mode in VERIFIED_TLS else {"require_auth": "scram-sha-256"}


def _connect(target: Target, user: str, password: str) -> psycopg.Connection:
    _check_bound(target)  # before any byte goes to the server
    mode = sslmode(target)
    # Keyword arguments, not a URL: libpq never echoes a password parameter, and no
    # conninfo string holding one is ever built.
    try:
        return psycopg.connect(host=target.address, port=int(target.port), dbname="postgres", user=user,
                               password=password, sslmode=mode, connect_timeout=CONNECT_TIMEOUT,
                               autocommit=True, application_name="privx-secrets-manager", **password_methods(mode))
    except psycopg.Error as exc:
        fact = _connect_failure(exc)
        if fact in _REFUSALS:
            raise LoginRefused(fact) from None
        if fact in _UNREACHABLE:
            raise TargetUnreachable(fact) from None
        # Refused by the server for another reason (pg_hba, TLS, no such database): nothing changed either.
        raise RotationFailed(fact, unchanged=True) from None


def _hashed(conn: psycopg.Connection, role: str, password: str) -> str:
    """The password as the server would store it (its password_encryption); plain text only on a pre-10 libpq."""
    try:
        return conn.pgconn.encrypt_password(password.encode(), role.encode()).decode()
    except psycopg.NotSupportedError:
        return password


_AUTH_FAILED = "authentication failed"
_NO_LOGIN = "role is not permitted to log in"
_REFUSALS = (_AUTH_FAILED, _NO_LOGIN)
_PLAIN_REFUSED = ("the server asked for the password in clear text or as MD5, which is refused "
                  "(only SCRAM, unless sslmode is verify-ca or verify-full); no password was sent")
_UNREACHABLE = ("connection refused", "connection timed out", "host name could not be resolved", "no route to host",
                "network unreachable", "server closed the connection")


def _connect_failure(exc: psycopg.Error) -> str:
    """A safe description of a failed connection, chosen from libpq's message, never copying it."""
    if exc.sqlstate:
        if exc.sqlstate.startswith("28"):
            return _AUTH_FAILED
        return f"connection failed: {_sqlstate(exc)}"
    text = str(exc).lower()
    for needle, fact in (
        # libpq's words when require_auth refused what the server asked for (nothing was sent)
        ("authentication method requirement", _PLAIN_REFUSED),
        ("authentication failed", _AUTH_FAILED),
        ("no password supplied", _AUTH_FAILED),
        ("not permitted to log in", _NO_LOGIN),
        ("no pg_hba.conf entry", "connection rejected by pg_hba.conf"),
        ("does not exist", "database or role does not exist"),
        ("connection refused", "connection refused"),
        ("timeout expired", "connection timed out"),
        ("timed out", "connection timed out"),
        ("failed to resolve host", "host name could not be resolved"),
        ("could not translate host name", "host name could not be resolved"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("does not support ssl", "the server does not offer TLS, which the sslmode requires"),
        ("certificate", "TLS certificate verification failed"),
        ("ssl", "TLS negotiation failed"),
        ("server closed the connection", "server closed the connection"),
    ):
        if needle in text:
            return fact
    return f"connection failed ({type(exc).__name__})"


def _sqlstate(exc: psycopg.Error) -> str:
    name = type(exc).__name__
    return f"{name} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else name
