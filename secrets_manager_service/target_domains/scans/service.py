"""Scanning a target domain's directory (in the worker; requests never wait for a directory).

A scan binds to the first endpoint (by `scan_priority`, then list order) that
connects and binds, reads the subtree `ldap_base_dn` with `ldap_user_filter` in
pages of 500 (RFC 2696), maps each entry's attributes, and stages each page in
the database, so it holds one page in memory at a time. Only when the directory
has been read to the end is the scan merged (new, changed, REMOVED); any failure
ends it as FAILED with a safe `scan_message` and changes no account. After a
`DONE` scan, the worker's flow (target_domains.flows) lets auto-onboarding take the new accounts.

An endpoint is used only with the bind password stored under its own fingerprint
(drivers.binding): one changed since its password was set is skipped without a connection,
and `scan_message` says so. A scan also asks the directory who its bind account is (WhoAmI,
or the entry an AD name resolves to) and keeps the answer, so onboarding recognises the
bind account by the server's word, not by how the DN was spelled.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import ldap.filter

from common import audit, errors
from common.web import database
from secrets_manager_service.drivers import binding
from secrets_manager_service.drivers import ldap as ldap_driver
from secrets_manager_service.target_domains import bind_passwords, ldap_syntax
from secrets_manager_service.target_domains.domains import store
from secrets_manager_service.target_domains.endpoints import endpoint_of, endpoints_in_order
from secrets_manager_service.target_domains.scans import store as scan_store

log = logging.getLogger(__name__)

WORKER = "secrets-manager-worker"
# The fields a mapping fills; anything else it names goes to additional_data.
MAPPED = ("username", "email", "full_name", "source_id", "security_id", "sam_account_name")


class ScanFailed(Exception):
    """A scan that cannot complete; the message is safe for `scan_message`."""


class _Gone(Exception):
    """The domain was deleted while it was being scanned."""


def map_entry(dn: str, attributes: dict[str, list[bytes]], mapping: dict[str, str]) -> dict | None:
    """The scanned-account fields of one entry; None if it has no username attribute."""
    by_name = {name.lower(): values for name, values in attributes.items()}
    entry = {field: "" for field in MAPPED}
    extra = {"dn": dn}
    for field, attribute in mapping.items():
        text = ldap_driver.attribute_text(attribute, by_name.get(attribute.lower(), []))
        if field in MAPPED:
            entry[field] = text
        else:
            extra[field] = text
    if not entry["username"]:
        return None
    entry.update(dn=dn, identity=entry["source_id"] or dn, additional_data=extra)
    return entry


@dataclass(frozen=True)
class ScanRun:
    status: str  # "DONE", "FAILED", "GONE"
    domain: dict | None  # as it was when the scan started; None when it was gone


def queue_periodic() -> None:
    """Queue the periodic scans that are due."""
    scan_store.queue_periodic_scans(database())


def run_one_queued() -> ScanRun | None:
    """Claim and run one queued scan; None if none is queued. Onboarding is the caller's next step."""
    db = database()
    with db.transaction() as cur:
        job = scan_store.claim(cur)
    if job is None:
        return None
    domain = store.find_domain(db, job["domain_id"])
    if domain is None:
        return ScanRun("GONE", None)
    started = time.monotonic()
    try:
        counts = _read_directory(job["id"], domain)
    except _Gone:
        return ScanRun("GONE", domain)
    except ScanFailed as failure:
        _end(job, domain, "FAILED", str(failure))
        return ScanRun("FAILED", domain)
    status = "DONE"
    with db.transaction() as cur:
        if not scan_store.renew(cur, job["id"]):
            return ScanRun("GONE", domain)
        merged = scan_store.merge(cur, job["id"], domain["id"])
        message = f"{merged['found']} accounts: {merged['new']} new, {merged['removed']} removed"
        if counts["skipped"]:
            message += f"; {counts['skipped']} entries without a username attribute skipped"
        scan_store.finish(cur, job["id"], domain["id"], status=status, message=message,
                          bind_account_dns=counts["bind_account_dns"])
        audit.record("target_domain.scan", f"targetdomains/{domain['id']}", cur=cur, principal=WORKER,
                     details={**merged, "skipped": counts["skipped"], "endpoint": counts["endpoint"],
                              "bind_account_dns": counts["bind_account_dns"],
                              "seconds": round(time.monotonic() - started, 2)})
    log.info("scan done", extra={"target_domain_id": str(domain["id"]), **merged})
    return ScanRun(status, domain)


