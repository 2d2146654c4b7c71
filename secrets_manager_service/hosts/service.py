"""Host secrets: register, read and remove a host's managed accounts; queue rotations; set passwords.

Writes are ordered so nothing is half-written: the Vault is changed first, and
the database rows are committed in one transaction only after the Vault took
every change. If the Vault fails, the client gets 503 and the database is as
before; repeating the request converges. Every change is audited (names of
accounts only, never a password).

A password stored here is bound to the host's endpoint as it is at that moment
(drivers.binding): a later change of the address, port, protocol or
certificate_validation_options leaves it unbound, and no driver sends it there until it
is stored again (initial_password, set-password).
"""
from __future__ import annotations

import uuid
from collections import Counter

from common import audit, errors
from common.auth import Principal
from common.web import database
from secrets_manager_service import account_passwords, names
from secrets_manager_service.accounts import queue_store, rotations
from secrets_manager_service.accounts.families import HOSTS
from secrets_manager_service.drivers import binding
from secrets_manager_service.hosts import store
from secrets_manager_service.policies import store as policies_store
from secrets_manager_service.rotation import store as rotation_store
from secrets_manager_service.script_templates import store as templates_store

DEFAULT_PORTS = {"SSH": 22, "POSTGRESQL": 5432, "NONE": 0}


def _bad(message: str, property: str, code: str = "INVALID_REQUEST_DATA") -> errors.ApiError:
    return errors.ApiError(message, code=code, property=property).with_status(400)


def _checked_settings(host_id: uuid.UUID, metadata: dict, account_names: list[str]) -> tuple[dict, dict]:
    """(host settings to store, its policy), after the checks that span fields and other objects."""
    if metadata.get("host_id", host_id) != host_id:
        raise _bad("metadata.host_id differs from the host_id of the URL", "metadata.host_id")
    repeated = sorted(name for name, n in Counter(account_names).items() if n > 1)
    if repeated:
        raise _bad(f"accounts are listed more than once: {', '.join(repeated)}", "accounts", "VALUE_DUPLICATE")
    if metadata["use_main_account"]:
        if not metadata["main_account"]:
            raise _bad("main_account is required when use_main_account is true", "metadata.main_account",
                       "REQUIRED_VALUE_MISSING")
        if metadata["main_account"] not in account_names:
            # Its password is read from the Vault like any managed account's.
            raise _bad("main_account must be one of the host's accounts", "metadata.main_account")
    if metadata["protocol"] == "SSH" and metadata["script_template_id"] is None:
        raise _bad("an SSH host needs a script_template_id to change passwords with", "metadata.script_template_id",
                   "REQUIRED_VALUE_MISSING")
    policy = policies_store.find_policy(database(), metadata["password_policy_id"])
    if policy is None:
        raise _bad("no password policy has this id", "metadata.password_policy_id")
    if metadata["script_template_id"] and templates_store.find_template(database(), metadata["script_template_id"]) is None:
        raise _bad("no script template has this id", "metadata.script_template_id")
    settings = dict(metadata)
    if settings["port"] is None:
        settings["port"] = DEFAULT_PORTS[settings["protocol"]]
    return settings, policy


