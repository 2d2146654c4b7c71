"""The KV v2 mount's endpoints (config, data, metadata, delete, undelete, destroy, subkeys),
each a translation onto vault_service.versioned.service."""
from __future__ import annotations

from flask import request

from common import errors
from vault_service.kv import inputs, wire
from vault_service.acl import access as acl
from vault_service.kv.access import allow, caller
from vault_service.kv.wire import KvError, duration, no_content, ok, time
from vault_service.secrets.store import DEFAULT_MAX_VERSIONS
from vault_service.versioned import service

_PATCH_ATTEMPTS = 3  # a merge-patch without cas retries when another write slipped in between


def version_meta(meta: dict) -> dict:
    return {
        "created_time": time(meta["created"]),
        "custom_metadata": meta.get("custom_metadata") or None,
        "deletion_time": time(meta["deletion_time"]),
        "destroyed": meta["destroyed"],
        "version": meta["version"],
    }


def _gone(error: service.VersionNotLive, data_key: str | None = "data") -> KvError:
    """A deleted or destroyed version: 404 with the envelope, so clients can tell it apart."""
    meta = version_meta(error.metadata)
    return KvError(404, body=wire.envelope({data_key: None, "metadata": meta} if data_key else meta))


# --- config -------------------------------------------------------------------

def read_config(path: str):
    allow(acl.READ_CONFIG)
    config = service.mount_config()
    return ok({"cas_required": config["cas_required"], "delete_version_after": duration(config["delete_version_after"]),
               "max_versions": config["max_versions"]})


def write_config(path: str):
    principal = allow(acl.WRITE_CONFIG)
    fields = inputs.body("max_versions", "cas_required", "delete_version_after")
    settings = {
        "max_versions": inputs.optional_integer(fields, "max_versions"),
        "cas_required": None if fields.get("cas_required") is None else inputs.boolean(fields["cas_required"], "cas_required"),
        "delete_version_after": None if fields.get("delete_version_after") is None
        else inputs.seconds(fields["delete_version_after"], "delete_version_after", negative=True),
    }
    service.set_mount_config(principal, settings)
    return no_content(fields.warnings)


# --- data ---------------------------------------------------------------------

def read_data(path: str):
    principal = allow(acl.READ_DATA, path)
    version, name = inputs.query_version(), inputs.path(path)
    try:
        found = service.read_exact(principal, name, version)
    except service.VersionNotLive as gone:
        raise _gone(gone) from None
    return ok({"data": found["data"], "metadata": version_meta(found["metadata"])})


def write_data(path: str):
    principal = allow(acl.WRITE_DATA, path)
    fields = inputs.body("data", "options")
    name = inputs.path(path)
    data = inputs.secret_data(fields.get("data"))
    meta = service.write(principal, name, data, _cas(fields))
    return ok(version_meta(meta), warnings=fields.warnings)


def _cas(fields: dict) -> int | None:
    options = fields.get("options") or {}
    if not isinstance(options, dict):
        raise KvError(400, "options must be a map")
    return inputs.optional_integer(options, "cas")


def patch_data(path: str):
    """RFC 7386 merge-patch of the current version into a new one, guarded by cas."""
    principal = allow(acl.PATCH_DATA, path)
    inputs.require_merge_patch()
    fields = inputs.body("data", "options")
    name = inputs.path(path)
    patch = fields.get("data")
    if not isinstance(patch, dict):
        raise KvError(400, "no data provided")
    cas = _cas(fields)
    for attempt in range(_PATCH_ATTEMPTS):
        try:
            current = service.read_exact(principal, name, None)
        except service.VersionNotLive as gone:
            raise _gone(gone, data_key=None) from None
        merged = inputs.secret_data(merge_patch(current["data"], patch))
        try:
            meta = service.write(principal, name, merged, current["metadata"]["version"] if cas is None else cas)
        except service.CasMismatch:
            if cas is not None or attempt == _PATCH_ATTEMPTS - 1:
                raise
            continue
        return ok(version_meta(meta), warnings=fields.warnings)


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def delete_data(path: str):
    """Soft-delete the current version; missing or already deleted is still 204."""
    principal = allow(acl.DELETE_DATA, path)
    name = inputs.path(path)
    try:
        service.delete_latest(principal, name)
    except errors.NotFound:
        pass
    return no_content()


def _versions_endpoint(rule: str):
    operation = acl.VERSION_OPERATIONS[rule]

    def change(path: str):
        principal = allow(operation, path)
        fields = inputs.body("versions")
        name, numbers = inputs.path(path), inputs.versions(fields)
        try:
            service.change_versions(principal, name, numbers, rule)
        except errors.NotFound:  # Vault: nothing to do is not an error
            pass
        return no_content(fields.warnings)

    return change


# --- metadata -----------------------------------------------------------------

