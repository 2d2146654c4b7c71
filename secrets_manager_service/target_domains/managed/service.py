"""Managed directory accounts: onboard scanned accounts, change, delete, rotate, set passwords.

A managed account is a scanned account the Secrets Manager keeps the password of,
in the Vault (`targetdomains/{domain_id}/{id}`, see names.directory_secret_path); its
directory fields are always its scanned account's. Passwords go to the Vault
before the rows that refer to them commit, and leave it before the rows go, so a
Vault failure is a 503 that changes nothing. Every change is audited without a password.
A password stored here is bound to the domain's endpoints as they are then (drivers.binding):
rotations and verifications send it nowhere else.
"""
from __future__ import annotations

import uuid

from common import audit, errors
from common.auth import Principal
from common.web import database
from secrets_manager_service.drivers.dn import canonical_dn
from secrets_manager_service import account_passwords, names
from secrets_manager_service.accounts import rotations
from secrets_manager_service.accounts.families import DIRECTORY
from secrets_manager_service.policies import store as policies_store
from secrets_manager_service.target_domains import bind_passwords, ldap_syntax
from secrets_manager_service.target_domains.scanned import service as scanned
from secrets_manager_service.target_domains.scanned import store as scanned_store
from secrets_manager_service.target_domains.domains import service as domains
from secrets_manager_service.target_domains.managed import store

MANUAL, SCHEDULED, CHECKOUT_RELEASE, ONBOARDING, PASSWORD_SET = (
    "MANUAL", "SCHEDULED", "CHECKOUT_RELEASE", "ONBOARDING", "PASSWORD_SET")
CHECKOUT_TYPE = "TARGET_DOMAIN_SECRET"
WORKER = "secrets-manager-worker"  # the audit trail's principal for what the worker does
DEFAULTS = {"enabled": True, "rotation_enabled": True, "explicit_checkout": False, "disable_rdp_cert_auth": False,
            "comment": ""}


def secret_name(row: dict) -> str:
    return names.directory_secret_path(row["domain_id"], row["id"])


def _checkout_item(row: dict, checkout: dict) -> dict:
    return {"id": checkout["id"], "type": CHECKOUT_TYPE, "user_id": checkout["user_id"], "expires": checkout["expires"],
            "created": checkout["created"], "explicit_checkout": checkout["explicit_checkout"],
            "username": row["username"], "email": row["email"], "full_name": row["full_name"],
            "target_domain_id": row["domain_id"], "managed_account_id": row["id"], "secret_name": secret_name(row)}


def render(row: dict, history: list[dict], checkouts: list[dict]) -> dict:
    limit = row["max_concurrent_checkouts"]
    locked = bool(limit) and row["live_checkouts"] >= limit
    body = {key: row[key] for key in (
        "id", "username", "email", "full_name", "sam_account_name", "source_id", "security_id", "additional_data",
        "enabled", "rotation_enabled", "explicit_checkout", "comment", "disable_rdp_cert_auth", "last_error",
        "last_error_details", "created", "author", "updated", "updated_by")}
    body.update(
        target_domain={"id": row["domain_id"], "name": row["domain_name"], "deleted": False},
        password_policy={"id": str(row["password_policy_id"]), "name": row["policy_name"], "deleted": False},
        state=row["api_state"], secret_name=secret_name(row), locked=locked,
        locked_timestamp=row["locked_since"] if locked else None, rotation_history=history,
        checkouts=[_checkout_item(row, c) for c in checkouts],
        access_roles=[{**role, "deleted": False} for role in row["access_roles"]],
    )
    return body


def _render_all(rows: list[dict]) -> list[dict]:
    ids = [row["id"] for row in rows]
    history = store.histories(database(), ids) if ids else {}
    checkouts = store.live_checkouts(database(), ids) if ids else {}
    return [render(row, history.get(row["id"], []), checkouts.get(row["id"], [])) for row in rows]


def get_row(domain: dict, managed_id) -> dict:
    row = store.find_managed(database(), domain["id"], domains.parse_id(managed_id, "managed account"))
    if row is None:
        raise errors.NotFound("managed account not found")
    return row


def get(domain_id, managed_id) -> dict:
    return _render_all([get_row(domains.get_row(domain_id), managed_id)])[0]


def list_page(domain_id, args: dict, *, keywords: list[str] = (), filters: dict | None = None) -> dict:
    domain = domains.get_row(domain_id)
    total, rows = store.list_managed(database(), domain["id"], keywords=keywords, filters=filters,
                                     sortkey=args["sortkey"], sortdir=args["sortdir"], offset=args["offset"],
                                     limit=args["limit"])
    return {"count": total, "items": _render_all(rows)}


# --- what onboarding checks ------------------------------------------------------------

def _policy(domain: dict, handle: dict | None, *, required: bool = True) -> dict | None:
    """The policy of a `{id}` handle, else the domain's auto_onboarding_policy; 400 if neither."""
    policy_id = (handle or {}).get("id") or domain["auto_onboarding_policy_id"]
    if not policy_id:
        if not required:
            return None
        raise domains.bad("a password_policy is required (the domain has no auto_onboarding_policy)",
                          "password_policy", "REQUIRED_VALUE_MISSING")
    try:
        policy = policies_store.find_policy(database(), uuid.UUID(str(policy_id)))
    except ValueError:
        policy = None
    if policy is None:
        raise domains.bad("no password policy has this id", "password_policy.id")
    return policy


