"""The directories' bind passwords: only in the Vault, as `targetdomains/{id}/bind`.

One secret per domain holds the password of each endpoint under the endpoint's fingerprint
(drivers.binding: protocol, address, port, TLS trust, bind DN), so a password can only be
found, and sent, by the endpoint it was set for: an endpoint sent back unchanged without its
password keeps it, and a changed one has none until a caller sends it again.
"""
from __future__ import annotations

from flask import current_app

from secrets_manager_service.drivers import binding

BIND_VERSIONS = 2  # the previous set survives one change, no more: old bind passwords are no one's history


def path(domain_id) -> str:
    return f"targetdomains/{domain_id}/bind"


def key(endpoint: dict) -> str:
    """Where an endpoint's bind password is kept: its fingerprint."""
    return binding.saved_endpoint_fingerprint(endpoint)


def _legacy_key(endpoint: dict) -> str:
    """The key before credential binding (address, port, bind DN), read only to upgrade old secrets."""
    return f"{endpoint['ldap_address'].lower()}|{endpoint['ldap_port']}|{endpoint['ldap_bind_dn']}"


def _vault():
    return current_app.extensions["vault_client"]


def read(domain_id, endpoints: list[dict]) -> dict[str, str]:
    """{fingerprint: password}; empty when the Vault has none.

    A secret written before credential binding is keyed by address, port and bind DN: its
    passwords are taken as bound to the domain's endpoints as stored now (`endpoints`), as
    migration 0007 does for accounts; the next change of the endpoints writes it keyed anew.
    """
    found = _vault().read(path(domain_id))
    stored = ((found or {}).get("data") or {}).get("passwords") or {}
    passwords = {k: v for k, v in stored.items() if isinstance(v, str)}
    if any("|" in k for k in passwords):  # fingerprints are hex digests, never with a '|'
        legacy, passwords = passwords, {k: v for k, v in passwords.items() if "|" not in k}
        for endpoint in endpoints:
            password = legacy.get(_legacy_key(endpoint))
            if password is not None:
                passwords.setdefault(key(endpoint), password)
    return passwords


def write(domain_id, passwords: dict[str, str]) -> None:
    _vault().set_metadata(path(domain_id), max_versions=BIND_VERSIONS)
    _vault().write(path(domain_id), {"passwords": passwords})


def forget(domain_id) -> None:
    _vault().delete(path(domain_id))