def read_metadata(path: str):
    principal = allow(acl.READ_METADATA, path)
    found = service.metadata(principal, inputs.path(path))
    settings = found["metadata"]
    return ok({
        "cas_required": settings["cas_required"],
        "created_time": time(settings["created"]),
        "current_version": settings["current_version"],
        "custom_metadata": settings["custom_metadata"] or None,
        "delete_version_after": duration(settings["delete_version_after"]),
        "max_versions": settings["max_versions"],
        "oldest_version": settings["oldest_version"],
        "updated_time": time(settings["updated"]),
        "versions": {str(v["version"]): {"created_time": time(v["created"]), "deletion_time": time(v["deletion_time"]),
                                         "destroyed": v["destroyed"]} for v in found["versions"]},
    })


_METADATA_FIELDS = ("max_versions", "cas_required", "delete_version_after", "custom_metadata")


def _metadata_settings(fields: dict, *, patch: bool) -> dict:
    settings = {}
    if fields.get("max_versions") is not None:
        settings["max_versions"] = inputs.integer(fields["max_versions"], "max_versions")
        if settings["max_versions"] == 0:  # Vault's "use the mount's default"
            settings["max_versions"] = service.mount_config()["max_versions"] or DEFAULT_MAX_VERSIONS
    if fields.get("cas_required") is not None:
        settings["cas_required"] = inputs.boolean(fields["cas_required"], "cas_required")
    if fields.get("delete_version_after") is not None:
        settings["delete_version_after"] = inputs.seconds(fields["delete_version_after"], "delete_version_after")
    if fields.get("custom_metadata") is not None:
        settings["custom_metadata"] = inputs.custom_metadata(fields["custom_metadata"], allow_null_values=patch)
    return settings


def write_metadata(path: str):
    principal = allow(acl.WRITE_METADATA, path)
    fields = inputs.body(*_METADATA_FIELDS)
    name = inputs.path(path)
    service.set_metadata(principal, name, _metadata_settings(fields, patch=False))
    return no_content(fields.warnings)


def patch_metadata(path: str):
    principal = allow(acl.PATCH_METADATA, path)
    inputs.require_merge_patch()
    fields = inputs.body(*_METADATA_FIELDS)
    name = inputs.path(path)
    service.set_metadata(principal, name, _metadata_settings(fields, patch=True), create=False,
                         merge_custom_metadata=True)
    return no_content(fields.warnings)


def delete_metadata(path: str):
    principal = allow(acl.DELETE_METADATA, path)
    name = inputs.path(path)
    try:
        service.delete_metadata(principal, name)
    except errors.NotFound:
        pass
    return no_content()


def list_metadata(path: str):
    principal = caller()
    prefix = path.strip("/")
    policy = acl.authorize(principal, acl.LIST_METADATA, prefix)
    keys = acl.visible_keys(policy, prefix, service.keys(principal, inputs.path(prefix) if prefix else None)["keys"])
    if not keys:
        raise KvError(404)  # what the caller may see is nothing, as when there is nothing
    return ok({"keys": keys})


# --- subkeys ------------------------------------------------------------------

def read_subkeys(path: str):
    principal = allow(acl.READ_SUBKEYS, path)
    version = inputs.query_version()
    raw_depth = request.args.get("depth")
    depth = 0 if raw_depth in (None, "") else inputs.integer(raw_depth, "depth", text=inputs.QUERY_TEXT)
    name = inputs.path(path)
    try:
        found = service.read_exact(principal, name, version)
    except service.VersionNotLive as gone:
        raise _gone(gone, data_key="subkeys") from None
    return ok({"subkeys": subkeys(found["data"], depth), "metadata": version_meta(found["metadata"])})


def subkeys(data: dict, depth: int, level: int = 1) -> dict:
    """The data's shape: maps keep their keys (down to `depth`, 0 = all), every leaf is null."""
    return {key: subkeys(value, depth, level + 1) if isinstance(value, dict) and value and (depth == 0 or level < depth)
            else None for key, value in data.items()}


# --- the routing table: family -> {operation: endpoint} -------------------------
# Operations: GET, PUT (POST and PUT are one write), PATCH, DELETE, LIST.

ENDPOINTS = {
    "config": {"GET": read_config, "PUT": write_config},
    "data": {"GET": read_data, "PUT": write_data, "PATCH": patch_data, "DELETE": delete_data},
    "metadata": {"GET": read_metadata, "PUT": write_metadata, "PATCH": patch_metadata, "DELETE": delete_metadata,
                 "LIST": list_metadata},
    "delete": {"PUT": _versions_endpoint("delete")},
    "undelete": {"PUT": _versions_endpoint("undelete")},
    "destroy": {"PUT": _versions_endpoint("destroy")},
    "subkeys": {"GET": read_subkeys},
}
