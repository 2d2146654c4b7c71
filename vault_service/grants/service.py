"""The workflow engine's grants in the Vault (docs/API.md "Workflow engine", "Grants").

The Secrets Manager owns the requests; it tells the Vault each grant's state over its service
link (PUT /grants/{request_id}, from its outbox), and the Vault never calls it. A state is
numbered (`sequence`, the Secrets Manager's outbox id): one that is not newer than what the
Vault holds changes nothing, so a retried or late message is harmless, and an ended grant stays
ended. The Vault enforces the window itself (is_live: grant_end by its own clock), so a grant
that expires while no message arrives still counts for nothing.

A FLOATING grant's window starts at its first use in either service: here, the first request
its role is counted for (start_floating_on_first_use); there, a checkout or read that needed it,
which the Secrets Manager then sends. The Vault keeps the earlier start.
"""
from __future__ import annotations

from datetime import datetime, timezone

from common import audit
from common.web import database
from vault_service.grants import store

PERMANENT, FLOATING = "PERMANENT", "FLOATING"


def is_live(grant: dict, now: datetime) -> bool:
    """Whether the grant counts now: the one rule of a grant's window in the Vault."""
    if grant["ended"] is not None:
        return False
    if grant["grant_type"] == PERMANENT:
        return True
    if grant["grant_start"] is None:  # a FLOATING grant not used yet: it lapses unused
        return grant["grant_type"] == FLOATING and (grant["unused_until"] is None or now < grant["unused_until"])
    return grant["grant_start"] <= now and (grant["grant_end"] is None or now < grant["grant_end"])


def view(grant: dict) -> dict:
    return {
        "request_id": grant["request_id"], "user_id": grant["user_id"],
        "role": {"id": grant["role_id"], "name": grant["role_name"]}, "grant_type": grant["grant_type"],
        "grant_start": _iso(grant["grant_start"]), "grant_end": _iso(grant["grant_end"]),
        "floating_length": grant["floating_length"], "unused_until": _iso(grant["unused_until"]),
        "ended": _iso(grant["ended"]), "end_reason": grant["end_reason"], "sequence": grant["sequence"],
        "live": is_live(grant, datetime.now(timezone.utc)),
    }


def _iso(value: datetime | None) -> str | None:
    # Full precision: the Vault's clock check must end a grant when the Secrets Manager's does.
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def apply(request_id, state: dict) -> tuple[dict, bool]:
    """Apply one state the Secrets Manager sent; (the grant as held now, whether it changed)."""
    with database().transaction() as cur:
        held = store.lock(cur, request_id)
        if held is not None and (held["sequence"] >= state["sequence"] or held["ended"] is not None):
            return held, False  # a repeat, a late one, or after the end: the end is final
        row = {
            "request_id": request_id, "user_id": state["user_id"], "role_id": state["role"]["id"],
            "role_name": state["role"].get("name") or state["role"]["id"], "grant_type": state["grant_type"],
            "grant_start": state.get("grant_start"), "grant_end": state.get("grant_end"),
            "floating_length": state.get("floating_length") or 0, "unused_until": state.get("unused_until"),
            "ended": datetime.now(timezone.utc) if state["ended"] else None,
            "end_reason": (state.get("end_reason") or "ended") if state["ended"] else None,
            "sequence": state["sequence"],
        }
        if held is not None and held["grant_type"] == FLOATING and held["grant_start"] is not None:
            if row["grant_start"] is None or held["grant_start"] < row["grant_start"]:
                row["grant_start"], row["grant_end"] = held["grant_start"], held["grant_end"]  # started here first
        if not store.save(cur, row):
            return store.lock(cur, request_id), False  # a concurrent first state got there first
        audit.record("grant.end" if row["ended"] else "grant.apply", f"grant:{request_id}", cur=cur, details={
            "request_id": str(request_id), "user": row["user_id"], "role_id": row["role_id"],
            "grant_type": row["grant_type"], "sequence": row["sequence"],
            **({"reason": row["end_reason"]} if row["ended"] else {})})
    return row, True


def find(request_id) -> dict | None:
    return store.find(database(), request_id)


def start_floating_on_first_use(db, request_id) -> None:
    """A FLOATING grant counted for the first time here: its window starts now (audited)."""
    with db.transaction() as cur:
        row = store.start_floating(cur, request_id)
        if row is not None:
            audit.record("grant.first_use", f"grant:{request_id}", cur=cur,
                         details={"request_id": str(request_id), "user": row["user_id"], "role_id": row["role_id"]})
