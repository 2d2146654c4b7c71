"""The v1 rules: who may see, read, write and delete shared and personal secrets."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from urllib.parse import quote

from flask import current_app

from common import audit, errors
from common.auth import Principal
from common.timefmt import rfc3339
from common.web import Dumped, database
from vault_service import names
from vault_service.secrets import rights, sealing, store
from vault_service.secrets.store import SHARED
from vault_service.versioned import lifecycle

MANAGER_SCOPES = ("admin", "vaultManage")
SERVICE_SCOPE = "service"  # the Secrets Manager: the only caller of the reserved part
URL_PREFIX = "/vault/api/v1"
SAFE_PATH_CHARS = "/@+="  # what url_for leaves unencoded in a path: keeps Location and `path` as before


# --- access ----------------------------------------------------------------

def is_owner(principal: Principal, secret: dict) -> bool:
    return secret["owner_id"] != SHARED and secret["owner_id"] == principal.sub


# The rule is vault_service.secrets.rights' (a personal secret is its owner's alone; a shared one's
# roles grant); reads and the check of who may see a secret use its SQL (store.MAY_READ, MAY_SEE).
def can_read(principal: Principal, secret: dict) -> bool:
    return rights.holds("read", principal, secret)


def can_write(principal: Principal, secret: dict) -> bool:
    return rights.holds("write", principal, secret)


def audit_target(owner: str, name: str) -> str:
    return f"secret:{name}" if owner == SHARED else f"user/{owner}/secret:{name}"


def namespace(principal: Principal, owner: str, name: str, *, action: str | None, change: bool,
              versioned: bool = False) -> str:
    """The owner_id under which `name` is kept for this caller: the reserved rule, asked by every route.

    Outside the Secrets Manager's reserved part, `owner` itself. A shared name in it
    (names.is_reserved) is reached by the `service` scope on the versioned API only; to
    anyone else it does not exist: 404 on a read, 403 on a change (the name alone decides,
    so neither answer tells whether such a secret exists). Refusals are audited.
    """
    if owner == names.RESERVED_OWNER:  # no route passes it (a user id of a path has no '/'): a guard
        raise errors.NotFound("secret not found")
    if owner != SHARED or not names.is_reserved(name):
        return owner
    if versioned and principal.has_scope(SERVICE_SCOPE):
        return names.RESERVED_OWNER
    if change:
        if action:
            audit.record(action, audit_target(owner, name), audit.DENIED, details={"reason": "reserved"})
        raise errors.PermissionDenied(names.RESERVED_MESSAGE)
    if action:
        audit.record(action, audit_target(owner, name), audit.NOT_FOUND)
    raise errors.NotFound("secret not found")


def _visible(principal: Principal, owner: str, name: str, *, audited_action: str | None = None,
             change: bool = False, named: bool = False) -> dict:
    """The secret if the caller may at least see it; 404 otherwise (existence is not revealed,
    by the answer or by its time: store.find_visible). `named`: with its roles' names."""
    owner = namespace(principal, owner, names.checked(name), action=audited_action, change=change)
    secret = store.find_visible(database(), owner, name, roles=sorted(principal.role_ids), principal=principal.sub,
                                manager=principal.has_scope(*MANAGER_SCOPES), named=named)
    if secret is None:
        if audited_action:
            audit.record(audited_action, audit_target(owner, name), audit.NOT_FOUND)
        raise errors.NotFound("secret not found")
    return secret


def _deny(action: str, owner: str, name: str, message: str):
    audit.record(action, audit_target(owner, name), audit.DENIED)
    raise errors.PermissionDenied(message)


# --- rendering -------------------------------------------------------------

def secret_path(owner: str, name: str, *, safe: str = SAFE_PATH_CHARS) -> str:
    """The secret's URL path (built directly: url_for is a noticeable share of a read)."""
    if owner == SHARED:
        return f"{URL_PREFIX}/secrets/{quote(name, safe=safe)}"
    return f"{URL_PREFIX}/user/{quote(owner, safe='')}/secrets/{quote(name, safe=safe)}"


def secret_location(owner: str, name: str) -> str:
    """A create's Location: the name as one path segment ('/' as %2F, which reaches the same
    secret), so a client that reads `{name}` off the URL template gets the whole name."""
    return secret_path(owner, name, safe=SAFE_PATH_CHARS.replace("/", ""))


def named_roles(rows: list[list[str]]) -> list[dict]:
    """The store's [[id, name, 'true'|'false'], ...] as the API's role objects."""
    return [{"id": role_id, "name": name, "deleted": deleted == "true"} for role_id, name, deleted in rows]


def render(secret: dict, *, data=None, include_data: bool) -> dict:
    body = {"name": secret["name"]}
    if include_data:
        body["data"] = data
    body.update(
        read_roles=named_roles(secret["read_roles_named"]),
        write_roles=named_roles(secret["write_roles_named"]),
        author=secret["author"],
        path=secret_path(secret["owner_id"], secret["name"]),
        updated_by=secret["updated_by"],
        created=secret["created"],
        updated=secret["updated"],
    )
    if secret["owner_id"] != SHARED:
        body["owner_id"] = secret["owner_id"]
    return body


