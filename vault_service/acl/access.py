"""Who may do an operation on a KV path: its scopes, or else the caller's ACL policies.

The one table of what each operation of the KV v2 API (/v1) and of the versioned API needs:
the scopes that allow it (the contract's access table) and the capability a policy must
grant on `<mount>/<family>/<name>`, as HashiCorp Vault names them. A caller is allowed if
one of its scopes allows, or else if its policies grant the capability; the reserved secrets
stay out of every policy's reach. Refusals by policy are audited with the decision.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app

from common import audit, errors
from common.auth import Principal, current_principal
from common.web import database
from vault_service import names
from vault_service.acl import matcher
from vault_service.acl.cache import PolicyCache
from vault_service.acl.matcher import Acl
from vault_service.secrets import store as secrets_store
from vault_service.secrets.store import SHARED
from vault_service.versioned.service import CONFIGURE, DATA, DESTROY, MANAGE

WRITE = "create|update"  # create for a new secret, update for an existing one (Vault's existence check)
DEFAULT_MOUNT = "secret"  # what the versioned API's paths are named under when /v1 is off


class PolicyDenied(errors.PermissionDenied):
    """The caller's policies do not grant what the operation needs (the /v1 adapter answers it
    in Vault's words)."""

    default_message = "permission denied: the caller's ACL policies do not grant this"


@dataclass(frozen=True)
class Operation:
    family: str  # the path family under the mount: data, metadata, delete, ...
    capability: str | None  # what a policy must grant; None: scopes only (config)
    scopes: tuple[str, ...]  # the scopes that allow it without any policy
    action: str  # the audit action of a refusal


READ_DATA = Operation("data", "read", DATA, "secret.read")
# Every live version's data at once (ours, for the Secrets Manager's checkouts): the data scope
# alone; no policy grants it, as HashiCorp's KV has no such read.
READ_LIVE_DATA = Operation("data", None, DATA, "secret.read")
WRITE_DATA = Operation("data", WRITE, DATA, "secret.write")
PATCH_DATA = Operation("data", "patch", DATA, "secret.write")
DELETE_DATA = Operation("data", "delete", MANAGE, "secret.delete_versions")
READ_SUBKEYS = Operation("subkeys", "read", DATA, "secret.read")
DELETE_VERSIONS = Operation("delete", "update", MANAGE, "secret.delete_versions")
UNDELETE_VERSIONS = Operation("undelete", "update", MANAGE, "secret.undelete_versions")
DESTROY_VERSIONS = Operation("destroy", "update", DESTROY, "secret.destroy_versions")
READ_METADATA = Operation("metadata", "read", MANAGE, "secret.metadata.read")
WRITE_METADATA = Operation("metadata", WRITE, MANAGE, "secret.metadata.write")
PATCH_METADATA = Operation("metadata", "patch", MANAGE, "secret.metadata.write")
DELETE_METADATA = Operation("metadata", "delete", MANAGE, "secret.delete")
LIST_METADATA = Operation("metadata", "list", MANAGE, "secret.list")
READ_CONFIG = Operation("config", None, MANAGE, "secret.config.read")
WRITE_CONFIG = Operation("config", None, CONFIGURE, "secret.config.write")
# The versioned API's version page reads what metadata GET reads.
LIST_VERSIONS = READ_METADATA
# Lockbox's scheduled destruction (the versioned API only): what destroy needs, scopes and
# capability alike, since a schedule ends in a destruction and only its cancel undoes it.
SCHEDULE_DESTROY_VERSIONS = Operation("destroy", "update", DESTROY, "secret.schedule_destroy_versions")
CANCEL_DESTROY_VERSIONS = Operation("destroy", "update", DESTROY, "secret.cancel_destroy_versions")
# POST {versions: [...]} by route (versioned.service.VERSION_ACTIONS).
VERSION_OPERATIONS = {"delete": DELETE_VERSIONS, "undelete": UNDELETE_VERSIONS, "destroy": DESTROY_VERSIONS,
                      "schedule-destroy": SCHEDULE_DESTROY_VERSIONS, "cancel-destroy": CANCEL_DESTROY_VERSIONS}

