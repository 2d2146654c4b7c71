"""Account passwords in the Vault: the only place they are kept.

Each account's password is the secret `hosts/{host_id}/{account}` of the
Vault's versioned API, as `{"password": ...}`; its versions are the password's
history, capped by the policy's `max_versions`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app

from secrets_manager_service.names import secret_path
from secrets_manager_service.vault_client import VaultClient


def vault() -> VaultClient:
    return current_app.extensions["vault_client"]


def store(host_id, account: str, password: str, *, max_versions: int) -> int:
    """Write `password` as the newest version; returns its version number."""
    path = secret_path(host_id, account)
    # The cap first: lowering it prunes old versions, and a new secret is created with it.
    vault().set_metadata(path, max_versions=max_versions)
    return vault().write(path, {"password": password})["version"]


def current(host_id, account: str) -> str | None:
    """The newest live password, or None if the Vault has none."""
    found = vault().read(secret_path(host_id, account))
    return _password_of(found) if found else None


def live_versions(host_id, account: str) -> list[dict]:
    """Every live version the Vault keeps, newest first: `[{version, secret, created}]`."""
    path = secret_path(host_id, account)
    metadata = vault().metadata(path)
    if metadata is None:
        return []
    now = datetime.now(timezone.utc)
    numbers = sorted((v["version"] for v in metadata.get("versions") or () if _is_live(v, now)), reverse=True)
    versions = []
    for number in numbers:
        found = vault().read(path, version=number)
        if found is None:  # deleted between the two calls
            continue
        versions.append({"version": number, "secret": _password_of(found),
                         "created": _parse_time(found["metadata"]["created"])})
    return versions


def forget(host_id, account: str) -> None:
    """Remove the account's password and its whole history from the Vault."""
    vault().delete(secret_path(host_id, account))


def _password_of(found: dict) -> str | None:
    data = found.get("data") or {}
    password = data.get("password")
    return password if isinstance(password, str) else None


def _is_live(version: dict, now: datetime) -> bool:
    if version.get("destroyed"):
        return False
    deletion = _parse_time(version.get("deletion_time"))
    return deletion is None or deletion > now


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
