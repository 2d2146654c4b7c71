"""The /v1 routes of ACL policies (`sys/policies/acl/*`, the older `sys/policy/*`), of the
external groups that bind them to roles (`identity/group/name/*`) and `sys/capabilities-self`,
as hvac and the `vault` CLI call them; each a translation onto vault_service.acl."""
from __future__ import annotations

from vault_service.acl import access, service
from vault_service.kv import inputs
from vault_service.kv.access import caller, require
from vault_service.kv.wire import KvError, envelope, no_content, ok, respond, time


def _name(path: str, what: str) -> str:
    if not path:
        raise KvError(400, f"missing {what} name")
    return path


# --- sys/policies/acl -------------------------------------------------------------

def list_acl(path: str):
    if path:
        raise KvError(405, "unsupported operation")
    require(access.POLICY_READERS)
    return ok({"keys": service.list_policies()}, mount_type="system")


def read_acl(path: str):
    require(access.POLICY_READERS)
    found = service.read_policy(_name(path, "policy"))
    return ok({"name": found["name"], "policy": found["policy"]}, mount_type="system")


def write_acl(path: str):
    principal = require(access.POLICY_WRITERS)
    fields = inputs.body("policy", "name")
    service.write_policy(principal, _name(path, "policy"), fields.get("policy"))
    return no_content(fields.warnings)


def delete_acl(path: str):
    principal = require(access.POLICY_WRITERS)
    service.delete_policy(principal, _name(path, "policy"))
    return no_content()


# --- sys/policy (the older API: answers at the top level as well as under data) ---------

def _legacy(data: dict):
    return respond({**data, **envelope(data, mount_type="system")})


def list_legacy(path: str):
    require(access.POLICY_READERS)
    names = service.list_policies()
    return _legacy({"policies": names, "keys": names})


def read_legacy(path: str):
    require(access.POLICY_READERS)
    found = service.read_policy(_name(path, "policy"))
    return _legacy({"name": found["name"], "rules": found["policy"]})


def write_legacy(path: str):
    principal = require(access.POLICY_WRITERS)
    fields = inputs.body("policy", "rules", "name")
    text = fields.get("policy") if fields.get("policy") not in (None, "") else fields.get("rules")
    service.write_policy(principal, _name(path, "policy"), text)
    return no_content(fields.warnings)


# --- identity/group/name ------------------------------------------------------------

def list_groups(path: str):
    if path:
        raise KvError(405, "unsupported operation")
    require(access.POLICY_READERS)
    names = service.list_groups()
    if not names:
        raise KvError(404)
    return ok({"keys": names}, mount_type="identity")


def read_group(path: str):
    require(access.POLICY_READERS)
    group = service.read_group(_name(path, "group"))
    return ok({
        "id": str(group["id"]), "name": group["name"], "type": group["type"], "policies": list(group["policies"]),
        "metadata": group["metadata"] or None, "creation_time": time(group["created"]),
        "last_update_time": time(group["updated"]),
    }, mount_type="identity")


def write_group(path: str):
    principal = require(access.POLICY_WRITERS)
    fields = inputs.body("policies", "type", "metadata", "member_entity_ids", "member_group_ids", "name", "id")
    created = service.write_group(principal, _name(path, "group"), fields)
    if created is None:
        return no_content(fields.warnings)
    return ok(created, warnings=fields.warnings, mount_type="identity")


def delete_group(path: str):
    principal = require(access.POLICY_WRITERS)
    service.delete_group(principal, _name(path, "group"))
    return no_content()


# --- sys/capabilities-self --------------------------------------------------------------

def capabilities_self(path: str):
    """{"<path>": [...]} per path asked (and "capabilities" when one was), as hvac's
    sys.get_capabilities reads it; at the top level too, as Vault's sys answers carry it."""
    principal = caller()
    fields = inputs.body("paths", "path")
    paths = fields.get("paths") if fields.get("paths") is not None else fields.get("path")
    if isinstance(paths, str):
        paths = [part.strip(service.SPACE) for part in paths.split(",") if part.strip(service.SPACE)]
    if not paths or not isinstance(paths, list) or not all(isinstance(item, str) and item for item in paths):
        raise KvError(400, "missing paths")
    if len(paths) > 256:
        raise KvError(400, "at most 256 paths at a time")
    answer = {item: access.capabilities(principal, item) for item in paths}
    if len(paths) == 1:
        answer["capabilities"] = answer[paths[0]]
    return respond({**answer, **envelope(answer, warnings=fields.warnings or None, mount_type="system")})


# path -> {operation: endpoint}; a path ending in "/" also takes what follows it (kv.system's table).
ENDPOINTS = {
    "sys/policies/acl": {"LIST": list_acl},
    "sys/policies/acl/": {"GET": read_acl, "PUT": write_acl, "DELETE": delete_acl, "LIST": list_acl},
    "sys/policy": {"GET": list_legacy},
    "sys/policy/": {"GET": read_legacy, "PUT": write_legacy, "DELETE": delete_acl},
    "identity/group/name": {"LIST": list_groups},
    "identity/group/name/": {"GET": read_group, "PUT": write_group, "DELETE": delete_group, "LIST": list_groups},
    "sys/capabilities-self": {"PUT": capabilities_self},
}