def _current_data(secret: dict, ring=None):
    if secret.get("v_version") is None:
        return None  # every version deleted or destroyed
    return sealing.unseal(secret, secret["v_version"], secret["v_ciphertext"], ring)


# --- operations ------------------------------------------------------------

def _role_ids(roles: list[dict] | None) -> list[str] | None:
    if roles is None:
        return None
    return list(dict.fromkeys(role["id"] for role in roles))  # unique, in the order given


def _role_names(*role_lists) -> list[tuple[str, str]]:
    return [(r["id"], r.get("name") or r["id"]) for roles in role_lists if roles for r in roles]


def create(principal: Principal, owner: str, body: dict) -> str:
    """Create a secret with version 1 of its data; 409 if the name is taken."""
    name = names.checked(body["name"])
    owner = namespace(principal, owner, name, action="secret.create", change=True)
    secret_id = str(uuid.uuid4())
    data_key, wrapped = sealing.new_data_key(secret_id)
    with database().transaction() as cur:
        store.remember_roles(cur, _role_names(body.get("read_roles"), body.get("write_roles")))
        inserted = store.insert_secret(
            cur, secret_id=secret_id, owner=owner, name=name,
            read_roles=_role_ids(body.get("read_roles")) or [], write_roles=_role_ids(body.get("write_roles")) or [],
            author=principal.sub, dek_key_id=wrapped.key_id, dek_wrapped=wrapped.wrapped, if_absent=True,
        )
        if not inserted:
            raise errors.Conflict("a secret with this name already exists", property="name")
        secret = store.lock_secret(cur, owner, name)
        event = audit.new_event("secret.create", audit_target(owner, name), details={"version": 1})
        store.add_version(cur, secret, version=1, ciphertext=sealing.seal(data_key, secret, 1, body["data"]),
                          created_by=principal.sub, entry_keys=list(body["data"]), audit_event=event)
    audit.log_event(event)
    return name


def read(principal: Principal, owner: str, name: str) -> dict:
    """The secret with its data; 403 if visible but not readable, 404 if not even visible."""
    owner = namespace(principal, owner, names.checked(name), action="secret.read", change=False)
    event = audit.new_event("secret.read", audit_target(owner, name))
    secret = store.find_secret_audited(
        database(), owner, name, version=None, event=event, statement=store.V1_READ,
        roles=principal.sorted_role_ids, manager=principal.has_scope(*MANAGER_SCOPES))
    event["outcome"] = secret["outcome"]
    event["details"] = {"version": secret["v_version"]}
    audit.log_event(event)
    if secret["outcome"] == audit.NOT_FOUND:
        raise errors.NotFound("secret not found")
    if secret["outcome"] == audit.DENIED:
        raise errors.PermissionDenied("no read role for this secret")
    return _as_dumped(render(secret, data=_current_data(secret), include_data=True))


_TEXT_OR_NONE = (str, type(None))


def _as_dumped(body: dict) -> dict:
    """render()'s body as schemas.Secret dumps it (web.Dumped: sent as it is) when its values are
    the plain ones the schema passes unchanged (the times made text as Rfc3339 makes them; the
    roles are named_roles' text and booleans); else `body`, for the schema to dump."""
    created, updated = body["created"], body["updated"]
    if (type(body["name"]) is str and type(body["author"]) in _TEXT_OR_NONE and type(body["updated_by"]) in _TEXT_OR_NONE
            and type(created) is datetime and type(updated) is datetime and type(body.get("owner_id", "")) is str):
        return Dumped(body, created=rfc3339(created), updated=rfc3339(updated))
    return body


def metadata(principal: Principal, owner: str, name: str) -> dict:
    return render(_visible(principal, owner, name, named=True), include_data=False)


def update(principal: Principal, owner: str, name: str, body: dict) -> None:
    """New data makes a new version; roles may change by a writer or a manager."""
    secret = _visible(principal, owner, name, audited_action="secret.update", change=True)
    if "data" in body and not can_write(principal, secret):
        _deny("secret.update", owner, name, "no write role for this secret")
    changes_roles = "read_roles" in body or "write_roles" in body
    if changes_roles and not (can_write(principal, secret) or principal.has_scope(*MANAGER_SCOPES)):
        _deny("secret.update", owner, name, "no permission to change the roles of this secret")
    with database().transaction() as cur:
        locked = store.lock_secret(cur, owner, secret["name"])
        if locked is None:
            raise errors.NotFound("secret not found")
        lifecycle.destroy_due_of(cur, locked)  # a write touches the secret: what is due goes first
        if changes_roles:
            store.remember_roles(cur, _role_names(body.get("read_roles"), body.get("write_roles")))
            store.update_roles(cur, locked["id"], read_roles=_role_ids(body.get("read_roles")),
                               write_roles=_role_ids(body.get("write_roles")), by=principal.sub)
        if "data" in body:
            version = locked["current_version"] + 1
            data_key = sealing.data_key_of(locked)
            store.add_version(cur, locked, version=version, ciphertext=sealing.seal(data_key, locked, version, body["data"]),
                              created_by=principal.sub, entry_keys=list(body["data"]))
        audit.record("secret.update", audit_target(owner, locked["name"]), cur=cur, details={
            "version": locked["current_version"] + 1 if "data" in body else None, "roles_changed": changes_roles})