def _end(job: dict, domain: dict, status: str, message: str) -> None:
    log.warning("scan failed", extra={"target_domain_id": str(domain["id"]), "scan_message": message})
    with database().transaction() as cur:
        scan_store.finish(cur, job["id"], domain["id"], status=status, message=message)
        audit.record("target_domain.scan", f"targetdomains/{domain['id']}", audit.FAILED, cur=cur, principal=WORKER,
                     details={"scan_message": message})


def _read_directory(scan_id, domain: dict) -> dict:
    """Stage every matching entry of the first endpoint that binds; {"skipped", "endpoint", "bind_account_dns"}."""
    try:
        passwords = bind_passwords.read(domain["id"], domain["endpoints"])
    except errors.ApiError:
        raise ScanFailed("the Vault is unreachable: the bind password cannot be read") from None
    failures = []
    for saved in endpoints_in_order(domain, "scan_priority"):
        endpoint = endpoint_of(saved, passwords)
        try:
            with ldap_driver.connect(endpoint) as directory:
                bind_account = bind_account_dn(directory, saved)
                skipped = _stage_all(scan_id, directory, saved)
                return {"skipped": skipped, "endpoint": endpoint.url,
                        "bind_account_dns": [bind_account] if bind_account else []}
        except (ldap_driver.DirectoryError, binding.NotBound) as exc:  # not used (no connection, no bind): the next
            failures.append(str(exc))
    raise ScanFailed("; ".join(failures) or "the domain has no endpoint")


def bind_account_dn(directory: ldap_driver.Directory, saved: dict) -> str | None:
    """The DN of the entry the endpoint binds as, by the directory's word where it gives one:
    its WhoAmI answer; for an AD name (`user@domain`, `DOMAIN\\user`) without WhoAmI, the one
    entry under the base DN with that userPrincipalName or sAMAccountName. None if it cannot say."""
    said = directory.who_am_i()
    if said:
        return said
    bind = saved["ldap_bind_dn"]
    if ldap_syntax.is_dn(bind):
        return None  # the configured DN is compared anyway (managed.service.is_bind_account)
    if "@" in bind:
        wanted = f"(userPrincipalName={ldap.filter.escape_filter_chars(bind)})"
    else:
        name = bind.rsplit("\\", 1)[-1]
        wanted = f"(sAMAccountName={ldap.filter.escape_filter_chars(name)})"
    try:
        return directory.only_match(saved["ldap_base_dn"], wanted)
    except ldap_driver.DirectoryError:
        return None  # not knowing it only leaves the configured name to compare with


def _stage_all(scan_id, directory, saved: dict) -> int:
    mapping = saved["attribute_mapping"]
    attributes = sorted(set(mapping.values()))
    skipped = 0
    pages = directory.pages(saved["ldap_base_dn"], saved["ldap_user_filter"], attributes)
    while True:
        try:
            page = next(pages, None)
        except ldap_driver.DirectoryError as exc:
            # The directory went away after it bound: the scan is over (no other endpoint's partial view).
            raise ScanFailed(str(exc)) from None
        if page is None:
            return skipped
        entries = []
        for dn, attrs in page:
            entry = map_entry(dn, attrs, mapping)
            if entry is None:
                skipped += 1
            else:
                entries.append(entry)
        with database().transaction() as cur:
            if not scan_store.renew(cur, scan_id):
                raise _Gone()
            scan_store.stage(cur, scan_id, entries)
