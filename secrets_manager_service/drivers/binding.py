"""Credential binding: a stored password goes only to the endpoint it was set for.

An endpoint's *fingerprint* is a digest of everything that decides where a password
travels and who may read it on the way: for a host, its protocol, address, port and
`certificate_validation_options` (TLS mode, host keys); for a directory endpoint, its
protocol, address, port, root certificates, strict-check switch and bind identity.
Every stored credential carries the fingerprint(s) of the endpoint(s) it was set for,
next to it:

- a host account: `sm_accounts.bound_endpoint` (set by `initial_password`,
  `set-password`, or the first rotation of an account with no password yet);
- a managed directory account: `sm_td_managed_accounts.bound_endpoints`, the domain's
  endpoints when its password was stored (or when its first password was generated);
- a bind password: the key it is stored under in the Vault (`target_domains.bind_passwords`),
  so it can only be found by the fingerprint of the endpoint it was set for.

A change of any of those fields changes the fingerprint, so nothing stored matches until a
caller supplies the password again for the new endpoint. `require` is the one check: the
drivers call it, with the fingerprint of the very fields they are about to connect with,
before they open any connection; a mismatch raises NotBound and nothing is sent.

Migration 0007 computes the same digest in SQL for rows stored before it (their current
endpoint is trusted): keep `_digest` and that migration in step (tests/secrets_manager/
test_credential_binding.py checks they agree).
"""
from __future__ import annotations

import hashlib
from typing import Collection

from .base import RotationFailed

VERSION = "v1"

HOW_TO_REBIND = {
    "host": "store the password again for this endpoint (set-password, or initial_password in the host secret)",
    "account": "store the account's password again for this endpoint (set password)",
    "bind": "send ldap_bind_password again with the endpoint",
}


class NotBound(RotationFailed):
    """A stored password was set for another endpoint (or for none): no connection was made."""

    unchanged = True


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(kind: str, *parts: str) -> str:
    # Each part is hashed on its own, so no value can forge a separator; migration 0007 spells
    # the same in SQL: sha256hex('v1:' || kind || E'\n' || concat_ws(E'\n', sha256hex(part), ...)).
    return _sha256(f"{VERSION}:{kind}\n" + "\n".join(_sha256(part) for part in parts))


def host_fingerprint(protocol: str, address: str, port: int, certificate_validation_options: str | None) -> str:
    """A host's endpoint, as its driver connects to it."""
    return _digest("host", protocol, address, str(int(port)), certificate_validation_options or "")


def host_row_fingerprint(host: dict) -> str:
    """The fingerprint of a host as stored (an `sm_hosts` row, or the settings about to be)."""
    return host_fingerprint(host["protocol"], host["address"], host["port"], host["certificate_validation_options"])


def directory_fingerprint(protocol: str, address: str, port: int, root_certificates: str,
                          skip_strict_cert_check: bool, bind_dn: str) -> str:
    """A directory endpoint, as the LDAP driver connects and binds to it."""
    return _digest("ldap", protocol, address, str(int(port)), root_certificates or "",
                   "true" if skip_strict_cert_check else "false", bind_dn)


def saved_endpoint_fingerprint(saved: dict) -> str:
    """The fingerprint of an endpoint as a target domain stores it (its API field names)."""
    return directory_fingerprint(saved["ldap_protocol"], saved["ldap_address"], saved["ldap_port"],
                                 saved["ldap_root_certificates"], saved["ldap_skip_strict_cert_check"],
                                 saved["ldap_bind_dn"])


def require(fingerprint: str, bound_to: str | Collection[str] | None, *, where: str, whose: str) -> None:
    """Raise NotBound unless the credential bound to `bound_to` (a fingerprint, or a set of them)
    may go to the endpoint whose fingerprint is `fingerprint`. `where` names the endpoint (an
    address or URL, never a secret); `whose` is "host", "account" or "bind" (what to do then)."""
    if isinstance(bound_to, str):
        bound = bound_to == fingerprint
    else:
        bound = bound_to is not None and fingerprint in bound_to
    if not bound:
        raise NotBound(f"no stored password is bound to {where}: it was set for another endpoint (address, port, "
                       f"protocol, TLS trust or bind identity changed since) or for none; nothing was sent. "
                       f"To use this endpoint, {HOW_TO_REBIND[whose]}")