def is_bind_account(domain: dict, account: dict) -> bool:
    """Whether an endpoint binds as this account, by identity, not spelling: the account's DN is
    the DN the directory said its bind account is (scans.service.bind_account_dn, at the last DONE scan)
    or an endpoint's bind DN, compared in canonical form (drivers.dn); for AD's
    `user@domain` and `DOMAIN\\user`, also by the account name (sAMAccountName, else username)."""
    account_dn = canonical_dn(account["dn"])
    if any(canonical_dn(said) == account_dn for said in domain["bind_account_dns"]):
        return True
    for endpoint in domain["endpoints"]:
        bind = endpoint["ldap_bind_dn"]
        if canonical_dn(bind) == account_dn:
            return True
        if endpoint["type"] == "AD" and not ldap_syntax.is_dn(bind):
            name = bind.split("@", 1)[0] if "@" in bind else bind.rsplit("\\", 1)[-1]
            if name.lower() in {account["sam_account_name"].lower(), account["username"].lower()}:
                return True
    return False


def endpoint_fingerprints(domain: dict) -> list[str]:
    """The domain's endpoints as a password stored now is bound to them (drivers.binding)."""
    return [bind_passwords.key(endpoint) for endpoint in domain["endpoints"]]


def _check_onboardable(domain: dict, account: dict | None, prop: str) -> None:
    if account is None or account["removed"]:
        raise domains.bad("no account of this target domain's last scan matches", prop)
    if account["managed_id"] is not None:
        raise errors.Conflict("the account is managed already", property=prop)
    if is_bind_account(domain, account):
        raise domains.bad("an endpoint binds as this account: rotating its password would cut the domain off", prop)


def _roles(sent: list[dict] | None) -> list[dict]:
    return list({r["id"]: {"id": r["id"], "name": r.get("name") or r["id"]} for r in sent or ()}.values())


def _onboard(cur, principal_sub: str, domain: dict, account: dict, data: dict, policy: dict, *,
             password_version: int | None, managed_id) -> None:
    settings = {**DEFAULTS, **{k: data[k] for k in DEFAULTS if k in data}, "password_policy_id": policy["id"]}
    store.insert_managed(cur, managed_id, domain["id"], account["id"], settings, _roles(data.get("access_roles")),
                         "ACTIVE" if password_version else "PENDING", principal_sub)
    if password_version:
        store.bind_to_endpoints(cur, [managed_id], endpoint_fingerprints(domain))
        store.add_history(cur, managed_id, version=password_version, trigger=PASSWORD_SET, status="SUCCESS")
    if data.get("rotate"):
        store.enqueue(cur, managed_id, ONBOARDING)


# --- operations ---------------------------------------------------------------------------

def create(principal: Principal, domain_id, body: dict) -> uuid.UUID:
    domain = domains.get_row(domain_id)
    scanned.check_domain_handle(body, domain)
    if not body.get("source_id") and not body.get("username"):
        raise domains.bad("username (or source_id) names the directory account to manage", "username",
                          "REQUIRED_VALUE_MISSING")
    account = scanned_store.find_by(database(), domain["id"], source_id=body.get("source_id"),
                                    username=body.get("username"))
    _check_onboardable(domain, account, "username")
    policy = _policy(domain, body.get("password_policy"))
    managed_id = uuid.uuid4()
    version = None
    if body.get("password"):
        version = account_passwords.store(names.directory_secret_path(domain["id"], managed_id), body["password"],
                                          max_versions=policy["max_versions"])
    try:
        with database().transaction() as cur:
            _onboard(cur, principal.sub, domain, account, body, policy, password_version=version,
                     managed_id=managed_id)
            audit.record("managed_account.create", names.directory_secret_path(domain["id"], managed_id), cur=cur,
                         details={"username": account["username"], "password": version is not None,
                                  "rotate": bool(body.get("rotate"))})
    except BaseException:
        if version is not None:
            account_passwords.forget(names.directory_secret_path(domain["id"], managed_id))
        raise
    return managed_id


def batch_create(principal: Principal, domain_id, ids: list, data: dict) -> list[uuid.UUID]:
    domain = domains.get_row(domain_id)
    rows = scanned.checked_batch(database(), domain, ids)
    for row in rows:
        _check_onboardable(domain, row, "ids")
    policy = _policy(domain, data.get("password_policy"))
    managed_ids = [uuid.uuid4() for _ in rows]
    with database().transaction() as cur:
        for managed_id, account in zip(managed_ids, rows):
            _onboard(cur, principal.sub, domain, account, data, policy, password_version=None, managed_id=managed_id)
        audit.record("managed_account.batch_create", f"targetdomains/{domain['id']}", cur=cur,
                     details={"ids": [str(i) for i in managed_ids], "rotate": bool(data.get("rotate"))})
    return managed_ids


