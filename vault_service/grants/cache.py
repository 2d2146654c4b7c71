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
import threading
import time
from datetime import datetime, timezone

from common import errors
from common.auth import Principal, Role
from common.db import Database
from vault_service.grants import service, store

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0


class GrantCache:
    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._generation: int | None = None
        self._by_user: dict[str, list[dict]] = {}

    def live_roles(self, user_id: str) -> list[dict]:
        """The user's grants that count now (the rows)."""
        if time.monotonic() - self._checked_at > REFRESH_SECONDS:
            self._refresh()
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
        added = tuple(dict.fromkeys(Role(grant["role_id"], grant["role_name"]) for grant in grants))
        return dataclasses.replace(principal, roles=principal.roles + added,
                                   role_ids=principal.role_ids | {role.id for role in added})

    def changed(self) -> None:
        """This process changed a grant: the next request reloads at once."""
        self._checked_at = float("-inf")

    def _first_use(self, grant: dict) -> None:
        try:
            service.start_floating_on_first_use(self._db, grant["request_id"])
        except errors.DatabaseUnavailable:
            return  # counted as unused for now; the next request tries again
        self.changed()

    def _refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at <= REFRESH_SECONDS:
                return  # another thread just did
            try:
                if store.generation(self._db) != self._generation:
                    generation, rows = store.snapshot(self._db)
                    by_user: dict[str, list[dict]] = {}
                    for row in rows:
                        by_user.setdefault(row["user_id"], []).append(row)
                    self._generation, self._by_user = generation, by_user
            except errors.DatabaseUnavailable:
                # Keep what was loaded (nothing, at worst: a grant only ever adds a role, so not
                # knowing one refuses). While the database is down nobody can start or end a
                # grant here, and the clock still ends expired ones.
                log.warning("the Vault's grants could not be reloaded")
            self._checked_at = now
