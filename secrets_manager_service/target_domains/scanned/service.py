"""Scanned accounts: what the last complete scan found, with the admin's `ignored` and `comment`.

Scans create and update them (see scans); clients only read them, mark them
ignored (auto-onboarding then leaves them alone) and comment on them.
"""
from __future__ import annotations

from common import audit, errors
from common.auth import Principal
from common.web import database
from secrets_manager_service.target_domains.scanned import store
from secrets_manager_service.target_domains.domains import service as domains

SCANNED_FIELDS = ("id", "username", "email", "full_name", "source_id", "security_id", "additional_data", "state",
                  "ignored", "comment", "created", "updated", "updated_by")


def render(row: dict) -> dict:
    body = {key: row[key] for key in SCANNED_FIELDS}
    body["target_domain"] = {"id": row["domain_id"], "name": row["domain_name"], "deleted": False}
    return body


def check_domain_handle(body: dict, domain: dict) -> None:
    """`target_domain` in a body must be empty or name the URL's domain."""
    handle = body.pop("target_domain", None) or {}
    if handle.get("id") not in (None, "", str(domain["id"])):
        raise domains.bad("target_domain.id differs from the domain of the URL", "target_domain.id")


def checked_batch(db_or_cur, domain: dict, ids: list, fetch=store.accounts_in) -> list[dict]:
    """The batch's rows in the order of `ids`; 400 (nothing changes) if any id is not one of the domain's."""
    rows = {row["id"]: row for row in fetch(db_or_cur, domain["id"], ids)}
    missing = [str(i) for i in ids if i not in rows]
    if missing:
        raise domains.bad(f"not accounts of this target domain: {', '.join(missing)}", "ids")
    return [rows[i] for i in ids]


def get(domain_id, account_id) -> dict:
    domain = domains.get_row(domain_id)
    row = store.find_account(database(), domain["id"], domains.parse_id(account_id, "account"))
    if row is None:
        raise errors.NotFound("account not found")
    return render(row)


def list_page(domain_id, args: dict, *, keywords: list[str] = (), filters: dict | None = None) -> dict:
    domain = domains.get_row(domain_id)
    total, rows = store.list_accounts(database(), domain["id"], keywords=keywords, filters=filters,
                                              sortkey=args["sortkey"], sortdir=args["sortdir"],
                                              offset=args["offset"], limit=args["limit"])
    return {"count": total, "items": [render(row) for row in rows]}


def update(principal: Principal, domain_id, account_id, body: dict) -> None:
    domain = domains.get_row(domain_id)
    check_domain_handle(body, domain)
    found = store.find_account(database(), domain["id"], domains.parse_id(account_id, "account"))
    if found is None:
        raise errors.NotFound("account not found")
    _change(principal, domain, [found["id"]], body)


def batch_update(principal: Principal, domain_id, ids: list, changes: dict) -> None:
    domain = domains.get_row(domain_id)
    checked_batch(database(), domain, ids)
    _change(principal, domain, ids, changes)


def _change(principal: Principal, domain: dict, ids: list, changes: dict) -> None:
    if not changes:
        return
    with database().transaction() as cur:
        store.change(cur, domain["id"], ids, changes, principal.sub)
        audit.record("target_domain.accounts.update", f"targetdomains/{domain['id']}", cur=cur,
                     details={"ids": [str(i) for i in ids], "fields": sorted(changes)})
