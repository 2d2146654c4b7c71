"""Target domains: create, read, change, list, resolve, delete, and queue scans.

Bind passwords go to the Vault before the domain's row is written, and the row
commits only after the Vault took them, so nothing is half-written; a 503 from
the Vault changes nothing. Every change is audited, never with a password.
"""
from __future__ import annotations

import uuid

from common import audit, errors
from common.auth import Principal
from common.web import database
from secrets_manager_service import account_passwords
from secrets_manager_service.names import directory_secret_path
from secrets_manager_service.policies import store as policies_store
from secrets_manager_service.target_domains import bind_passwords, ldap_syntax
from secrets_manager_service.target_domains.domains import store
from secrets_manager_service.target_domains.managed import store as managed_store
from secrets_manager_service.target_domains.scans import store as scan_store

DOMAIN_DEFAULTS = {"domain_name": "", "enabled": True, "periodic_scan": False, "periodic_scan_interval": 1440,
                   "auto_onboarding": False, "comment": ""}
DEFAULT_FILTERS = {"LDAP": "(objectClass=inetOrgPerson)", "AD": "(&(objectCategory=person)(objectClass=user))"}
DEFAULT_MAPPINGS = {
    "LDAP": {"username": "uid", "email": "mail", "full_name": "cn", "source_id": "entryUUID"},
    "AD": {"username": "sAMAccountName", "sam_account_name": "sAMAccountName", "email": "mail",
           "full_name": "displayName", "source_id": "objectGUID", "security_id": "objectSid"},
}
DEFAULT_PORTS = {"LDAPS": 636, "LDAP": 389, "STARTTLS": 389}


def bad(message: str, property: str, code: str = "INVALID_REQUEST_DATA") -> errors.ApiError:
    return errors.ApiError(message, code=code, property=property).with_status(400)


def parse_id(text, what: str = "target domain") -> uuid.UUID:
    """An id of a URL; one that is not a UUID names nothing (404 `{what} not found`)."""
    try:
        return text if isinstance(text, uuid.UUID) else uuid.UUID(str(text))
    except ValueError:
        raise errors.NotFound(f"{what} not found") from None


def get_row(domain_id) -> dict:
    row = store.find_domain(database(), parse_id(domain_id))
    if row is None:
        raise errors.NotFound("target domain not found")
    return row


def handle(row: dict) -> dict:
    """The `target_domain` handle other objects carry."""
    return {"id": row["id"], "name": row["name"], "deleted": False}


def render(row: dict) -> dict:
    policy = None
    if row["auto_onboarding_policy_id"] is not None:
        policy = {"id": str(row["auto_onboarding_policy_id"]), "name": row["policy_name"], "deleted": False}
    body = {key: row[key] for key in (
        "id", "name", "domain_name", "enabled", "periodic_scan", "periodic_scan_interval", "scan_status",
        "scan_message", "last_scanned", "auto_onboarding", "endpoints", "comment", "created", "author", "updated",
        "updated_by")}
    body["auto_onboarding_policy"] = policy
    return body


# --- validation that spans fields and other objects ---------------------------------

def _policy_id(handle_body: dict | None):
    """The policy id of a `{id}` handle; None for {} or {"id": ""}; 400 if it names no policy."""
    if not handle_body or not handle_body.get("id"):
        return None
    try:
        policy_id = uuid.UUID(handle_body["id"])
    except ValueError:
        raise bad("auto_onboarding_policy.id must be a UUID", "auto_onboarding_policy.id",
                  "VALUE_INCORRECT_FORMAT") from None
    if policies_store.find_policy(database(), policy_id) is None:
        raise bad("no password policy has this id", "auto_onboarding_policy.id")
    return policy_id


def _endpoints(sent: list[dict], stored_passwords: dict[str, str]) -> tuple[list[dict], dict[str, str]]:
    """(endpoints to store, with defaults, without passwords; the bind passwords by key)."""
    endpoints, passwords = [], {}
    for i, endpoint in enumerate(sent):
        where = f"endpoints.{i}"
        kind = endpoint.get("type", "LDAP")
        protocol = endpoint["ldap_protocol"]
        if kind == "AD" and protocol == "LDAP":
            raise bad("an AD endpoint needs LDAPS or STARTTLS: AD changes passwords only over encryption",
                      f"{where}.ldap_protocol")
        if not ldap_syntax.is_bind_name(endpoint["ldap_bind_dn"], kind):
            expected = "a DN, user@domain or DOMAIN\\user" if kind == "AD" else "a DN"
            raise bad(f"ldap_bind_dn must be {expected}", f"{where}.ldap_bind_dn", "VALUE_INCORRECT_FORMAT")
        mapping = {**DEFAULT_MAPPINGS[kind], **endpoint.get("attribute_mapping", {})}
        saved = {
            "type": kind,
            "scan_priority": endpoint.get("scan_priority", 0),
            "rotation_priority": endpoint.get("rotation_priority", 0),
            "attribute_mapping": mapping,
            "ldap_protocol": protocol,
            "ldap_address": endpoint["ldap_address"],
            "ldap_port": endpoint.get("ldap_port", DEFAULT_PORTS[protocol]),
            "ldap_base_dn": endpoint["ldap_base_dn"],
            "ldap_bind_dn": endpoint["ldap_bind_dn"],
            "ldap_user_filter": endpoint.get("ldap_user_filter", DEFAULT_FILTERS[kind]),
            "ldap_root_certificates": endpoint.get("ldap_root_certificates", ""),
            "ldap_skip_strict_cert_check": endpoint.get("ldap_skip_strict_cert_check", False),
        }
        # A stored password is kept only by the very endpoint it was set for (its fingerprint:
        # protocol, address, port, TLS trust, bind DN); any change needs it sent again.
        key = bind_passwords.key(saved)
        password = endpoint.get("ldap_bind_password") or stored_passwords.get(key)
        if not password:
            raise bad("ldap_bind_password is required for a new endpoint, and for one whose ldap_protocol, "
                      "ldap_address, ldap_port, ldap_root_certificates, ldap_skip_strict_cert_check or "
                      "ldap_bind_dn changed", f"{where}.ldap_bind_password", "REQUIRED_VALUE_MISSING")
        passwords[key] = password
        endpoints.append(saved)
    return endpoints, passwords


