"""The grants the workflow engine gives, as the Secrets Manager's access checks see them: the
GRANTS_HOOK of common.auth. A caller's live grants are read with one indexed lookup
(wf_requests_grants), and only when its token's roles do not already decide a check."""
from __future__ import annotations

import logging

from common import audit
from common.auth import GrantedRoles
from common.db import Database
from secrets_manager_service.workflows import service, store

log = logging.getLogger(__name__)


class LiveGrants(GrantedRoles):
    """One request's view of one user's grants (looked up once, on first need)."""

    def __init__(self, db: Database, user_id: str):
        self._db = db
        self._user_id = user_id
        self._rows: list[dict] | None = None

    def _live(self) -> list[dict]:
        if self._rows is None:
            self._rows = [row for row in store.grants_of(self._db, self._user_id) if service.grant_is_live(row)]
        return self._rows

    def role_ids(self) -> frozenset[str]:
        return frozenset(row["role_id"] for row in self._live())

    def used(self, role_ids: frozenset[str]) -> None:
        """Start the window of the FLOATING grants among these that were not used before."""
        unstarted = [row["id"] for row in self._live()
                     if row["role_id"] in role_ids and row["grant_type"] == "FLOATING" and row["grant_start"] is None]
        if not unstarted:
            return
        with self._db.transaction() as cur:
            for request_id in store.start_floating(cur, unstarted):
                audit.record("grant.first_use", str(request_id), cur=cur,
                             details={"request_id": str(request_id), "user": self._user_id})


def hook(db: Database):
    """The app's GRANTS_HOOK: (sub) -> that user's grants for this request."""
    return lambda user_id: LiveGrants(db, user_id)
