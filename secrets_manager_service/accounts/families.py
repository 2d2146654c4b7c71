"""The account families, by path and by kind."""
from __future__ import annotations

from secrets_manager_service.accounts.directory import DirectoryAccounts
from secrets_manager_service.accounts.family import AccountFamily
from secrets_manager_service.accounts.hosts import HostAccounts

HOSTS: AccountFamily = HostAccounts()
DIRECTORY: AccountFamily = DirectoryAccounts()
FAMILIES: tuple[AccountFamily, ...] = (HOSTS, DIRECTORY)  # listings merge them in this order
_BY_KIND = {family.kind: family for family in FAMILIES}


def family_of(path: str) -> AccountFamily:
    """The family whose accounts' paths look like `path` (hosts' when no other claims it)."""
    return next(family for family in (DIRECTORY, HOSTS) if family.claims(path))


def by_kind(kind: str) -> AccountFamily:
    return _BY_KIND[kind]
