"""The versioned (KV v2 style) API over shared secrets: versions, check-and-set, metadata.

It also reaches the Secrets Manager's reserved part: a path that names.is_reserved is
kept apart from shared secrets and only the `service` scope finds it (secrets.service.
namespace decides, for every function here and so for every protocol built on them).
"""
from __future__ import annotations

import re
import uuid

from common import audit, errors
from common.auth import Principal
from common.web import database
from vault_service import names
from vault_service.secrets import sealing, store
from vault_service.secrets.schemas import MAX_DATA_BYTES
from vault_service.secrets.service import SERVICE_SCOPE, namespace
from vault_service.secrets.store import SHARED
from vault_service.versioned.schemas import PAGE_TOKEN_PATTERN
from vault_service.versioned import lifecycle, live_store, password_spec, schemas

MAX_PAGE_SIZE = 1000

# Which scopes may do what, on every route that reaches these functions (the versioned API and
# the HashiCorp KV v2 one); vault_service.acl.access says which operation takes which, and what
# an ACL policy must grant instead.
DATA = ("service",)
MANAGE = ("admin", "hostsManage", "service")
DESTROY = ("admin", "service")
CONFIGURE = ("admin",)

# What POST {versions: [...]} does to each version, by route (who may: vault_service.acl.access;
# scheduling and cancelling a destruction take destroy's scopes, so undelete cannot undo a schedule).
VERSION_ACTIONS = {
    "delete": store.soft_delete_versions,
    "undelete": store.undelete_versions,
    "destroy": store.destroy_versions,
    "schedule-destroy": store.schedule_destroy_versions,
    "cancel-destroy": store.cancel_destroy_versions,
}


class CasMismatch(errors.Conflict):
    """options.cas is not the current version (0 for a secret that does not exist)."""


class CasRequired(errors.ApiError):
    status, code, default_message = 400, "REQUIRED_VALUE_MISSING", "this secret requires options.cas"


class VersionNotLive(errors.NotFound):
    """The version asked for exists but is deleted or destroyed; `metadata` describes it."""

    def __init__(self, metadata: dict):
        super().__init__("secret version is deleted or destroyed")
        self.metadata = metadata


def _version_meta(row: dict, prefix: str = "") -> dict:
    return {
        "version": row[f"{prefix}version"],
        "created": row[f"{prefix}created"],
        "deletion_time": row[f"{prefix}deletion_time"],
        "destroyed": row[f"{prefix}destroyed"],
    }


def _owner(principal: Principal, path: str, *, change: bool, action: str | None = None) -> str:
    """The namespace `path` (a valid name) is kept in for this caller; 404/403 in the reserved part."""
    return namespace(principal, SHARED, path, action=action, change=change, versioned=True)


def _existing(principal: Principal, path: str) -> tuple[str, dict]:
    """(owner, secret) of an existing secret the caller may reach; 404 otherwise."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=False)
    secret = store.find_secret(database(), owner, name)
    if secret is None:
        raise errors.NotFound("secret not found")
    return owner, secret


def read(principal: Principal, path: str, version: int | None) -> dict:
    """The data and metadata of the newest live version, or of live version `version`."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=False, action="secret.read")
    event = audit.new_event("secret.read", _target(path))
    secret = store.find_secret_audited(database(), owner, name, version=version,
                                       event=event, statement=store.V2_READ)
    event["outcome"] = secret["outcome"]
    event["details"] = {"version": secret["v_version"] or version}
    audit.log_event(event)
    if secret["outcome"] == audit.NOT_FOUND:
        raise errors.NotFound("secret version not found (missing, deleted or destroyed)")
    data = sealing.unseal(secret, secret["v_version"], secret["v_ciphertext"])
    return {"data": data, "metadata": _version_meta(secret, "v_")}