def save(principal: Principal, host_id_text: str, body: dict) -> dict:
    """Create or replace the host and its accounts; initial passwords go to the Vault, never to the database."""
    host_id = names.host_uuid(host_id_text)
    accounts = body["accounts"]
    account_names = [a["account"] for a in accounts]
    settings, policy = _checked_settings(host_id, body["metadata"], account_names)
    db = database()
    existing = {a["account"]: a["id"] for a in store.accounts_of(db, host_id)}
    removed = set(existing) - set(account_names)
    # Additions before removals: if the Vault fails halfway, no password of a kept account is lost.
    ended = []  # kept accounts whose password was just given: a rotation under way there is over
    for account in accounts:
        if "initial_password" in account:
            path = names.secret_path(host_id, account["account"])
            version = account_passwords.store(path, account["initial_password"], max_versions=policy["max_versions"])
            if account["account"] in existing:
                _discard_unfinished_rotation(existing[account["account"]], path, version)
                ended.append(existing[account["account"]])
    for account in sorted(removed):
        account_passwords.forget(names.secret_path(host_id, account))
    roles = list({r["id"]: {"id": r["id"], "name": r.get("name") or r["id"]} for r in settings["access_roles"]}.values())
    with db.transaction() as cur:
        store.save_host(cur, host_id, settings, roles, principal.sub)
        store.sync_accounts(cur, host_id, account_names, principal.sub)
        store.bind_accounts(cur, host_id, [a["account"] for a in accounts if "initial_password" in a],
                            binding.host_row_fingerprint(settings))
        for account_id in ended:
            HOSTS.states.clear(cur, account_id)
        audit.record("host.save", f"hosts/{host_id}", cur=cur, details={
            "accounts": account_names, "removed": sorted(removed),
            "initial_passwords": [a["account"] for a in accounts if "initial_password" in a]})
    return get(host_id_text)


def get(host_id_text: str) -> dict:
    host_id = names.host_uuid(host_id_text)
    db = database()
    host = store.find_host(db, host_id)
    if host is None:
        raise errors.NotFound("host secret not found")
    return render(host, store.accounts_of(db, host_id))


def render(host: dict, accounts: list[dict]) -> dict:
    metadata = {key: host[key] for key in (
        "address", "port", "operating_system", "protocol", "certificate_validation_options", "use_main_account",
        "main_account", "password_policy_id", "script_template_id", "created", "updated", "created_by", "updated_by")}
    metadata.update(
        host_id=host["id"],
        policy_id=host["password_policy_id"],
        access_roles=[{**role, "deleted": False} for role in host["access_roles"]],
    )
    return {"metadata": metadata, "accounts": accounts}


def delete(host_id_text: str) -> None:
    """Remove the host: its passwords from the Vault first, then its rows (a retry finishes a failed delete)."""
    host_id = names.host_uuid(host_id_text)
    db = database()
    if store.find_host(db, host_id) is None:
        raise errors.NotFound("host secret not found")
    for account in store.accounts_of(db, host_id):
        account_passwords.forget(names.secret_path(host_id, account["account"]))
    with db.transaction() as cur:
        store.delete_host(cur, host_id)
        audit.record("host.delete", f"hosts/{host_id}", cur=cur)


def _account(host_id_text: str, account: str) -> dict:
    found = store.find_account(database(), names.host_uuid(host_id_text), names.account_name(account))
    if found is None:
        raise errors.NotFound("account not found")
    return found


def queue_rotation(host_id_text: str, account: str) -> None:
    found = _account(host_id_text, account)
    with database().transaction() as cur:
        queue_store.enqueue(cur, HOSTS.kind, found["id"], rotation_store.MANUAL, restart=True)
        audit.record("rotation.request", names.secret_path(found["host_id"], found["account"]), cur=cur)


def _discard_unfinished_rotation(account_id, path: str, version: int) -> None:
    """A password stored as is is the target's truth: a rotation under way is over (its worker
    stops at its next step; the caller clears its state), and its pending password, which never
    became current, goes."""
    rotations.end_unfinished(HOSTS, rotations.app_deps(), account_id, path, version)


def set_password(host_id_text: str, account: str, password: str) -> None:
    """Store `password` as the account's newest version, as is (no policy check: it is the target's truth)."""
    found = _account(host_id_text, account)
    path = names.secret_path(found["host_id"], found["account"])
    # It is the target's truth: a rotation under way is over (accounts.rotations says how).
    version = rotations.store_set_password(HOSTS, rotations.app_deps(), found["id"], path, password,
                                           max_versions=found["max_versions"])
    with database().transaction() as cur:
        # Bound to the endpoint as read before the password was stored: had it changed since,
        # the two would not match and nothing would be sent.
        store.bind_accounts(cur, found["host_id"], [found["account"]], binding.host_row_fingerprint(found))
        store.touch_account(cur, found["id"])
        HOSTS.states.clear(cur, found["id"])
        audit.record("password.set", path, cur=cur,
                     details={"version": version})
