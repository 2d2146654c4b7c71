"""`vault-admin rewrap`: every data key wrapped by the active master key, online.

The data itself is never touched: only each secret's wrapped data key changes, so a key
rotation or a move from the environment to an HSM costs one unwrap and one wrap per secret.
Secrets are walked in id order, a batch per transaction (FOR UPDATE SKIP LOCKED: a writer that
holds a row is never waited for, and the row is taken on the next sweep). A killed run loses
at most its open batch, which rolls back; the next run starts over and skips what is done, so
it is resumable without any state of its own. Readers keep working throughout, because the old
master key stays configured until the run reports none left.
"""
from __future__ import annotations

import sys
import time

from common import crypto
from vault_service.secrets import store

DEFAULT_BATCH = 500
# A sweep that finds rows but cannot take them (writers hold them, or pods still on the old
# active key keep making more) is tried again this many times before the run gives up.
SWEEPS_WITHOUT_PROGRESS = 50
PAUSE_BETWEEN_SWEEPS_SECONDS = 0.2


class Progress:
    """`rewrap: 1500/10000 data keys (15%)` on stderr: redrawn in place on a terminal, a line
    per step of 10% (and at the end) otherwise, so a log keeps it readable."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self._tty = getattr(self.stream, "isatty", lambda: False)()
        self._last_decile = -1

    def update(self, done: int, *, final: bool = False) -> None:
        shown = min(done, self.total) if self.total else done
        percent = 100 if not self.total else shown * 100 // self.total
        width = 30
        bar = "#" * (percent * width // 100) + "." * (width - percent * width // 100)
        line = f"rewrap: [{bar}] {shown}/{self.total} data keys ({percent}%)"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        elif final or percent // 10 > self._last_decile:
            self._last_decile = percent // 10
            self.stream.write(line + "\n")
        self.stream.flush()


def rewrap(db, keyring: crypto.Keyring, *, batch: int = DEFAULT_BATCH, stream=None) -> dict:
    """Re-wrap every data key not wrapped by the active master key; returns
    {"rewrapped", "remaining", "active_key_id", "by_master_key"}."""
    active = keyring.active_key_id
    to_move = sum(n for key_id, n in store.count_by_master_key(db).items() if key_id != active)
    progress = Progress(to_move, stream)
    progress.update(0)
    done, idle_sweeps = 0, 0
    while True:
        moved = _sweep(db, keyring, batch, lambda n: progress.update(done + n))
        done += moved
        remaining = sum(n for key_id, n in store.count_by_master_key(db).items() if key_id != active)
        if remaining == 0:
            break
        idle_sweeps = 0 if moved else idle_sweeps + 1
        if idle_sweeps >= SWEEPS_WITHOUT_PROGRESS:
            break
        time.sleep(PAUSE_BETWEEN_SWEEPS_SECONDS)
    progress.update(done, final=True)
    return {"rewrapped": done, "remaining": remaining, "active_key_id": active,
            "by_master_key": store.count_by_master_key(db)}


def _sweep(db, keyring: crypto.Keyring, batch: int, report) -> int:
    """One pass over the secrets in id order; the number re-wrapped."""
    moved, after = 0, None
    while True:
        with db.transaction() as cur:
            rows = store.wrapped_keys_to_move(cur, not_key_id=keyring.active_key_id, after=after, batch=batch)
            for row in rows:
                rewrapped = keyring.rewrap(crypto.WrappedKey(row["dek_key_id"], bytes(row["dek_wrapped"])), str(row["id"]))
                store.set_wrapped_key(cur, row["id"], rewrapped.key_id, rewrapped.wrapped)
        moved += len(rows)
        if rows:
            report(moved)
            after = rows[-1]["id"]
        if len(rows) < batch:
            return moved
