"""What a Vault process keeps from the database until a change counter moves: the ACL policies
(vault_service.acl.cache) and the workflow grants (vault_service.grants.cache).

Every change bumps its counter in its own transaction. A process reads the counter at most
every `refresh_seconds`, and only while it serves requests that need the data, and reloads
everything when it moved: a change applies everywhere within that time plus one request, and
in steady state a decision costs no query at all."""
from __future__ import annotations

import threading
import time

from common import errors


class CounterCache:
    """Subclasses say how to read the counter (counter) and reload (reload: returns the counter
    the data is as new as), and what a database outage means (unavailable)."""

    def __init__(self, refresh_seconds: float):
        self.refresh_seconds = refresh_seconds
        self.generation: int | None = None  # of what is loaded; None: nothing yet
        self._lock = threading.Lock()
        self._checked_at = float("-inf")

    def check(self) -> None:
        """Reload if the counter moved (read at most every refresh_seconds)."""
        if time.monotonic() - self._checked_at > self.refresh_seconds:
            self._refresh()

    def changed(self) -> None:
        """This process changed the data: the next check reloads at once."""
        self._checked_at = float("-inf")

    def counter(self) -> int:
        raise NotImplementedError

    def reload(self) -> int:
        raise NotImplementedError

    def unavailable(self, exc: errors.DatabaseUnavailable) -> None:
        """The database is down at a check: keep what was loaded (the default), or raise."""

    def _refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at <= self.refresh_seconds:
                return  # another thread just did
            try:
                if self.counter() != self.generation:
                    self.generation = self.reload()
            except errors.DatabaseUnavailable as exc:
                self.unavailable(exc)
            self._checked_at = now
