"""The grants' way to the Vault: an outbox (wf_grant_outbox) and its sender.

Every grant change writes its state to the outbox in the transaction of the change
(store.queue_grant_state), so no change is lost to a crash or a Vault outage between the commit
and the call. The sender delivers the states in id order to PUT /vault/api/v1/grants/{request_id}
with the id as the state's `sequence` (the Vault applies only newer ones: a repeat after a lost
answer is harmless). One process delivers at a time (an advisory lock), and a state that cannot
be delivered holds back the ones after it, so every grant's states land in the order they were
made. Delivery is kicked right after the commit by a thread of the process that made the change
(deliver_soon; it gives up after KICK_ROUNDS tries) and retried by the worker every second
(secrets_manager_service.workflows.grants), so a Vault outage only delays it.

A FLOATING grant first used in the Vault starts there first: the sender takes the Vault's start
from its answer, and FirstUseWatch asks the Vault about the grants not yet used here.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from flask import current_app

from common import audit, errors
from common.db import Database
from secrets_manager_service.workflows import store

log = logging.getLogger(__name__)

BATCH = 50
RETRY_SECONDS = 1.0  # while something waits: how often this process tries again
KICK_ROUNDS = 30  # then a kicked thread leaves what still waits to the worker
MAX_BACKOFF_SECONDS = 4.0  # a Vault back up is reached within this (the contract wants ends in 5 s)
REFUSED = 400  # the Vault found the state malformed: sending it again cannot help


def deliver_due(db: Database, vault) -> bool:
    """Deliver the due states, oldest first; whether some still wait (the Vault is unreachable,
    a retry is not due yet, or another process is delivering)."""
    with db.transaction() as cur:
        if not store.lock_grant_delivery(cur):
            return True
        rows = store.undelivered_grant_states(cur, BATCH)
        for row in rows:
            if not row["due"]:
                return True
            problem, held = _send(vault, row)
            if problem is None:
                store.grant_state_delivered(cur, row["id"])
                adopt_vault_start(cur, row["request_id"], held)
                continue
            refused = problem.startswith(f"the Vault answered {REFUSED}")
            store.grant_state_failed(cur, row["id"], problem, refused=refused,
                                     backoff_seconds=min(2 ** row["attempts"] * 0.25, MAX_BACKOFF_SECONDS))
            if refused:  # a bug, not an outage: say so loudly, and let the states after it go
                log.error("the Vault refused a grant state", extra={"outbox_id": row["id"]})
                continue
            log.warning("a grant state waits for the Vault", extra={"outbox_id": row["id"], "problem": problem})
            return True
        return len(rows) == BATCH


def _send(vault, row: dict) -> tuple[str | None, dict | None]:
    """PUT the state; (None, the grant as the Vault holds it) when the Vault took it, else (what
    went wrong, no secret in it; None)."""
    try:
        status, held = vault.put_grant(str(row["request_id"]), {**row["state"], "sequence": row["id"]})
    except errors.ApiError as exc:
        return exc.message, None
    return (None, held) if 200 <= status < 300 else (f"the Vault answered {status}", None)


# --- a FLOATING grant first used in the Vault ---------------------------------------------------
# Its window starts at its first use in either service, and the Vault never calls us: it keeps
# the earlier start of the two, and we learn it from its answer to our next state, or by asking
# (FirstUseWatch), so our window ends when the Vault's does, not at a later first use of ours.

FIRST_USE_CHECK_SECONDS = 3.0  # how stale our start may be: within the contract's 5 s for an end
FIRST_USE_BATCH = 100  # grants asked about per check, round-robin over all unstarted ones


def adopt_vault_start(cur, request_id, held: dict | None) -> None:
    """Keep the Vault's start of a FLOATING grant when it is earlier than ours (audited as its
    first use, in the Vault)."""
    if not held or held.get("grant_type") != "FLOATING" or not held.get("grant_start") or not held.get("grant_end"):
        return
    try:
        start, end = datetime.fromisoformat(held["grant_start"]), datetime.fromisoformat(held["grant_end"])
    except (TypeError, ValueError):
        log.warning("the Vault sent a grant window that is not RFC 3339", extra={"request_id": str(request_id)})
        return
    row = store.adopt_earlier_start(cur, request_id, start, end)
    if row is not None:
        audit.record("grant.first_use", str(request_id), cur=cur,
                     details={"request_id": str(request_id), "user": row["target_user_id"], "first_used_in": "vault"})


class FirstUseWatch:
    """The worker's look, every FIRST_USE_CHECK_SECONDS, at the Vault's copy of the FLOATING grants
    not used here yet, FIRST_USE_BATCH at a time (a cursor goes round them all)."""

    def __init__(self, vault):
        self._vault = vault
        self._after = None  # the last request id asked about; None: start from the first
        self._due = 0.0

    def check_due(self, db: Database) -> None:
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + FIRST_USE_CHECK_SECONDS
        with db.cursor() as cur:
            rows = store.unstarted_floating_grants(cur, self._after, FIRST_USE_BATCH)
        self._after = rows[-1]["id"] if len(rows) == FIRST_USE_BATCH else None
        for row in rows:
            try:
                held = self._vault.grant(str(row["id"]))
            except errors.IntraServiceError:
                return  # the Vault is away (its client said so): the next check asks again
            if held is not None and held.get("grant_start"):
                with db.transaction() as cur:
                    adopt_vault_start(cur, row["id"], held)


class Sender:
    """A process's kick after a commit: a thread that delivers until nothing waits, then ends
    (the next change starts another), so an idle process polls nothing."""

    def __init__(self, db: Database, vault):
        self._db, self._vault = db, vault
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._lock:
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="workflow-grants", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        for _round in range(KICK_ROUNDS):
            self._wake.clear()
            try:
                waiting = deliver_due(self._db, self._vault)
            except Exception:  # the database is down: the worker and the next change try again
                log.warning("workflow grants: the outbox could not be read", exc_info=True)
                waiting = True
            if waiting:
                self._wake.wait(RETRY_SECONDS)
                continue
            with self._lock:
                if not self._wake.is_set():
                    self._thread = None
                    return
        with self._lock:  # the Vault stays away: the worker goes on retrying; the next change kicks again
            self._thread = None


_senders: dict[int, Sender] = {}
_senders_lock = threading.Lock()


def deliver_soon() -> None:
    """After a commit that queued grant states: deliver them now, from a thread of this process."""
    app = current_app._get_current_object()
    with _senders_lock:
        sender = _senders.get(id(app))
        if sender is None:
            sender = _senders[id(app)] = Sender(app.extensions["db"], app.extensions["vault_client"])
    sender.poke()
