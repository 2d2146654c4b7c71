"""Managed directory accounts' passwords in the Vault: `targetdomains/{domain_id}/{managed_account_id}`.

The same versioned `{"password"}` secrets as host accounts', under the same rules
(account_passwords: a current mark, pending versions written ahead), in the Vault's
reserved part; the database never holds one.
"""
from __future__ import annotations

from secrets_manager_service import account_passwords


def path(domain_id, managed_id) -> str:
    return f"targetdomains/{domain_id}/{managed_id}"


def store(domain_id, managed_id, password: str, *, max_versions: int) -> int:
    """Write `password` as the current version (an onboarding's known password); returns its version."""
    return account_passwords.store(path(domain_id, managed_id), password, max_versions=max_versions)


def live_versions(domain_id, managed_id, *, also: int | None = None) -> list[dict]:
    return account_passwords.live_versions(path(domain_id, managed_id), also=also)


def forget(domain_id, managed_id) -> None:
    account_passwords.forget(path(domain_id, managed_id))
