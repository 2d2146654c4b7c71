"""Managed passwords in the Vault: the only place they are kept.

Each managed account's password is one secret of the Vault's versioned API, in
the Vault's reserved part (`hosts/{host_id}/{account}` for a host account, see
names.secret_path; `targetdomains/...` for a directory's), as `{"password": ...}`;
its versions are the password's history, capped by the policy's `max_versions`.
Every function takes that secret's path.

Which version is *current* (the one the target accepts) is the secret's
`custom_metadata["current_version"]` ("0": none). A rotation writes its new
password ahead, as a version above the current one ("pending"), and moves the
mark only once the target took it, so a version above the mark is never handed
out as the account's password unless the target is known to accept it. A secret
without the mark (written before it existed) has its newest live version current.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import current_app

from secrets_manager_service.vault_client import VaultClient

CURRENT_MARK = "current_version"


def vault() -> VaultClient:
    return current_app.extensions["vault_client"]


@dataclass
class History:
    """What the Vault keeps of an account's password: live version numbers (newest first) and the current one."""

    exists: bool
    live: list[int] = field(default_factory=list)
    current: int | None = None
    created: dict[int, datetime] = field(default_factory=dict)

    def above_current(self) -> list[int]:
        """Live versions newer than the current one: pending, or left by an interrupted rotation."""
        floor = self.current or 0
        return [v for v in self.live if v > floor]


def history(path: str) -> History:
    metadata = vault().metadata(path)
    if metadata is None:
        return History(exists=False)
    now = datetime.now(timezone.utc)
    versions = [v for v in metadata.get("versions") or () if _is_live(v, now)]
    live = sorted((v["version"] for v in versions), reverse=True)
    return History(exists=True, live=live, current=_current_of(metadata.get("metadata"), live),
                   created={v["version"]: _parse_time(v.get("created")) for v in versions})


def _current_of(settings: dict | None, live: list[int]) -> int | None:
    """The current version by the secret's mark, among its `live` versions (newest first)."""
    mark = ((settings or {}).get("custom_metadata") or {}).get(CURRENT_MARK)
    if mark is not None and str(mark).isdigit():
        return int(mark) if int(mark) in live else None
    return live[0] if live else None


def _live_passwords(path: str) -> tuple[int | None, list[dict]]:
    """(the current version, every live version `{version, secret, created}` newest first), read
    from the Vault in one call (its live route), whatever the number of versions kept."""
    found = vault().live(path)
    if found is None:
        return None, []
    live = found.get("versions") or ()
    number = _current_of(found, [v["version"] for v in live])
    versions = [{"version": v["version"], "secret": _password_of(v), "created": _parse_time(v.get("created"))}
                for v in live]
    return number, [v for v in versions if v["secret"] is not None]


def read_version(path: str, version: int | None) -> str | None:
    """The password of `version` (None if it is not live, or no version is given)."""
    if version is None:
        return None
    found = vault().read(path, version=version)
    return _password_of(found) if found else None


def current(path: str) -> str | None:
    """The current password, or None if the Vault has none."""
    number, versions = _live_passwords(path)
    return next((v["secret"] for v in versions if v["version"] == number), None)


def store(path: str, password: str, *, max_versions: int) -> int:
    """Write `password` as a new version and make it current at once (it is the target's truth:
    initial passwords, set-password); returns its version number."""
    version = vault().write(path, {"password": password})["version"]
    make_current(path, version, max_versions=max_versions)
    return version


def write_pending(path: str, password: str, *, current_version: int | None, max_versions: int) -> int:
    """Write a rotation's new password ahead, above the current version, without making it current.

    The mark is set first (a secret without one would take its newest version as current), with
    room for one version more than the policy keeps, so writing the pending one never prunes the
    current one.
    """
    vault().set_metadata(path, max_versions=max_versions + 1 if max_versions else 0,
                         custom_metadata={CURRENT_MARK: str(current_version or 0)})
    return vault().write(path, {"password": password})["version"]


def make_current(path: str, version: int, *, max_versions: int) -> None:
    """Mark `version` current; the policy's cap applies again (older versions past it go)."""
    vault().set_metadata(path, max_versions=max_versions,
                         custom_metadata={CURRENT_MARK: str(version)})


def discard(path: str, versions: list[int]) -> None:
    """Destroy versions that never became current (a rotation's new password the target did not take)."""
    if versions:
        vault().destroy(path, versions)


def live_versions(path: str, *, also: int | None = None) -> list[dict]:
    """The versions a checkout hands out, newest first: `[{version, secret, created}]`.

    The current one and those before it; a version above the current one only if it is `also`
    (a pending password the target is known to accept).
    """
    number, versions = _live_passwords(path)
    floor = number or 0
    return [v for v in versions if v["version"] <= floor or v["version"] == also]


def forget(path: str) -> None:
    """Remove the account's password and its whole history from the Vault."""
    vault().delete(path)


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
