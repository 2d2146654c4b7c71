"""Managed directory accounts' passwords in the Vault: `targetdomains/{domain_id}/{managed_account_id}`.

The same versioned `{"password"}` secrets as host accounts' (see account_passwords), in the
Vault's reserved part; the database never holds one.
"""
from __future__ import annotations

from flask import current_app


def path(domain_id, managed_id) -> str:
    return f"targetdomains/{domain_id}/{managed_id}"


def _vault():
    return current_app.extensions["vault_client"]


def store(domain_id, managed_id, password: str, *, max_versions: int) -> int:
    """Write `password` as the newest version; returns its version number."""
    secret = path(domain_id, managed_id)
    _vault().set_metadata(secret, max_versions=max_versions)
    return _vault().write(secret, {"password": password})["version"]


def forget(domain_id, managed_id) -> None:
    _vault().delete(path(domain_id, managed_id))