def read_exact(principal: Principal, path: str, version: int | None) -> dict:
    """HashiCorp's read: version `version` (None or 0: the current one), never an older live one.

    Like read(), plus the secret's `custom_metadata`; a deleted or destroyed version raises
    VersionNotLive with its metadata.
    """
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=False, action="secret.read")
    event = audit.new_event("secret.read", _target(path))
    secret = store.find_secret_audited(database(), owner, name, version=version or None, event=event,
                                       statement=store.KV_READ)
    event["outcome"] = secret["outcome"]
    event["details"] = {"version": secret["v_version"] or version}
    audit.log_event(event)
    if secret["v_version"] is None:
        raise errors.NotFound("secret version not found")
    meta = {**_version_meta(secret, "v_"), "custom_metadata": secret["custom_metadata"]}
    if secret["v_due"]:  # a scheduled destruction whose time has come: now, as this touches it
        with database().transaction() as cur:
            lifecycle.destroy_due_of(cur, {"id": secret["id"], "name": name})
        meta["destroyed"] = True
    if not secret["v_live"]:
        raise VersionNotLive(meta)
    return {"data": sealing.unseal(secret, secret["v_version"], secret["v_ciphertext"]), "metadata": meta}


def _target(path: str) -> str:
    return f"secret:{path}"


