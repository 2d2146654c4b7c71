"""`secrets put --generate`, `secrets versions list|schedule-destroy|cancel-destroy` against the
running suite, with the admin token `make run` prints (it has the versioned API's `service` scope)."""
from __future__ import annotations

import json
import string

import pytest

from tests.e2e.suite import ok, one_line_error
from tests.support import unique

pytestmark = pytest.mark.slow


def test_generate_list_schedule_and_cancel(logged_in, suite):
    cli = logged_in
    as_admin = {"SECRETS_TOKEN": suite.token}
    name = unique("cli/generated")
    written = json.loads(ok(cli("-o", "json", "put", name, "user=app", "--generate", "db-password:length=24,punctuation=no",
                                "--description", "made by the CLI", extra_env=as_admin)))
    assert written == {"name": name, "version": 1, "generated": "db-password"}
    password = ok(cli("get", name, "--version", "1", "--field", "db-password", extra_env=as_admin)).strip()
    assert len(password) == 24 and set(password) <= set(string.ascii_letters + string.digits)

    table = ok(cli("versions", "list", name, extra_env=as_admin))
    assert table.splitlines()[0].split() == ["VERSION", "STATUS", "CREATED", "DESTROY_AT", "PAYLOAD_ENTRY_KEYS",
                                             "DESCRIPTION"]
    assert "ACTIVE" in table and '["db-password", "user"]' in table and "made by the CLI" in table
    assert password not in table

    ok(cli("versions", "schedule-destroy", name, "1", "--pending-period", "2h", extra_env=as_admin))
    (item,) = json.loads(ok(cli("-o", "json", "versions", "list", name, extra_env=as_admin)))["versions"]
    assert item["status"] == "SCHEDULED_FOR_DESTRUCTION" and item["destroy_at"]
    assert "404 " in one_line_error(cli("get", name, "--version", "1", extra_env=as_admin), 5)
    ok(cli("versions", "cancel-destroy", name, "1", extra_env=as_admin))
    (item,) = json.loads(ok(cli("-o", "json", "versions", "list", name, extra_env=as_admin)))["versions"]
    assert (item["status"], item["destroy_at"]) == ("ACTIVE", None)
    assert ok(cli("get", name, "--version", "1", "--field", "db-password", extra_env=as_admin)).strip() == password


def test_bad_generate_options_and_periods_are_one_line_errors(logged_in, suite):
    cli = logged_in
    as_admin = {"SECRETS_TOKEN": suite.token}
    name = unique("cli/bad-generate")
    assert "--generate" in one_line_error(cli("put", name, "--generate", "pw:colour=blue", extra_env=as_admin), 2)
    assert "400 " in one_line_error(cli("put", name, "--generate", "pw:length=2", extra_env=as_admin), 2)
    assert "versioned API" in one_line_error(cli("put", "--personal", name, "--generate", "pw", extra_env=as_admin), 2)
    ok(cli("put", name, "--generate", "pw", extra_env=as_admin))
    line = one_line_error(cli("versions", "schedule-destroy", name, "1", "--pending-period", "5m", extra_env=as_admin), 2)
    assert "400 " in line and "pending_period" in line