def _settings(body: dict, current: dict, stored_passwords: dict[str, str]) -> tuple[dict, dict[str, str]]:
    settings = {**current, **{k: v for k, v in body.items() if k not in ("endpoints", "auto_onboarding_policy")}}
    if "auto_onboarding_policy" in body:
        settings["auto_onboarding_policy_id"] = _policy_id(body["auto_onboarding_policy"])
    if settings["auto_onboarding"] and settings.get("auto_onboarding_policy_id") is None:
        raise bad("auto_onboarding needs an auto_onboarding_policy", "auto_onboarding_policy", "REQUIRED_VALUE_MISSING")
    if "endpoints" in body:
        settings["endpoints"], passwords = _endpoints(body["endpoints"], stored_passwords)
    else:
        passwords = stored_passwords
    return settings, passwords


# --- operations -----------------------------------------------------------------------

def _name_taken() -> errors.ApiError:
    return errors.Conflict("a target domain with this name already exists", property="name")


def create(principal: Principal, body: dict) -> uuid.UUID:
    domain_id = uuid.uuid4()
    settings, passwords = _settings(body, {**DOMAIN_DEFAULTS, "auto_onboarding_policy_id": None}, {})
    db = database()
    if store.resolve(db, [settings["name"]]):
        raise _name_taken()
    bind_passwords.write(domain_id, passwords)
    try:
        with db.transaction() as cur:
            store.insert_domain(cur, domain_id, settings, principal.sub)
            if settings["enabled"]:
                scan_store.queue_scan(cur, domain_id)
            audit.record("target_domain.create", f"targetdomains/{domain_id}", cur=cur,
                         details={"name": settings["name"], "endpoints": len(settings["endpoints"])})
    except errors.Conflict:
        bind_passwords.forget(domain_id)  # the name was taken meanwhile
        raise _name_taken() from None
    except BaseException:
        bind_passwords.forget(domain_id)
        raise
    return domain_id


def get(domain_id) -> dict:
    return render(get_row(domain_id))


def update(principal: Principal, domain_id, body: dict) -> None:
    row = get_row(domain_id)
    current = {key: row[key] for key in store.SETTINGS}
    stored = bind_passwords.read(row["id"], row["endpoints"]) if "endpoints" in body else {}
    settings, passwords = _settings(body, current, stored)
    db = database()
    if "name" in body and any(found["id"] != row["id"] for found in store.resolve(db, [settings["name"]])):
        raise _name_taken()
    if "endpoints" in body and passwords != stored:
        bind_passwords.write(row["id"], passwords)
    try:
        with db.transaction() as cur:
            if not store.update_domain(cur, row["id"], settings, principal.sub):
                raise errors.NotFound("target domain not found")
            audit.record("target_domain.update", f"targetdomains/{row['id']}", cur=cur,
                         details={"fields": sorted(body)})
    except errors.Conflict:
        raise _name_taken() from None


def delete(domain_id) -> None:
    """Remove the domain: its Vault secrets first, then its rows (a retry finishes a failed delete)."""
    row = get_row(domain_id)
    db = database()
    for managed_id in managed_store.managed_ids(db, row["id"]):
        account_passwords.forget(directory_secret_path(row["id"], managed_id))
    bind_passwords.forget(row["id"])
    with db.transaction() as cur:
        store.delete_domain(cur, row["id"])
        audit.record("target_domain.delete", f"targetdomains/{row['id']}", cur=cur, details={"name": row["name"]})


def refresh(domain_id) -> None:
    """Queue a scan (at most one waits besides a running one); 409 for a disabled domain."""
    row = get_row(domain_id)
    if not row["enabled"]:
        raise errors.Conflict("the target domain is disabled", code="INVALID_REQUEST_DATA")
    with database().transaction() as cur:
        scan_store.queue_scan(cur, row["id"])
        audit.record("target_domain.scan_request", f"targetdomains/{row['id']}", cur=cur)


def list_page(args: dict, *, keywords: list[str] = (), flags: dict | None = None) -> dict:
    total, rows = store.list_domains(database(), keywords=keywords, flags=flags, sortkey=args["sortkey"],
                                     sortdir=args["sortdir"], offset=args["offset"], limit=args["limit"])
    return {"count": total, "items": [render(row) for row in rows]}


def resolve(names: list) -> dict:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise errors.ApiError("the body must be a JSON array of names", code="VALUE_INCORRECT_TYPE").with_status(400)
    if len(names) > 100:
        raise errors.ApiError("at most 100 names", code="VALUE_OUT_OF_BOUNDS").with_status(400)
    if not all(1 <= len(n) <= 128 for n in names):  # a domain's name is 1 to 128 characters
        raise errors.ApiError("a name is 1 to 128 characters", code="VALUE_OUT_OF_BOUNDS").with_status(400)
    rows = store.resolve(database(), names) if names else []
    return {"count": len(rows), "items": [{"id": r["id"], "target_domain_name": r["name"]} for r in rows]}

