"""The grants the workflow engine gives, as the Secrets Manager's access checks see them (the
GRANTS_HOOK of common.auth), and the worker's sweep that ends them.

A caller's live grants are read with one indexed lookup (wf_requests_grants), and only when its
token's roles do not already decide a check. The sweep (every second, in the worker) ends the
grants whose window is over, ends the checkouts that needed an ended grant (as on role loss,
audited `checkout.revoke`), and delivers the grant outbox to the Vault (grant_outbox), so a
grant's end holds in both services within 5 s without anyone calling.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask

from common import audit, errors
from common.auth import GrantedRoles
from common.db import Database
from common.web import database
from secrets_manager_service.account_secrets import service as checkouts
from secrets_manager_service.workflows import grant_outbox, service, store

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
SWEEP_BATCH = 100


class LiveGrants(GrantedRoles):
    """One request's view of one user's grants (looked up once, on first need)."""

    def __init__(self, db: Database, user_id: str):
        self._db = db
        self._user_id = user_id
        self._rows: list[dict] | None = None

    def _live(self) -> list[dict]:
        if self._rows is None:
            with self._db.cursor() as cur:
                self._rows = [row for row in store.grants_of(cur, self._user_id) if service.grant_is_live(row)]
        return self._rows

    def role_ids(self) -> frozenset[str]:
        return frozenset(row["role_id"] for row in self._live())

    def used(self, role_ids: frozenset[str]) -> None:
        """Start the window of the FLOATING grants among these that were not used before (and
        tell the Vault, whose window then starts no later)."""
        unstarted = [row["id"] for row in self._live()
                     if row["role_id"] in role_ids and row["grant_type"] == "FLOATING" and row["grant_start"] is None]
        if not unstarted:
            return
        with self._db.transaction() as cur:
            started = store.start_floating(cur, unstarted)
            for row in started:
                audit.record("grant.first_use", str(row["id"]), cur=cur,
                             details={"request_id": str(row["id"]), "user": self._user_id})
                store.queue_grant_state(cur, row["id"], service.grant_state(row))
        if started:
            grant_outbox.deliver_soon()


def hook(db: Database):
    """The app's GRANTS_HOOK: (sub) -> that user's grants for this request."""
    return lambda user_id: LiveGrants(db, user_id)


# --- the worker's sweep -----------------------------------------------------------------------

def sweep(vault) -> None:
    """One round of all of it (needs an app context): the worker's `run --once`."""
    end_what_ended()
    grant_outbox.deliver_due(database(), vault)
    grant_outbox.FirstUseWatch(vault).check_due(database())


def end_what_ended() -> None:
    """End the grants whose window is over, and the checkouts that needed an ended grant."""
    db = database()
    _end_expired(db)
    _end_checkouts_of_ended_grants(db)


def _end_expired(db: Database) -> None:
    """Grants whose window is over, marked ended with their end queued (the Vault has already
    stopped counting them by its own clock; this ends their checkouts and keeps the record)."""
    with db.transaction() as cur:
        for row in store.end_expired_grants(cur, service.FLOATING_UNUSED_LAPSE):
            service.grant_ended(cur, row["id"], row, "expired")


def _end_checkouts_of_ended_grants(db: Database) -> None:
    with db.transaction() as cur:
        for end in store.claim_unswept_ends(cur, SWEEP_BATCH):
            user_id, role_id = end["state"]["user_id"], end["state"]["role"]["id"]
            held = set(store.token_roles_seen(cur, user_id) or ())
            held.update(row["role_id"] for row in store.grants_of(cur, user_id) if service.grant_is_live(row))
            if role_id not in held:  # the role is still held (its token, another grant): nothing needed it alone
                checkouts.revoke_after_role_loss(user_id, role_id, held, reason=f"grant ended ({end['state']['end_reason']})")
            store.checkouts_swept(cur, end["id"])


def start_sweeper(app: Flask, stop: threading.Event) -> list[threading.Thread]:
    """The worker's sweep every SWEEP_SECONDS, until `stop` is set: ends in one thread, delivery
    to the Vault (and the look at FLOATING grants first used there) in another (a Vault that does not answer holds back neither the ends of
    checkouts nor, being a thread apart from the passes, a long rotation)."""
    vault = app.extensions["vault_client"]
    first_uses = grant_outbox.FirstUseWatch(vault)

    def exchange_with_vault():
        grant_outbox.deliver_due(database(), vault)
        first_uses.check_due(database())

    return [_every_second(app, stop, "workflow-grant-ends", end_what_ended),
            _every_second(app, stop, "workflow-grant-outbox", exchange_with_vault)]


def _every_second(app: Flask, stop: threading.Event, name: str, work) -> threading.Thread:
    def run():
        with app.app_context():
            while not stop.wait(SWEEP_SECONDS):
                try:
                    work()
                except errors.ApiError as exc:  # the database is down: the next round tries again
                    log.warning("grant sweep failed", extra={"error_code": exc.code, "sweep": name})
                except Exception:
                    log.exception("grant sweep failed", extra={"sweep": name})

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