def delete(principal: Principal, owner: str, name: str) -> None:
    secret = _visible(principal, owner, name, audited_action="secret.delete", change=True)
    if not (can_write(principal, secret) or principal.has_scope(*MANAGER_SCOPES)):
        _deny("secret.delete", owner, name, "no permission to delete this secret")
    with database().transaction() as cur:
        store.delete_secret(cur, secret["id"])
        audit.record("secret.delete", audit_target(owner, secret["name"]), cur=cur)


def learn_roles_of(principal: Principal) -> None:
    """Token hook: remember the role names a verified token carries."""
    store.learn_roles(database(), [(role.id, role.name) for role in principal.roles])


# --- listing and search ----------------------------------------------------

def list_page(principal: Principal, *, owners: list[str] | None, shared: bool | None, args: dict,
              filter: str = "", keywords: list[str] = (), with_data: bool):
    """A page of secrets (schemas.SecretList) as its JSON response, encoded here at once."""
    manager = principal.has_scope(*MANAGER_SCOPES)
    roles = sorted(principal.role_ids)
    readable = roles if filter in ("readable", "accessible") else None
    writable = roles if filter in ("writable", "accessible") else None
    total, rows = store.search(
        database(), owners=owners, shared=shared,
        visible_to_roles=None if manager else roles, viewer=principal.sub,
        readable_roles=readable, writable_roles=writable, keywords=list(keywords),
        sortkey=args["sortkey"], sortdir=args["sortdir"], offset=args["offset"], limit=args["limit"],
        with_version=with_data,
    )
    ring = sealing.keyring() if with_data else None
    roles_json: dict[tuple, str] = {}  # a page names the same few roles again and again
    items = []
    for row in rows:
        readable_row = with_data and can_read(principal, row)
        items.append(_listed_json(row, _current_data(row, ring) if readable_row else None, readable_row, roles_json))
    body = f'{{"count":{int(total)},"items":[{",".join(items)}]}}\n'
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


# A page is a hundred secrets: each is written as JSON text here, once, rather than made into a
# dict, dumped by its schema (schemas.Secret) and encoded by Flask (issue 25: that cost a page
# of 100 about a fifth of its instructions). The text is exactly what those gave (Flask's JSON:
# ASCII only, compact, keys in the schema's order; tests/vault/test_recorded_responses.py and
# test_listing_json.py compare): strings through json's own ASCII encoder, times as the store
# formats them (rfc3339's text, made by the database).
_text = json.encoder.encode_basestring_ascii
_DATA = json.JSONEncoder(separators=(",", ":"))  # Flask's settings: ensure_ascii, keys as they come


def _text_or_null(value) -> str:
    return "null" if value is None else _text(value)


def _time_json(value) -> str:
    return "null" if value is None else f'"{value}"'  # digits, '-', ':', 'T' and 'Z' only


def _roles_json(rows: list[list[str]], known: dict[tuple, str]) -> str:
    """named_roles(rows) as JSON text."""
    parts = []
    for role_id, name, deleted in rows:
        key = (role_id, name, deleted)
        text = known.get(key)
        if text is None:
            text = known[key] = (f'{{"id":{_text_or_null(role_id)},"name":{_text_or_null(name)},'
                                 f'"deleted":{"true" if deleted == "true" else "false"}}}')
        parts.append(text)
    return f'[{",".join(parts)}]'


def _listed_json(secret: dict, data, include_data: bool, roles_json: dict[tuple, str]) -> str:
    """render(secret, data=data, include_data=include_data) as schemas.Secret's JSON text."""
    owner = secret["owner_id"]
    data_json = f',"data":{_DATA.encode(data)}' if include_data else ""
    # secret_path's text needs no JSON escape: quote() leaves letters, digits, "_.-~/@+=" and %XX
    return (f'{{"name":{_text(secret["name"])}{data_json},'
            f'"read_roles":{_roles_json(secret["read_roles_named"], roles_json)},'
            f'"write_roles":{_roles_json(secret["write_roles_named"], roles_json)},'
            f'"author":{_text_or_null(secret["author"])},"path":"{secret_path(owner, secret["name"])}",'
            f'"updated_by":{_text_or_null(secret["updated_by"])},'
            f'"created":{_time_json(secret["created"])},"updated":{_time_json(secret["updated"])}'
            + ("}" if owner == SHARED else f',"owner_id":{_text(owner)}}}'))
