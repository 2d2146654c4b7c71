"""Versions as Lockbox keeps them: what a versions list shows, and destruction when it is due.

A version scheduled for destruction is destroyed for good at its destroy_at. Two things see
to it, so neither a quiet secret nor a busy one keeps a due ciphertext:

- the touch: every request that changes a secret's versions or lists them destroys its due
  versions first, in its own transaction (destroy_due_of), so it never acts on or shows a
  version whose time has come; a data read of a due version destroys it too (read_exact);
- the sweep: `vault-admin destroy-due` (a Kubernetes CronJob, a timer in `make run`) destroys
  due versions of every secret, one version per transaction (destroy_every_due), so a sweep
  stopped at any point leaves each version intact or destroyed, never half of it.
"""
from __future__ import annotations

from common import audit
from common.db import Database
from vault_service.secrets import sealing, store

SWEEPER = "vault-admin destroy-due"  # the principal of the sweep's audit events


def destroy_due_of(cur, secret: dict) -> None:
    """Destroy the due versions of `secret` (locked by the caller, or not yet read) in `cur`'s
    transaction, audited as the request that touched it. A row from store.lock_secret says
    whether there are any (`has_due_versions`): none, no statement."""
    if not secret.get("has_due_versions", True):
        return
    event = audit.new_event("secret.destroy_versions", f"secret:{secret['name']}")
    destroyed = store.destroy_due(cur, secret_id=secret["id"], audit_event=event)
    if destroyed:
        audit.log_event({**event, "details": {"versions": [row["version"] for row in destroyed], "scheduled": True}})


def destroy_one_due(db: Database) -> dict | None:
    """Destroy one due version of any secret in a transaction of its own; None when none is due."""
    event = {"service": "vault", "request_id": None, "principal": SWEEPER, "action": "secret.destroy_versions"}
    with db.transaction() as cur:
        destroyed = store.destroy_due(cur, limit=1, audit_event=event)
    if not destroyed:
        return None
    (row,) = destroyed
    audit.log_event({**event, "target": f"secret:{row['name']}", "outcome": audit.SUCCESS,
                     "details": {"versions": [row["version"]], "scheduled": True}})
    return row


def destroy_every_due(db: Database) -> int:
    """Destroy every due version, one per transaction; how many."""
    count = 0
    while destroy_one_due(db) is not None:
        count += 1
    return count


def shown(cur, secret: dict, rows: list[dict]) -> list[dict]:
    """Version rows (store.versions) as the API shows them.

    A version written before entry keys were kept (migration 0006) has none stored: its data is
    decrypted here, once, and its keys stored, so no later list decrypts it again. Only the keys
    leave this function, never a value.
    """
    for row in rows:
        ciphertext = row.pop("unlisted_ciphertext")
        if row["payload_entry_keys"] is None:
            keys = sorted(sealing.unseal(secret, row["version"], ciphertext)) if ciphertext is not None else []
            store.set_entry_keys(cur, secret["id"], row["version"], keys)
            row["payload_entry_keys"] = keys
        row["password_payload_specification"] = row.pop("password_spec")
    return rows