def write(principal: Principal, path: str, data: dict, cas: int | None, *, description: str = "",
          spec: dict | None = None) -> dict:
    """Write a new version, creating the secret if new; `cas` guards against lost updates.

    With a password spec (password_spec; loaded, so possible), a generated password is stored
    under its password_key beside `data`'s keys; only a data read ever shows it.

    Two round trips for a secret that exists (issue 25): its row is read without a lock, then the
    version is written by one statement, its own durable transaction, that writes only if the row
    is still the one read (store.add_version's `unchanged_since`). A new secret, one with due
    versions to destroy first, or a row changed in between takes the locking transaction."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=True, action="secret.write")
    if spec is not None:
        data = {**data, spec["password_key"]: password_spec.generate(spec)}
        if len(sealing.serialize(data)) > MAX_DATA_BYTES:
            raise errors.ApiError(f"data with the generated password must not exceed {MAX_DATA_BYTES} bytes serialised",
                                  code="VALUE_OUT_OF_BOUNDS", property="data").with_status(400)
    row = None
    with database().cursor() as cur:
        secret = store.secret_for_write(cur, owner, name)
        if secret is not None and not secret["has_due_versions"]:
            event, row = _add_version(cur, principal, name, secret, data, cas, description, spec,
                                      unchanged_since=secret["row_version"])
    if row is None:
        with database().transaction() as cur:
            secret = _locked_or_created(cur, principal, owner, name, cas)
            event, row = _add_version(cur, principal, name, secret, data, cas, description, spec)
    audit.log_event(event)
    return {**_version_meta(row), "custom_metadata": secret["custom_metadata"]}


def _locked_or_created(cur, principal: Principal, owner: str, name: str, cas: int | None) -> dict:
    """The secret at `name`, locked in `cur`'s transaction (created, empty, if new), its due
    versions destroyed."""
    secret = store.lock_secret(cur, owner, name)
    if secret is not None:
        lifecycle.destroy_due_of(cur, secret)
        return secret
    if cas not in (None, 0):
        raise _cas_conflict(cas, 0)
    secret_id = str(uuid.uuid4())
    _, wrapped = sealing.new_data_key(secret_id)
    store.insert_secret(cur, secret_id=secret_id, owner=owner, name=name, read_roles=[], write_roles=[],
                        author=principal.sub, dek_key_id=wrapped.key_id, dek_wrapped=wrapped.wrapped,
                        if_absent=True)
    # If another request created it meanwhile, this waits for it and sees its row.
    return store.lock_secret(cur, owner, name)


def _add_version(cur, principal: Principal, name: str, secret: dict, data: dict, cas: int | None,
                 description: str, spec: dict | None, *, unchanged_since: str | None = None) -> tuple[dict, dict | None]:
    """(audit event, version row) of the next version of `secret` after the check-and-set rules;
    the row is None when `unchanged_since` is given and the secret changed (nothing written)."""
    if (secret["cas_required"] or secret["mount_cas_required"]) and cas is None:
        raise CasRequired(property="options.cas")
    if cas is not None and cas != secret["current_version"]:
        raise _cas_conflict(cas, secret["current_version"])
    version = secret["current_version"] + 1
    event = audit.new_event("secret.write", _target(name), details={"version": version})
    row = store.add_version(cur, secret, version=version, created_by=principal.sub,
                            ciphertext=sealing.seal(sealing.data_key_of(secret), secret, version, data),
                            entry_keys=list(data), description=description, password_spec=spec, audit_event=event,
                            unchanged_since=unchanged_since)
    return event, row


def _cas_conflict(cas: int, current: int) -> errors.ApiError:
    return CasMismatch(f"check-and-set failed: cas {cas} but the current version is {current}",
                           property="options.cas")


def delete_latest(principal: Principal, path: str) -> None:
    with database().transaction() as cur:
        secret = _locked(cur, principal, path, "secret.delete_versions")
        if secret["current_version"]:
            store.soft_delete_versions(cur, secret["id"], [secret["current_version"]])
            store.touch(cur, secret["id"], principal.sub)
        audit.record("secret.delete_versions", _target(path), cur=cur, details={"versions": [secret["current_version"]]})


def _locked(cur, principal: Principal, path: str, action: str) -> dict:
    """The existing secret at `path`, locked, for a change by the caller; 403 in the reserved part."""
    name = names.checked(path, "path")
    secret = store.lock_secret(cur, _owner(principal, name, change=True, action=action), name)
    if secret is None:
        raise errors.NotFound("secret not found")
    lifecycle.destroy_due_of(cur, secret)
    return secret


def change_versions(principal: Principal, path: str, versions: list[int], rule: str, **options) -> None:
    """Apply VERSION_ACTIONS[rule] (with `options`, e.g. a pending_period) to the listed versions;
    unknown versions, and versions the rule does not apply to, are skipped."""
    action = VERSION_ACTIONS[rule]
    audit_action = f"secret.{rule.replace('-', '_')}_versions"
    with database().transaction() as cur:
        secret = _locked(cur, principal, path, audit_action)
        action(cur, secret["id"], sorted(set(versions)), **options)
        store.touch(cur, secret["id"], principal.sub)
        audit.record(audit_action, _target(path), cur=cur, details={"versions": sorted(set(versions)), **options})


def metadata(principal: Principal, path: str) -> dict:
    _, secret = _existing(principal, path)
    with database().transaction() as cur:
        lifecycle.destroy_due_of(cur, secret)
        return _metadata_body(secret, lifecycle.shown(cur, secret, store.versions(cur, secret["id"])))


def _metadata_body(secret: dict, versions: list[dict]) -> dict:
    return {
        "metadata": {
            "created": secret["created"],
            "created_by": secret["author"],
            "updated": secret["updated"],
            "updated_by": secret["updated_by"],
            "current_version": secret["current_version"],
            "oldest_version": versions[0]["version"] if versions else 0,
            "max_versions": secret["max_versions"],
            "delete_version_after": secret["delete_version_after"],
            "cas_required": secret["cas_required"],
            "custom_metadata": secret["custom_metadata"],
        },
        "versions": versions,
    }


def set_metadata(principal: Principal, path: str, settings: dict, *, create: bool = True,
                 merge_custom_metadata: bool = False) -> dict:
    """Change settings (creating an empty secret if new, unless not `create`: then 404);
    lowering max_versions prunes at once. With merge_custom_metadata, custom_metadata is
    merged into the stored map and a None value removes its key."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=True, action="secret.metadata.write")
    with database().transaction() as cur:
        secret = store.lock_secret(cur, owner, name)
        if secret is None and not create:
            raise errors.NotFound("secret not found")
        if secret is not None and merge_custom_metadata and settings.get("custom_metadata") is not None:
            settings = {**settings, "custom_metadata": _merged_custom_metadata(secret["custom_metadata"],
                                                                               settings["custom_metadata"])}
        if secret is None:
            secret_id = str(uuid.uuid4())
            _, wrapped = sealing.new_data_key(secret_id)
            store.insert_secret(cur, secret_id=secret_id, owner=owner, name=name, read_roles=[], write_roles=[],
                                author=principal.sub, dek_key_id=wrapped.key_id, dek_wrapped=wrapped.wrapped,
                                if_absent=True)
            secret = store.lock_secret(cur, owner, name)
        lifecycle.destroy_due_of(cur, secret)
        store.update_settings(cur, secret["id"], by=principal.sub, **{
            key: settings.get(key) for key in ("max_versions", "delete_version_after", "cas_required", "custom_metadata")
        })
        if settings.get("max_versions") is not None:
            store.prune_versions(cur, secret["id"], settings["max_versions"], newest=secret["current_version"])
        secret = store.lock_secret(cur, owner, name)
        audit.record("secret.metadata.write", _target(name), cur=cur,
                     details={k: v for k, v in settings.items() if k != "custom_metadata"})
        return _metadata_body(secret, lifecycle.shown(cur, secret, store.versions(cur, secret["id"])))