OPERATIONS = (READ_DATA, WRITE_DATA, PATCH_DATA, DELETE_DATA, READ_SUBKEYS, DELETE_VERSIONS, UNDELETE_VERSIONS,
              DESTROY_VERSIONS, READ_METADATA, WRITE_METADATA, PATCH_METADATA, DELETE_METADATA, LIST_METADATA,
              READ_CONFIG, WRITE_CONFIG)


def mount() -> str:
    return current_app.extensions.get("kv_mount") or DEFAULT_MOUNT


def cache() -> PolicyCache:
    return current_app.extensions["acl_cache"]


def policy_path(operation: Operation, name: str) -> str:
    """The path a policy names for `operation` on `name`; a LIST's ends in '/' as in Vault."""
    if operation.family == "config":
        return f"{mount()}/config"
    if operation.capability == "list":
        return f"{mount()}/metadata/{name}/" if name else f"{mount()}/metadata/"
    return f"{mount()}/{operation.family}/{name}"


def authorize(principal: Principal, operation: Operation, name: str = "") -> Acl | None:
    """Allow `operation` on `name` (a KV path, "" for the mount's root) or raise.

    Returns None when a scope allowed it, or the ACL that did (a LIST then shows only what the
    ACL lets the caller see: visible_keys). Without an allowing scope or any policy, the
    versioned API's scope refusal; with policies that do not grant it, PolicyDenied (audited).
    """
    if principal.has_scope(*operation.scopes):
        return None
    acl = cache().acl_for(principal) if operation.capability else None
    if acl is None:
        raise errors.PermissionDenied(f"the token lacks a required scope (one of: {', '.join(operation.scopes)})")
    granted = _policy_grant(acl, operation, name)
    needed = _needed(operation, name, granted)
    if not granted & needed:
        audit.record(operation.action, f"secret:{name}", audit.DENIED, details={
            "reason": "policy", "path": policy_path(operation, name), "capability": _capability_name(needed),
            "policies": list(acl.policies)})
        raise PolicyDenied()
    return acl


def scoped(operation: Operation):
    """View decorator of the versioned API: authorize() on the view's `path` before the body or
    query is parsed (the contract's order: token, scope or policy, shape), as common.auth.scoped."""
    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            authorize(current_principal(), operation, kwargs.get("path") or "")
            return view(*args, **kwargs)
        return checked
    return decorate


def _policy_grant(acl: Acl, operation: Operation, name: str) -> int:
    """The capabilities of `operation` the ACL grants on `name`: none on a reserved secret, none
    under a deny."""
    if names.is_reserved(name):
        return 0
    granted = acl.capabilities(policy_path(operation, name), listing=operation.capability == "list")
    return 0 if granted & matcher.DENY else granted & _bits_of(operation)


def _needed(operation: Operation, name: str, granted: int) -> int:
    if operation.capability != WRITE:
        return _bits_of(operation)
    both = matcher.CREATE | matcher.UPDATE
    if granted & both == both:
        return both  # either way allowed: no lookup
    # Vault's existence check: create for a new secret, update for an existing one (when neither
    # is granted, only to name the right one in the refusal's audit event).
    exists = secrets_store.find_secret(database(), SHARED, name) is not None
    return matcher.UPDATE if exists else matcher.CREATE


def _capability_name(bits: int) -> str:
    return "/".join(name for name, bit in matcher.BITS.items() if bits & bit)


