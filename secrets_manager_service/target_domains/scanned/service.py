"""Scanned accounts: what the last complete scan found, with the admin's `ignored` and `comment`.

Scans create and update them (see scans); clients only read them, mark them
ignored (auto-onboarding then leaves them alone) and comment on them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter

from common import audit, errors
from common.auth import Principal
from common.web import database
from secrets_manager_service import listing
from secrets_manager_service.listing import compact, jsonb_value, quoted
from secrets_manager_service.target_domains.scanned import schemas, store
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


def list_page(domain_id, args: dict, *, keywords: list[str] = (), filters: dict | None = None):
    """The answer itself: its items encoded from the list's rows (listing.py). 404 if the domain
    does not exist: asked only when the page is empty (a row is of an existing domain)."""
    domain_id = domains.parse_id(domain_id)
    total, rows = store.list_accounts(database(), domain_id, keywords=keywords, filters=filters,
                                      sortkey=args["sortkey"], sortdir=args["sortdir"],
                                      offset=args["offset"], limit=args["limit"])
    if not rows:
        domains.get_row(domain_id)
    return listing.page_response(total, [_listed(row) for row in rows])


# The list's text columns, in the order of _LISTED's first slots (NOT NULL: quoted as they are).
_TEXTS = ("id", "username", "email", "full_name", "source_id", "security_id", "state", "comment", "updated_by",
          "domain_id", "domain_name", "created", "updated")
_texts = itemgetter(*_TEXTS)


def _listed(row: dict) -> str:
    """A list row (store.list_accounts') as the list shows it: render()'s item, encoded."""
    return _LISTED.format(*map(quoted, _texts(row)), _text_map(row["additional_data"]),
                          "true" if row["ignored"] else "false")


_ADDITIONAL_DATA = schemas.ScannedAccount().fields["additional_data"]


def _text_map(text: str) -> str:
    """`additional_data` (its jsonb text) as the schema dumps it: a {text: text} map as it is, any
    other through its field."""
    if text == "{}":
        return text
    value = jsonb_value(text)
    if type(value) is not dict or not all(type(k) is str and type(v) is str for k, v in value.items()):
        value = _ADDITIONAL_DATA.serialize("additional_data", {"additional_data": value})
    return compact(value)


def _listed_item() -> listing.ItemJson:
    slots = {name: f"\x01{name}" for name in _TEXTS}
    slots.update(created=datetime(1001, 1, 1, tzinfo=timezone.utc), updated=datetime(1001, 1, 2, tzinfo=timezone.utc),
                 additional_data={"\x01additional": "\x01data"}, ignored=True)
    return listing.ItemJson(schemas.ScannedAccount(), render(slots), slots)


_LISTED = _listed_item()


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
