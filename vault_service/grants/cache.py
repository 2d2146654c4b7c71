"""The open grants, cached per process, and the hook that counts a caller's live ones as its
token's roles (common.auth.ROLES_HOOK).

Changes bump a counter in the database (vault_service.grants.store); each process reads it at
most every REFRESH_SECONDS while it serves requests, and reloads the open grants when it moved.
So a grant's start or end applies everywhere within REFRESH_SECONDS plus one request (the
contract allows 5 s), and the check itself costs no query: a caller without grants costs one
dict lookup, one with grants a clock check per grant. A grant's end by time needs no message
and no reload: service.is_live compares with the clock on every request.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

from common import errors
from common.auth import Principal, Role
from common.db import Database
from vault_service.counter_cache import CounterCache
from vault_service.grants import service, store

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
_GRANTED_KEPT = 4096  # principals with grants kept made; beyond that the cache starts over


class GrantCache(CounterCache):
    def __init__(self, db: Database):
        super().__init__(REFRESH_SECONDS)
        self._db = db
        self._by_user: dict[str, list[dict]] = {}
        self._granted: dict[tuple, tuple[Principal, Principal]] = {}  # with_grants' principals

    def live_roles(self, user_id: str) -> list[dict]:
        """The user's grants that count now (the rows)."""
        self.check()
        grants = self._by_user.get(user_id)
        if not grants:
            return []
        now = datetime.now(timezone.utc)
        return [grant for grant in grants if service.is_live(grant, now)]

    def with_grants(self, principal: Principal) -> Principal:
        """The caller with the roles of its live grants beside its token's, for every check of
        this request (v1 read_roles/write_roles in SQL and Python, ACL policy groups by role id
        or name). A role the token carries already is not a use of the grant."""
        grants = [grant for grant in self.live_roles(principal.sub) if grant["role_id"] not in principal.role_ids]
        if not grants:
            return principal
        for grant in grants:
            if grant["grant_type"] == service.FLOATING and grant["grant_start"] is None:  # counted now: used now
                self._first_use(grant)
        # The same caller with the same grants is the same principal: made once (dataclasses.replace
        # was a fortieth of such a read, issue 25). By the principal's identity (the token's
        # validator keeps one per token), held by the entry so that the identity stays its own.
        key = (id(principal), tuple([(grant["role_id"], grant["role_name"]) for grant in grants]))
        kept = self._granted.get(key)
        if kept is not None and kept[0] is principal:
            return kept[1]
        added = tuple(dict.fromkeys(Role(grant["role_id"], grant["role_name"]) for grant in grants))
        granted = dataclasses.replace(principal, roles=principal.roles + added,
                                      role_ids=principal.role_ids | {role.id for role in added})
        if len(self._granted) >= _GRANTED_KEPT:
            self._granted.clear()
        self._granted[key] = (principal, granted)
        return granted

    def _first_use(self, grant: dict) -> None:
        try:
            service.start_floating_on_first_use(self._db, grant["request_id"])
        except errors.DatabaseUnavailable:
            return  # counted as unused for now; the next request tries again
        self.changed()

    def counter(self) -> int:
        return store.generation(self._db)

    def reload(self) -> int:
        generation, rows = store.snapshot(self._db)
        by_user: dict[str, list[dict]] = {}
        for row in rows:
            by_user.setdefault(row["user_id"], []).append(row)
        self._by_user = by_user
        return generation

    def unavailable(self, exc: errors.DatabaseUnavailable) -> None:
        # Keep what was loaded (nothing, at worst: a grant only ever adds a role, so not knowing
        # one refuses). While the database is down nobody can start or end a grant here, and the
        # clock still ends expired ones.
        log.warning("the Vault's grants could not be reloaded")
