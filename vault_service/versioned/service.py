"""The versioned (KV v2 style) API over shared secrets: versions, check-and-set, metadata.

It also reaches the Secrets Manager's reserved part: a path that names.is_reserved is
kept apart from shared secrets and only the `service` scope finds it (secrets.service.
namespace decides, for every function here and so for every protocol built on them).
"""
from __future__ import annotations

import base64
import uuid

from common import audit, errors
from common.auth import Principal
from common.schemas import INT32_MAX
from common.web import database
from vault_service import names
from vault_service.secrets import sealing, store
from vault_service.secrets.service import SERVICE_SCOPE, namespace
from vault_service.secrets.store import SHARED

MAX_PAGE_SIZE = 1000


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


def _target(path: str) -> str:
    return f"secret:{path}"


def write(principal: Principal, path: str, data: dict, cas: int | None) -> dict:
    """Write a new version, creating the secret if new; `cas` guards against lost updates."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=True, action="secret.write")
    with database().transaction() as cur:
        secret = store.lock_secret(cur, owner, name)
        if secret is None:
            if cas not in (None, 0):
                raise _cas_conflict(cas, 0)
            secret_id = str(uuid.uuid4())
            data_key, wrapped = sealing.new_data_key(secret_id)
            store.insert_secret(cur, secret_id=secret_id, owner=owner, name=name, read_roles=[], write_roles=[],
                                author=principal.sub, dek_key_id=wrapped.key_id, dek_wrapped=wrapped.wrapped,
                                if_absent=True)
            # If another request created it meanwhile, this waits for it and sees its row.
            secret = store.lock_secret(cur, owner, name)
            if secret["id"] != uuid.UUID(secret_id):
                data_key = sealing.data_key_of(secret)
        else:
            data_key = sealing.data_key_of(secret)
        if secret["cas_required"] and cas is None:
            raise errors.ApiError("this secret requires options.cas", code="REQUIRED_VALUE_MISSING",
                                  property="options.cas").with_status(400)
        if cas is not None and cas != secret["current_version"]:
            raise _cas_conflict(cas, secret["current_version"])
        version = secret["current_version"] + 1
        event = audit.new_event("secret.write", _target(name), details={"version": version})
        row = store.add_version(cur, secret, version=version, created_by=principal.sub,
                                ciphertext=sealing.seal(data_key, secret, version, data), audit_event=event)
    audit.log_event(event)
    return _version_meta(row)


def _cas_conflict(cas: int, current: int) -> errors.ApiError:
    return errors.Conflict(f"check-and-set failed: cas {cas} but the current version is {current}",
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
    return secret


def change_versions(principal: Principal, path: str, versions: list[int], action, audit_action: str) -> None:
    """Apply `action` (a store function) to the listed versions; unknown versions are skipped."""
    with database().transaction() as cur:
        secret = _locked(cur, principal, path, audit_action)
        action(cur, secret["id"], sorted(set(versions)))
        store.touch(cur, secret["id"], principal.sub)
        audit.record(audit_action, _target(path), cur=cur, details={"versions": sorted(set(versions))})


def metadata(principal: Principal, path: str) -> dict:
    _, secret = _existing(principal, path)
    return _metadata_body(secret, store.versions(database(), secret["id"]))


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


def set_metadata(principal: Principal, path: str, settings: dict) -> dict:
    """Change settings (creating an empty secret if new); lowering max_versions prunes at once."""
    name = names.checked(path, "path")
    owner = _owner(principal, name, change=True, action="secret.metadata.write")
    with database().transaction() as cur:
        secret = store.lock_secret(cur, owner, name)
        if secret is None:
            secret_id = str(uuid.uuid4())
            _, wrapped = sealing.new_data_key(secret_id)
            store.insert_secret(cur, secret_id=secret_id, owner=owner, name=name, read_roles=[], write_roles=[],
                                author=principal.sub, dek_key_id=wrapped.key_id, dek_wrapped=wrapped.wrapped,
                                if_absent=True)
            secret = store.lock_secret(cur, owner, name)
        store.update_settings(cur, secret["id"], by=principal.sub, **{
            key: settings.get(key) for key in ("max_versions", "delete_version_after", "cas_required", "custom_metadata")
        })
        if settings.get("max_versions") is not None:
            store.prune_versions(cur, secret["id"], settings["max_versions"], newest=secret["current_version"])
        secret = store.lock_secret(cur, owner, name)
        audit.record("secret.metadata.write", _target(name), cur=cur,
                     details={k: v for k, v in settings.items() if k != "custom_metadata"})
        return _metadata_body(secret, store.versions(cur, secret["id"]))


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
    rows = store.versions(database(), secret["id"], newest_first=True, after=after, limit=page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_token = _encode_page_token(rows[-1]["version"]) if more else None
    return {"versions": rows, "next_page_token": next_token}


def _encode_page_token(version: int) -> str:
    return base64.urlsafe_b64encode(f"v{version}".encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        version = int(text[1:]) if text.startswith("v") else 0
        if not 0 < version <= INT32_MAX:  # versions are int32; a larger one was never issued
            raise ValueError
        return version
    except (ValueError, UnicodeDecodeError):
        raise errors.ApiError("page_token is not one this server issued", code="VALUE_INCORRECT_FORMAT",
                              property="page_token").with_status(400) from None