def visible_keys(acl: Acl | None, prefix: str, keys: list[str]) -> list[str]:
    """The LIST keys a policy-allowed caller may see: those under paths it may list or read
    (ours: Vault shows every key to whoever may list the folder)."""
    if acl is None:
        return keys
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    seen = []
    for key in keys:
        full = base + key
        metadata, data = f"{mount()}/metadata/{full}", f"{mount()}/data/{full}"
        if key.endswith("/"):
            visible = (acl.may_reach_under(metadata, matcher.LIST | matcher.READ)
                       or acl.may_reach_under(data, matcher.READ))
        else:
            visible = (_grants(acl.capabilities(metadata), matcher.LIST | matcher.READ)
                       or _grants(acl.capabilities(data), matcher.READ))
        if visible:
            seen.append(key)
    return seen


def _grants(bits: int, wanted: int) -> bool:
    return not bits & matcher.DENY and bool(bits & wanted)


# --- what sys/capabilities-self answers ----------------------------------------------

# Paths outside the mount that every valid token reaches, and what their routes serve.
_ANY_TOKEN_PATHS = {"auth/token/lookup-self": ("read", "update"), "sys/capabilities-self": ("update",),
                    "sys/mounts": ("read",)}
_ANY_TOKEN_PREFIXES = {"sys/internal/ui/mounts/": ("read",), "sys/mounts-all/": ("read",)}
# The policy and group routes: scopes only, never a policy.
POLICY_WRITERS, POLICY_READERS = ("admin",), ("admin", "vaultManage")
_MANAGED_PREFIXES = ("sys/policies/acl", "sys/policy", "identity/group/name")


def capabilities(principal: Principal, path: str) -> list[str]:
    """What the caller may do on `path`, as the routes decide it: its scopes' capabilities plus,
    on KV paths, its policies'; ["deny"] for nothing. `root` is never among them."""
    path = path.lstrip("/")
    bits = 0
    family, name = _kv_parts(path)
    if family is not None:
        for operation in OPERATIONS:
            if operation.family == family and _applies(operation, name):
                bits |= _granted(principal, operation, name)
    else:
        for capability in _ANY_TOKEN_PATHS.get(path, ()):
            bits |= matcher.BITS[capability]
        for prefix, served in _ANY_TOKEN_PREFIXES.items():
            if path.startswith(prefix):
                for capability in served:
                    bits |= matcher.BITS[capability]
        if path.startswith(_MANAGED_PREFIXES):
            if principal.has_scope(*POLICY_WRITERS):
                bits |= matcher.CREATE | matcher.READ | matcher.UPDATE | matcher.DELETE | matcher.LIST
            elif principal.has_scope(*POLICY_READERS):
                bits |= matcher.READ | matcher.LIST
    return matcher.names_of(bits)


def _applies(operation: Operation, name: str) -> bool:
    """config has no name; a LIST may name the root; everything else needs a name."""
    if operation.family == "config":
        return name == ""
    return bool(name) or operation.capability == "list"


def _granted(principal: Principal, operation: Operation, name: str) -> int:
    """The capabilities of `operation` that authorize() would allow on `name` (no audit, no raise)."""
    offered, reserved = _bits_of(operation), names.is_reserved(name)
    if principal.has_scope(*operation.scopes):
        # The reserved secrets answer only `service`: to other scopes they do not exist.
        return offered if not reserved or principal.has_scope("service") else 0
    if operation.capability is None:
        return 0
    acl = cache().acl_for(principal)
    return 0 if acl is None else _policy_grant(acl, operation, name)


def _kv_parts(path: str) -> tuple[str | None, str]:
    """(family, name) of a path in the mount; (None, "") for any other path."""
    first, _, rest = path.partition("/")
    if first != current_app.extensions.get("kv_mount") or not first:
        return None, ""
    family, _, name = rest.partition("/")
    if family not in _FAMILIES:
        return None, ""
    return family, name.rstrip("/")


def _bits_of(operation: Operation) -> int:
    if operation.capability is None:
        return matcher.READ if operation is READ_CONFIG else matcher.UPDATE
    if operation.capability == WRITE:
        return matcher.CREATE | matcher.UPDATE
    return matcher.BITS[operation.capability]


_FAMILIES = frozenset(operation.family for operation in OPERATIONS)