def auto_onboard(domain_id) -> int:
    """After a DONE scan: every UNMANAGED, not ignored, non-bind account becomes managed and is rotated."""
    domain = domains.get_row(domain_id)
    if not domain["auto_onboarding"] or not domain["enabled"]:
        return 0
    policy = _policy(domain, None, required=False)
    if policy is None:
        return 0
    candidates = [a for a in scanned_store.unmanaged_for_onboarding(database(), domain["id"])
                  if not is_bind_account(domain, a)]
    if not candidates:
        return 0
    with database().transaction() as cur:
        for account in candidates:
            _onboard(cur, WORKER, domain, account, {"rotate": True}, policy, password_version=None,
                     managed_id=uuid.uuid4())
        audit.record("managed_account.auto_onboard", f"targetdomains/{domain['id']}", cur=cur, principal=WORKER,
                     details={"accounts": len(candidates)})
    return len(candidates)


def _changes(domain: dict, body: dict) -> tuple[dict, list[dict] | None]:
    changes = {k: body[k] for k in ("enabled", "rotation_enabled", "explicit_checkout", "disable_rdp_cert_auth",
                                    "comment") if k in body}
    if "password_policy" in body:
        changes["password_policy_id"] = _policy(domain, body["password_policy"])["id"]
    roles = _roles(body["access_roles"]) if "access_roles" in body else None
    return changes, roles


def update(principal: Principal, domain_id, managed_id, body: dict) -> None:
    domain = domains.get_row(domain_id)
    scanned.check_domain_handle(body, domain)
    row = get_row(domain, managed_id)
    _apply(principal, domain, [row["id"]], body)


def batch_update(principal: Principal, domain_id, ids: list, changes: dict) -> None:
    domain = domains.get_row(domain_id)
    _checked(domain, ids)
    _apply(principal, domain, ids, changes)


def _apply(principal: Principal, domain: dict, ids: list, body: dict) -> None:
    changes, roles = _changes(domain, body)
    if not changes and roles is None:
        return
    with database().transaction() as cur:
        store.change(cur, domain["id"], ids, changes, roles, principal.sub)
        audit.record("managed_account.update", f"targetdomains/{domain['id']}", cur=cur,
                     details={"ids": [str(i) for i in ids], "fields": sorted(body)})


def _checked(domain: dict, ids: list) -> list[dict]:
    return scanned.checked_batch(database(), domain, ids, fetch=store.managed_in)


def delete(domain_id, managed_id) -> None:
    domain = domains.get_row(domain_id)
    _delete(domain, [get_row(domain, managed_id)["id"]])


def batch_delete(domain_id, ids: list) -> None:
    domain = domains.get_row(domain_id)
    _checked(domain, ids)
    _delete(domain, ids)


def _delete(domain: dict, ids: list) -> None:
    """Passwords out of the Vault first, then the rows (their checkouts and queued rotations go too)."""
    for managed_id in ids:
        account_passwords.forget(names.directory_secret_path(domain["id"], managed_id))
    with database().transaction() as cur:
        store.delete_managed(cur, domain["id"], ids)
        audit.record("managed_account.delete", f"targetdomains/{domain['id']}", cur=cur,
                     details={"ids": [str(i) for i in ids]})


def queue_rotation(domain_id, managed_id) -> None:
    domain = domains.get_row(domain_id)
    _queue(domain, [get_row(domain, managed_id)])


def batch_rotate(domain_id, ids: list) -> None:
    domain = domains.get_row(domain_id)
    _queue(domain, _checked(domain, ids))


def _queue(domain: dict, rows: list[dict]) -> None:
    for row in rows:
        if not row["enabled"] or row["removed"]:
            raise errors.Conflict(f"{row['username']} is {'removed' if row['removed'] else 'disabled'}: no rotations",
                                  code="INVALID_REQUEST_DATA")
    with database().transaction() as cur:
        for row in rows:
            store.enqueue(cur, row["id"], MANUAL)
        audit.record("rotation.request", f"targetdomains/{domain['id']}", cur=cur,
                     details={"ids": [str(r["id"]) for r in rows]})


def set_password(domain_id, managed_id, password: str) -> None:
    """Store `password` as the current version as is: it is the directory's truth (no policy applies)."""
    domain = domains.get_row(domain_id)
    row = get_row(domain, managed_id)
    version = rotations.store_set_password(DIRECTORY, rotations.app_deps(), row["id"],
                                           names.directory_secret_path(domain["id"], row["id"]), password,
                                           max_versions=row["max_versions"])
    with database().transaction() as cur:
        DIRECTORY.states.clear(cur, row["id"])
        # Bound to the endpoints as read before the password was stored: one changed since does
        # not match, and nothing is sent there.
        store.bind_to_endpoints(cur, [row["id"]], endpoint_fingerprints(domain))
        store.set_state(cur, row["id"], "ACTIVE")
        store.add_history(cur, row["id"], version=version, trigger=PASSWORD_SET, status="SUCCESS")
        audit.record("password.set", secret_name(row), cur=cur, details={"version": version})