def _merged_custom_metadata(stored: dict, patch: dict) -> dict:
    merged = {key: value for key, value in {**stored, **patch}.items() if value is not None}
    if len(merged) > schemas.MAX_CUSTOM_METADATA_KEYS:
        raise errors.ApiError(f"custom_metadata may have at most {schemas.MAX_CUSTOM_METADATA_KEYS} keys",
                              code="VALUE_OUT_OF_BOUNDS", property="custom_metadata").with_status(400)
    return merged


def mount_config() -> dict:
    """The mount's settings: {max_versions (0 = 10), cas_required, delete_version_after (seconds)}."""
    return store.mount_config(database())


def set_mount_config(principal: Principal, settings: dict) -> None:
    """Change the mount's settings (absent or None = keep); they apply to the next write."""
    with database().transaction() as cur:
        store.update_mount_config(cur, by=principal.sub, **{
            key: settings.get(key) for key in ("max_versions", "cas_required", "delete_version_after")})
        audit.record("secret.config.write", "secret-config", cur=cur, details=dict(settings))


def delete_metadata(principal: Principal, path: str) -> None:
    with database().transaction() as cur:
        store.delete_secret(cur, _locked(cur, principal, path, "secret.delete")["id"])
        audit.record("secret.delete", _target(path), cur=cur)


def keys(principal: Principal, path: str | None) -> dict:
    prefix = names.checked(path, "path") if path else ""
    if prefix:
        owners = [_owner(principal, prefix, change=False)]
    else:  # the root holds shared names and, for the Secrets Manager alone, its reserved ones
        owners = [SHARED, names.RESERVED_OWNER] if principal.has_scope(SERVICE_SCOPE) else [SHARED]
    found = store.child_keys(database(), owners, prefix)
    if not found:
        raise errors.NotFound("no secrets under this path")
    return {"keys": found}


def list_versions(principal: Principal, path: str, page_size: int, page_token: str | None) -> dict:
    """Versions newest first, a page at a time (after Lockbox's listVersions)."""
    _, secret = _existing(principal, path)
    after = _decode_page_token(page_token) if page_token else None
    with database().transaction() as cur:
        lifecycle.destroy_due_of(cur, secret)
        rows = store.versions(cur, secret["id"], newest_first=True, after=after, limit=page_size + 1)
        more = len(rows) > page_size
        rows = lifecycle.shown(cur, secret, rows[:page_size])
    next_token = _encode_page_token(rows[-1]["version"]) if more else None
    return {"versions": rows, "next_page_token": next_token}


def _encode_page_token(version: int) -> str:
    # The version the next page starts below, as digits: every token PAGE_TOKEN_PATTERN allows
    # is a valid cursor (a version no longer there just starts the page lower).
    return str(version)


def _decode_page_token(token: str) -> int:
    if not re.fullmatch(PAGE_TOKEN_PATTERN, token):
        raise errors.ApiError("page_token is not one this server issued", code="VALUE_INCORRECT_FORMAT",
                              property="page_token").with_status(400)
    return int(token)



def read_live(principal: Principal, path: str) -> dict:
    """Every live version's data, newest first, with the secret's custom_metadata: one audited read
    (the Secrets Manager's password history of an account, in one call whatever the number kept)."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=False, action="secret.read")
    event = audit.new_event("secret.read", _target(path))
    rows = live_store.live_versions_audited(database(), owner, name, event=event)
    secret = rows[0]
    versions = [row["v_version"] for row in rows if row["v_version"] is not None]
    event["outcome"] = audit.SUCCESS if secret["id"] is not None else audit.NOT_FOUND
    event["details"] = {"versions": versions}
    audit.log_event(event)
    if secret["id"] is None:
        raise errors.NotFound("secret not found")
    data_key = sealing.data_key_of(secret) if versions else None
    return {"custom_metadata": secret["custom_metadata"],
            "versions": [{"version": row["v_version"], "created": row["v_created"],
                          "data": sealing.unseal_with(data_key, secret, row["v_version"], row["v_ciphertext"])}
                         for row in rows if row["v_version"] is not None]}
