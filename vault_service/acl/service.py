"""ACL policies and the external groups that bind them to token roles: the rules of changing
them (names, what may not be written or deleted), each change audited and applied to every
process within the cache's refresh time."""
from __future__ import annotations

import re

from flask import current_app

from common import audit, errors
from common.auth import Principal
from common.web import database
from vault_service.acl import language, store

ROOT, DEFAULT = "root", "default"
# What Vault's strings.TrimSpace trims (Go's unicode.IsSpace), spelled out: `\s` is another set in
# each regex dialect (Python's takes \x1c-\x1f, which Go's and ECMAScript's do not; ECMAScript's
# takes \ufeff), so the OpenAPI document's patterns use this class (kv.openapi) and names and
# comma-separated parts are trimmed of these characters alone.
SPACE_CHARACTERS = r" \t\n\x0b\x0c\r\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = "".join(re.findall(f"[{SPACE_CHARACTERS}]", "".join(map(chr, range(0x3001)))))  # one scan: 0.5 ms, not 23 at import
POLICY_NAME_PATTERN = r"[A-Za-z0-9_.\-]{1,128}"  # before lower-casing (the Kelvin sign lower-cases to "k")
_POLICY_NAME = re.compile(POLICY_NAME_PATTERN)
MAX_GROUP_NAME = 256
MAX_GROUP_POLICIES = 64
GROUP_TYPES = ("external",)


def _bad(message: str, prop: str | None = None) -> errors.ApiError:
    return errors.ApiError(message, code="INVALID_REQUEST_DATA", property=prop).with_status(400)


def _changed() -> None:
    current_app.extensions["acl_cache"].changed()


# --- policies ---------------------------------------------------------------------

def policy_name(raw: str) -> str:
    """Vault trims and lower-cases policy names: 1 to 128 of a-z 0-9 _ - . once trimmed of SPACE."""
    name = raw.strip(SPACE)
    if not _POLICY_NAME.fullmatch(name):
        raise _bad("policy names are 1 to 128 characters of a-z, 0-9, '_', '-' and '.'")
    return name.lower()


def write_policy(principal: Principal, raw_name: str, text) -> None:
    name = policy_name(raw_name)
    if name == ROOT:
        raise _bad('cannot update "root" policy')
    rules = language.parse(text)
    with database().transaction() as cur:
        store.upsert_policy(cur, name=name, text=text, rules=rules, by=principal.sub)
        audit.record("policy.write", f"policy:{name}", cur=cur, details={"rules": len(rules)})
    _changed()


def read_policy(raw_name: str) -> dict:
    """{name, policy}; NotFound if there is none (root has no text: it is never stored)."""
    found = store.find_policy(database(), policy_name(raw_name))
    if found is None:
        raise errors.NotFound("no such policy")
    return found


def list_policies() -> list[str]:
    """Every stored policy's name and `root`, which always exists in Vault."""
    return sorted({*store.policy_names(database()), ROOT})


def delete_policy(principal: Principal, raw_name: str) -> None:
    name = policy_name(raw_name)
    if name in (ROOT, DEFAULT):
        raise _bad(f'cannot delete "{name}" policy')
    with database().transaction() as cur:
        if store.delete_policy(cur, name):
            audit.record("policy.delete", f"policy:{name}", cur=cur)
    _changed()


# --- external groups ----------------------------------------------------------------

def group_name(name: str) -> str:
    """A role's id or name: 1 to 256 printable characters, no '/' (it is one URL segment)."""
    if not 1 <= len(name) <= MAX_GROUP_NAME or not name.isprintable() or "/" in name:
        raise _bad(f"group names are 1 to {MAX_GROUP_NAME} printable characters without '/'")
    return name


def group_policies(value) -> list[str]:
    """Policy names as a list or one comma-separated string (Vault's TypeCommaStringSlice),
    lower-cased and without duplicates, in the order given."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip(SPACE)]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad("policies must be a list of policy names", "policies")
    names = list(dict.fromkeys(policy_name(item) for item in value))
    if len(names) > MAX_GROUP_POLICIES:
        raise _bad(f"a group names at most {MAX_GROUP_POLICIES} policies", "policies")
    return names


def group_metadata(value) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _bad("metadata must be a map of strings to strings", "metadata")
    if len(value) > 64 or any(len(k) > 128 or len(v) > 512 for k, v in value.items()):
        raise _bad("metadata holds at most 64 keys of 128 and values of 512 characters", "metadata")
    return value


def write_group(principal: Principal, raw_name: str, fields: dict) -> dict | None:
    """Create (answering {id, name}) or change (None) the group; fields not given keep their values."""
    name = group_name(raw_name)
    group_type = fields.get("type")
    if group_type not in (None, *GROUP_TYPES):
        raise _bad("only external groups are supported: a group applies to tokens with a role whose id or name "
                   "is the group's name (internal groups need entities, which this server does not have)", "type")
    for members in ("member_entity_ids", "member_group_ids"):
        if fields.get(members):
            raise _bad(f"{members} is not supported: external groups take their members from token roles", members)
    policies = None if fields.get("policies") is None else group_policies(fields["policies"])
    metadata = None if fields.get("metadata") is None else group_metadata(fields["metadata"])
    with database().transaction() as cur:
        existing = store.find_group(cur, name, lock=True)
        if existing is None:
            group_id = store.insert_group(cur, name=name, group_type=GROUP_TYPES[0], policies=policies or [],
                                          metadata=metadata or {}, by=principal.sub)
            if group_id is None:
                raise errors.Conflict("the group was created by another request meanwhile: try again")
            created = {"id": group_id, "name": name}
        else:
            store.update_group(cur, existing["id"], policies=policies, metadata=metadata, by=principal.sub)
            created = None
        audit.record("group.write", f"group:{name}", cur=cur,
                     details={"policies": policies, "created": created is not None})
    _changed()
    return created


def read_group(raw_name: str) -> dict:
    found = store.find_group(database(), group_name(raw_name))
    if found is None:
        raise errors.NotFound("no such group")
    return found


def list_groups() -> list[str]:
    return store.group_names(database())


def delete_group(principal: Principal, raw_name: str) -> None:
    name = group_name(raw_name)
    with database().transaction() as cur:
        if store.delete_group(cur, name):
            audit.record("group.delete", f"group:{name}", cur=cur)
    _changed()
