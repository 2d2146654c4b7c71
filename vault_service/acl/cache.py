"""The compiled ACL of each caller, cached per process.

A caller's ACL depends only on its roles (the groups named after them, and their policies),
so it is compiled once per role set and kept until a policy or group changes. Changes bump a
counter in the database (vault_service.acl.store); each process reads it at most every
REFRESH_SECONDS, while it serves callers that need an ACL, and reloads everything when it moved.
So a change applies everywhere within REFRESH_SECONDS plus one request, and in steady state a
decision costs no query at all. A `service` or other scope-allowed caller never gets here.
"""
from __future__ import annotations


from common import errors
from common.auth import Principal
from common.db import Database
from vault_service.counter_cache import CounterCache
from vault_service.acl import store
from vault_service.acl.matcher import Acl

REFRESH_SECONDS = 2.0  # the contract allows 5 s
MAX_COMPILED = 4096  # role sets kept; beyond that the cache starts over (a new generation would anyway)
DEFAULT_POLICY = "default"


class _Snapshot:
    """The policies and groups of one generation, and the ACLs compiled from them."""

    def __init__(self, generation: int | None, policies: dict[str, list[dict]], groups: dict[str, list[str]]):
        self.generation, self.policies, self.groups = generation, policies, groups
        self.compiled: dict[tuple, Acl | None] = {}


class PolicyCache(CounterCache):
    def __init__(self, db: Database):
        super().__init__(REFRESH_SECONDS)
        self._db = db
        self._snapshot = _Snapshot(None, {}, {})

    def acl_for(self, principal: Principal) -> Acl | None:
        """The caller's ACL, or None when no group applies to it (it then has no policies)."""
        if not principal.roles:
            return None  # groups are named after roles: nothing to look up
        self.check()
        snapshot, roles = self._snapshot, principal.roles
        try:
            return snapshot.compiled[roles]
        except KeyError:
            pass
        acl = _compile(snapshot, roles)
        if len(snapshot.compiled) >= MAX_COMPILED:
            snapshot.compiled.clear()
        snapshot.compiled[roles] = acl
        return acl

    def policy_names(self, principal: Principal) -> list[str]:
        """The caller's identity policies, sorted (`default` among them when it has a group)."""
        acl = self.acl_for(principal)
        return sorted(acl.policies) if acl is not None else []

    def counter(self) -> int:
        return store.generation(self._db)

    def reload(self) -> int:
        self._snapshot = _Snapshot(*store.snapshot(self._db))
        return self._snapshot.generation

    def unavailable(self, exc: errors.DatabaseUnavailable) -> None:
        if self.generation is None:
            raise exc  # nothing loaded yet: no decision without the policies
        # Keep deciding with what was loaded: while the database is down nobody can change a
        # policy, and every KV route answers 503 by itself anyway.


def _compile(snapshot: _Snapshot, roles) -> Acl | None:
    names: set[str] = set()
    matched = False
    for role in roles:
        for key in (role.id, role.name):
            found = snapshot.groups.get(key)
            if found is not None:
                matched = True
                names.update(found)
    if not matched:
        return None
    names.add(DEFAULT_POLICY)
    # A policy a group names but nobody wrote yet (allowed, as in Vault) is listed and grants nothing.
    return Acl([(name, snapshot.policies.get(name, [])) for name in sorted(names)])
