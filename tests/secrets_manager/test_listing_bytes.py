"""Lists encoded from templates (secrets_manager_service/listing.py) give the bytes the schema's dump
and Flask's encoder give: every family's item, with values that need escaping, and the times the
database renders."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from common.timefmt import rfc3339, rfc3339_sql
from secrets_manager_service.account_secrets.schemas import AccountSecret
from secrets_manager_service.accounts import directory, hosts
from secrets_manager_service.listing import compact, jsonb_value
from secrets_manager_service.target_domains.scanned import service as scanned

TIMES = [datetime(2026, 12, 5, 23, 59, 59, 999999, tzinfo=timezone.utc),
         datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
         datetime(999, 3, 4, 5, 6, 7, 500000, tzinfo=timezone(timedelta(hours=2))),
         datetime(12, 1, 1, tzinfo=timezone.utc)]
# Values a template must escape as Flask's encoder does: quotes, backslashes, control characters,
# non-ASCII (escaped, a surrogate pair beyond the BMP), and a % (the template's own sign).
AWKWARD = ['plain', 'a "quoted" \\ back', 'tab\tnew\nline\x01', 'Åsa Öberg', 'emoji \U0001F511', '100% %(path)s %s']


def _flask_bytes(item: dict) -> str:
    return json.dumps(AccountSecret().dump(item), separators=(",", ":"), ensure_ascii=True)


def test_the_database_renders_times_as_rfc3339_does(db_server):
    with psycopg.connect(db_server) as conn:
        for value in TIMES:
            rendered = conn.execute(f"SELECT {rfc3339_sql('%s::timestamptz')}", (value,)).fetchone()[0]
            assert rendered == rfc3339(value), value
        assert conn.execute(f"SELECT {rfc3339_sql('NULL::timestamptz')}").fetchone()[0] is None


def test_a_jsonb_text_is_read_as_its_value(db_server):
    value = {"dn": "uid=a, ou=b", "ü": 'q"uote\\', "n": 1, "nested": {"list": [None, True, 1.5]}}
    with psycopg.connect(db_server) as conn:
        text = conn.execute("SELECT %s::jsonb::text", (json.dumps(value),)).fetchone()[0]
    assert jsonb_value(text) == value
    assert compact(jsonb_value(text)) == json.dumps(jsonb_value(text), separators=(",", ":"), ensure_ascii=True)


@pytest.mark.parametrize("awkward", AWKWARD)
def test_a_host_account_item_is_what_the_schema_and_flask_give(monkeypatch, awkward):
    created, updated = TIMES[0], TIMES[1]
    row = {"account": awkward, "host_id": "00000000-0000-4000-a000-000000000001", "address": awkward,
           "created": rfc3339(created), "updated": rfc3339(updated)}
    monkeypatch.setattr(hosts.store, "list_accounts", lambda db, **kwargs: (1, [dict(row)]))
    family = hosts.HostAccounts()
    _total, [listed] = family.list_accounts(None, role_ids=None, keywords=[], username=None, within=None,
                                            sortkey="path", sortdir="ASC", offset=0, limit=1)
    assert listed["json"] == _flask_bytes({**family.view(row), "created": created, "updated": updated})


@pytest.mark.parametrize("awkward", AWKWARD)
def test_a_directory_account_item_is_what_the_schema_and_flask_give(monkeypatch, awkward):
    row = {"managed_id": "00000000-0000-4000-b000-000000000002", "domain_id": "00000000-0000-4000-b000-000000000003",
           "domain_name": awkward, "username": awkward, "email": awkward, "full_name": "",
           "created": rfc3339(TIMES[2]), "updated": rfc3339(TIMES[3])}
    monkeypatch.setattr(directory.checkout_store, "list_usable", lambda db, **kwargs: (1, [dict(row)]))
    family = directory.DirectoryAccounts()
    _total, [listed] = family.list_accounts(None, role_ids=None, keywords=[], username=None, within=None,
                                            sortkey="path", sortdir="ASC", offset=0, limit=1)
    view = family.view({**row, "id": row["managed_id"]})
    assert listed["json"] == _flask_bytes({**view, "created": TIMES[2], "updated": TIMES[3]})


@pytest.mark.parametrize("awkward", AWKWARD)
@pytest.mark.parametrize("additional_data", [{"dn": "uid=x", "ü": "ä"}, {}, {"n": 1, "none": None}])
def test_a_scanned_account_item_is_what_the_schema_and_flask_give(awkward, additional_data):
    row = {"id": "00000000-0000-4000-c000-000000000004", "username": awkward, "email": awkward, "full_name": awkward,
           "source_id": awkward, "security_id": "", "additional_data": additional_data, "state": "MANAGED",
           "ignored": awkward == "plain", "comment": awkward, "updated_by": awkward,
           "domain_id": "00000000-0000-4000-c000-000000000005", "domain_name": awkward}
    as_text = json.dumps(additional_data, ensure_ascii=False)  # jsonb's text: spaces, no escapes
    listed = scanned._listed({**row, "additional_data": as_text, "created": rfc3339(TIMES[0]),
                              "updated": rfc3339(TIMES[3])})
    expected = scanned.schemas.ScannedAccount().dump(scanned.render({**row, "created": TIMES[0], "updated": TIMES[3]}))
    assert listed == json.dumps(expected, separators=(",", ":"), ensure_ascii=True)
