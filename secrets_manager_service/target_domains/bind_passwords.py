"""The directories' bind passwords: only in the Vault, as `targetdomains/{id}/bind`.

One secret per domain holds the password of each endpoint, keyed by what identifies a
bind (address, port, bind DN), so an endpoint sent back without its password keeps it.
"""
from __future__ import annotations

from flask import current_app

BIND_VERSIONS = 2  # the previous set survives one change, no more: old bind passwords are no one's history


def path(domain_id) -> str:
    return f"targetdomains/{domain_id}/bind"


def key(endpoint: dict) -> str:
    return f"{endpoint['ldap_address'].lower()}|{endpoint['ldap_port']}|{endpoint['ldap_bind_dn']}"


def _vault():
    return current_app.extensions["vault_client"]


def read(domain_id) -> dict[str, str]:
    """{key: password}; empty when the Vault has none."""
    found = _vault().read(path(domain_id))
    passwords = ((found or {}).get("data") or {}).get("passwords") or {}
    return {k: v for k, v in passwords.items() if isinstance(v, str)}


def write(domain_id, passwords: dict[str, str]) -> None:
    _vault().set_metadata(path(domain_id), max_versions=BIND_VERSIONS)
    _vault().write(path(domain_id), {"passwords": passwords})


def forget(domain_id) -> None:
    _vault().delete(path(domain_id))
