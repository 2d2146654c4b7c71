"""Versions as Lockbox keeps them (API.md, "Version lifecycle and generated passwords"): status,
descriptions, entry keys, generated passwords, scheduled destruction and its cancel.

Pending periods are at least an hour: tests move `destroy_at` into the past in the table (what
an hour's wait would do) and check the ciphertext in the table, not only through the API.
"""
from __future__ import annotations

import logging
import string
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.vault.helpers import V1, assert_error, new_role, unique


def write(client, headers, path, body, status=200):
    response = client.post(f"{V1}/secret/data/{path}", headers=headers, json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def listed(client, headers, path) -> dict[int, dict]:
    response = client.get(f"{V1}/secret/versions/{path}", headers=headers)
    assert response.status_code == 200, response.json
    return {item["version"]: item for item in response.json["versions"]}


def read(client, headers, path, version=None):
    query = f"?version={version}" if version is not None else ""
    return client.get(f"{V1}/secret/data/{path}{query}", headers=headers)


def post(client, headers, rule, path, body):
    return client.post(f"{V1}/secret/{rule}/{path}", headers=headers, json=body)


def rows(sql, path) -> dict[int, dict]:
    """The versions as the table holds them."""
    with sql.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("""SELECT v.* FROM vault_secret_versions v JOIN vault_secrets s ON s.id = v.secret_id
                        WHERE s.owner_id = '' AND s.name = %s""", (path,))
        return {row["version"]: row for row in cur.fetchall()}


def make_due(sql, path, version) -> None:
    """What waiting out the pending period does: destroy_at is in the past."""
    sql.execute("""UPDATE vault_secret_versions v SET destroy_at = now() - interval '1 second'
                    FROM vault_secrets s WHERE s.id = v.secret_id AND s.owner_id = '' AND s.name = %s
                     AND v.version = %s AND v.destroy_at IS NOT NULL""", (path, version))


def assert_intact(row) -> None:
    assert row["ciphertext"] is not None and row["destroyed"] is False, row


def assert_destroyed(row) -> None:
    assert row["ciphertext"] is None and row["destroyed"] is True, row
    assert row["destroy_at"] is None and row["payload_entry_keys"] == [], row


# --------------------------------------------------------------------------- fields and descriptions


def test_versions_list_and_metadata_show_status_keys_and_description(client, svc, tokens):
    path = unique("lockbox/fields")
    write(client, svc, path, {"data": {"user": "app", "password": "value-one"}, "options": {"description": "first"}})
    write(client, svc, path, {"data": {"token": "value-two"}})
    versions = listed(client, svc, path)
    assert versions[1]["status"] == "ACTIVE" and versions[1]["destroy_at"] is None
    assert versions[1]["description"] == "first" and versions[2]["description"] == ""
    assert versions[1]["payload_entry_keys"] == ["password", "user"] and versions[2]["payload_entry_keys"] == ["token"]
    assert versions[1]["password_payload_specification"] is None
    assert "value-" not in str(versions)
    metadata = client.get(f"{V1}/secret/metadata/{path}", headers=tokens.headers("hostsManage")).json
    assert {v["version"]: v for v in metadata["versions"]} == versions


def test_versions_written_through_v1_have_keys_and_no_description(client, tokens, svc):
    name, role = unique("lockbox-v1"), new_role()
    assert client.post(f"{V1}/secrets", headers=tokens.headers("admin"),
                       json={"name": name, "data": {"b": 1, "a": 2}, "write_roles": [role]}).status_code == 201
    assert client.put(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role]),
                      json={"data": {"c": 3}}).status_code == 200
    versions = listed(client, svc, name)
    assert [versions[1]["payload_entry_keys"], versions[2]["payload_entry_keys"]] == [["a", "b"], ["c"]]
    assert versions[1]["description"] == versions[2]["description"] == ""


def test_a_too_long_description_is_400_and_writes_nothing(client, svc):
    path = unique("lockbox/desc")
    write(client, svc, path, {"data": {"a": 1}})
    body = assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc,
                                    json={"data": {"a": 2}, "options": {"description": "x" * 1025}}),
                        400, "VALUE_OUT_OF_BOUNDS")
    assert body["details"][0]["property"] == "options.description"
    write(client, svc, path, {"data": {"a": 3}, "options": {"description": "y" * 1024}})
    assert sorted(listed(client, svc, path)) == [1, 2]


# --------------------------------------------------------------------------- generated passwords


def test_a_generated_password_is_stored_beside_the_data_and_shown_only_by_a_data_read(client, svc, sql, caplog):
    caplog.set_level(logging.DEBUG)
    path = unique("lockbox/generated")
    spec = {"password_key": "db.password", "length": 40, "excluded_punctuation": "\"'\\`"}
    response = client.post(f"{V1}/secret/data/{path}", headers=svc,
                           json={"data": {"user": "app"}, "password_payload_specification": spec})
    assert response.status_code == 200, response.json
    assert list(response.json) == ["version", "created", "deletion_time", "destroyed"]
    data = read(client, svc, path).json["data"]
    password = data["db.password"]
    assert data["user"] == "app" and len(password) == 40
    allowed = set(string.ascii_letters + string.digits + string.punctuation) - set("\"'\\`")
    assert set(password) <= allowed
    for characters in (string.ascii_uppercase, string.ascii_lowercase, string.digits, set(string.punctuation) - set("\"'\\`")):
        assert set(password) & set(characters)
    (version,) = listed(client, svc, path).values()
    assert version["payload_entry_keys"] == ["db.password", "user"]
    assert version["password_payload_specification"] == {
        "password_key": "db.password", "length": 40, "include_uppercase": True, "include_lowercase": True,
        "include_digits": True, "include_punctuation": True, "included_punctuation": "",
        "excluded_punctuation": "\"'\\`"}
    # Nowhere but the data read: not the write's answer, the list, the audit trail or the log.
    assert password not in response.get_data(as_text=True) and password not in str(version)
    audit_rows = sql.execute("SELECT details::text, action FROM audit_events WHERE target = %s", (f"secret:{path}",)).fetchall()
    assert {action for _, action in audit_rows} == {"secret.write", "secret.read"}
    assert not [details for details, _ in audit_rows if password in details]
    assert password not in caplog.text
    assert not [r for r in caplog.records if password in str(r.__dict__)]
    table = rows(sql, path)[1]
    assert password.encode() not in bytes(table["ciphertext"]) and password not in str(table["password_spec"])


def test_generation_alone_makes_a_version_and_respects_cas(client, svc):
    path = unique("lockbox/generated-only")
    spec = {"password_key": "pw", "length": 12, "include_punctuation": False}
    write(client, svc, path, {"password_payload_specification": spec, "options": {"cas": 0}})
    write(client, svc, path, {"data": {}, "password_payload_specification": spec, "options": {"cas": 1}})
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc,
                             json={"password_payload_specification": spec, "options": {"cas": 1}}), 409, "VALUE_DUPLICATE")
    first, second = (read(client, svc, path, v).json["data"]["pw"] for v in (1, 2))
    assert first != second and len(first) == len(second) == 12
    assert set(first + second) <= set(string.ascii_letters + string.digits)


BAD_SPECS = [
    ({"password_key": "pw", "include_uppercase": False, "include_lowercase": False, "include_digits": False,
      "include_punctuation": False}, "VALUE_OUT_OF_BOUNDS"),
    ({"password_key": "pw", "included_punctuation": "!", "excluded_punctuation": "?"}, "VALUE_OUT_OF_BOUNDS"),
    ({"password_key": "pw", "included_punctuation": "!!"}, "VALUE_INCORRECT_FORMAT"),
    ({"password_key": "pw", "included_punctuation": "!a"}, "VALUE_INCORRECT_FORMAT"),
    ({"password_key": "pw", "excluded_punctuation": string.punctuation}, "VALUE_OUT_OF_BOUNDS"),
    ({"password_key": "pw", "include_punctuation": False, "included_punctuation": "!"}, "VALUE_OUT_OF_BOUNDS"),
    ({"password_key": "pw", "length": 257}, "VALUE_OUT_OF_BOUNDS"),
    ({"password_key": "pw", "length": 3}, "VALUE_OUT_OF_BOUNDS"),  # four classes cannot fit
    ({"password_key": "pw", "length": "8"}, "VALUE_INCORRECT_TYPE"),
    ({"password_key": "pw", "include_digits": "yes"}, "VALUE_INCORRECT_TYPE"),
    ({"password_key": "bad key"}, "VALUE_INCORRECT_FORMAT"),
    ({"password_key": "k" * 257}, "VALUE_INCORRECT_FORMAT"),
    ({"length": 10}, "REQUIRED_VALUE_MISSING"),
    ({"password_key": "pw", "colour": "blue"}, "INVALID_REQUEST_DATA"),
]


@pytest.mark.parametrize(("spec", "code"), BAD_SPECS, ids=[str(i) for i in range(len(BAD_SPECS))])
def test_an_impossible_spec_is_400_and_changes_nothing(client, svc, spec, code):
    path = unique("lockbox/bad-spec")
    response = client.post(f"{V1}/secret/data/{path}", headers=svc, json={"password_payload_specification": spec})
    body = assert_error(response, 400, code)
    assert body["error_message"]
    assert client.get(f"{V1}/secret/metadata/{path}", headers=svc).status_code == 404


def test_data_holding_the_password_key_or_nothing_to_write_is_400(client, svc):
    path = unique("lockbox/clash")
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={
        "data": {"pw": "mine"}, "password_payload_specification": {"password_key": "pw"}}), 400, "VALUE_DUPLICATE", "data")
    assert_error(client.post(f"{V1}/secret/data/{path}", headers=svc, json={"options": {"description": "d"}}),
                 400, "REQUIRED_VALUE_MISSING", "data")
    assert client.get(f"{V1}/secret/metadata/{path}", headers=svc).status_code == 404


# --------------------------------------------------------------------------- schedule-destroy and cancel-destroy


def test_a_scheduled_version_is_unreadable_at_once_and_cancel_brings_it_back(client, svc, sql):
    path = unique("lockbox/schedule")
    for i in (1, 2, 3):
        write(client, svc, path, {"data": {"v": i}})
    before = datetime.now(timezone.utc)
    assert post(client, svc, "schedule-destroy", path, {"versions": [2, 3], "pending_period": "PT2H"}).status_code == 200
    assert read(client, svc, path).json["data"] == {"v": 1}  # the newest live one
    for version in (2, 3):
        assert_error(read(client, svc, path, version), 404, "OBJECT_NOT_FOUND")
    versions = listed(client, svc, path)
    for version in (2, 3):
        assert versions[version]["status"] == "SCHEDULED_FOR_DESTRUCTION"
        destroy_at = datetime.fromisoformat(versions[version]["destroy_at"].replace("Z", "+00:00"))
        assert before + timedelta(hours=2) - timedelta(seconds=1) <= destroy_at <= datetime.now(timezone.utc) + timedelta(hours=2)
        assert versions[version]["deletion_time"] is not None and versions[version]["payload_entry_keys"] == ["v"]
        assert_intact(rows(sql, path)[version])
    assert post(client, svc, "cancel-destroy", path, {"versions": [3, 2, 99]}).status_code == 200
    assert read(client, svc, path).json["data"] == {"v": 3}
    versions = listed(client, svc, path)
    assert [(versions[v]["status"], versions[v]["destroy_at"], versions[v]["deletion_time"]) for v in (2, 3)] == [
        ("ACTIVE", None, None), ("ACTIVE", None, None)]


def test_cancel_returns_a_deleted_version_to_deleted_and_undelete_cannot_cancel(client, svc, tokens):
    path = unique("lockbox/deleted")
    write(client, svc, path, {"data": {"v": 1}})
    write(client, svc, path, {"data": {"v": 2}})
    assert post(client, svc, "delete", path, {"versions": [1]}).status_code == 200
    deleted_at = listed(client, svc, path)[1]["deletion_time"]
    assert post(client, svc, "schedule-destroy", path, {"versions": [1, 2]}).status_code == 200
    versions = listed(client, svc, path)
    assert versions[1]["status"] == versions[2]["status"] == "SCHEDULED_FOR_DESTRUCTION"
    assert versions[1]["deletion_time"] == deleted_at
    # Undelete (hostsManage may) does not undo what only destroy's scopes may do.
    assert post(client, tokens.headers("hostsManage"), "undelete", path, {"versions": [1, 2]}).status_code == 200
    assert {v["status"] for v in listed(client, svc, path).values()} == {"SCHEDULED_FOR_DESTRUCTION"}
    assert_error(read(client, svc, path), 404, "OBJECT_NOT_FOUND")
    # Scheduling again keeps the first schedule.
    first_destroy_at = versions[2]["destroy_at"]
    assert post(client, svc, "schedule-destroy", path, {"versions": [2], "pending_period": "1h"}).status_code == 200
    assert listed(client, svc, path)[2]["destroy_at"] == first_destroy_at
    assert post(client, tokens.headers("admin"), "cancel-destroy", path, {"versions": [1, 2]}).status_code == 200
    versions = listed(client, svc, path)
    assert (versions[1]["status"], versions[1]["deletion_time"]) == ("DELETED", deleted_at)
    assert versions[2]["status"] == "ACTIVE" and read(client, svc, path).json["data"] == {"v": 2}


@pytest.mark.parametrize(("body", "code", "prop"), [
    ({"versions": []}, "VALUE_OUT_OF_BOUNDS", "versions"),
    ({"versions": [1], "pending_period": "59m"}, "VALUE_OUT_OF_BOUNDS", "pending_period"),
    ({"versions": [1], "pending_period": "721h"}, "VALUE_OUT_OF_BOUNDS", "pending_period"),
    ({"versions": [1], "pending_period": "P31D"}, "VALUE_OUT_OF_BOUNDS", "pending_period"),
    ({"versions": [1], "pending_period": "soon"}, "VALUE_INCORRECT_FORMAT", "pending_period"),
    ({"versions": [1], "pending_period": 3600}, "VALUE_INCORRECT_TYPE", "pending_period"),
    ({"versions": ["1"]}, "VALUE_INCORRECT_TYPE", None),
    ({}, "REQUIRED_VALUE_MISSING", "versions"),
])
def test_bad_schedules_are_400_and_change_nothing(client, svc, body, code, prop):
    path = unique("lockbox/bad-schedule")
    write(client, svc, path, {"data": {"v": 1}})
    assert_error(post(client, svc, "schedule-destroy", path, body), 400, code, prop)
    assert listed(client, svc, path)[1]["status"] == "ACTIVE"


def test_pending_period_bounds_and_default(client, svc):
    path = unique("lockbox/periods")
    for _ in range(4):
        write(client, svc, path, {"data": {"v": 1}})
    for version, period, hours in ((1, "1h", 1), (2, "720h", 720), (3, "P30D", 720), (4, None, 168)):
        body = {"versions": [version], **({"pending_period": period} if period else {})}
        assert post(client, svc, "schedule-destroy", path, body).status_code == 200
        item = listed(client, svc, path)[version]
        destroy_at = datetime.fromisoformat(item["destroy_at"].replace("Z", "+00:00"))
        created = datetime.fromisoformat(item["deletion_time"].replace("Z", "+00:00"))
        assert abs((destroy_at - created) - timedelta(hours=hours)) < timedelta(seconds=2), (period, item)


def test_only_destroy_scopes_schedule_or_cancel(client, svc, tokens):
    path = unique("lockbox/scopes")
    write(client, svc, path, {"data": {"v": 1}})
    for scopes in ("hostsManage", "user", "vaultManage"):
        for rule in ("schedule-destroy", "cancel-destroy"):
            assert post(client, tokens.headers(scopes), rule, path, {"versions": [1]}).status_code == 403, (scopes, rule)
    assert listed(client, svc, path)[1]["status"] == "ACTIVE"
    assert_error(post(client, svc, "schedule-destroy", unique("lockbox/missing"), {"versions": [1]}), 404, "OBJECT_NOT_FOUND")


def test_destroyed_versions_are_skipped(client, svc, sql):
    path = unique("lockbox/destroyed")
    write(client, svc, path, {"data": {"v": 1}})
    assert post(client, svc, "destroy", path, {"versions": [1]}).status_code == 200
    assert post(client, svc, "schedule-destroy", path, {"versions": [1]}).status_code == 200
    assert post(client, svc, "cancel-destroy", path, {"versions": [1]}).status_code == 200
    item = listed(client, svc, path)[1]
    assert (item["status"], item["destroy_at"], item["payload_entry_keys"], item["destroyed"]) == ("DESTROYED", None, [], True)
    assert_destroyed(rows(sql, path)[1])


# --------------------------------------------------------------------------- destruction when due


def test_a_due_version_is_destroyed_when_its_secret_is_touched(client, svc, sql):
    path = unique("lockbox/due")
    write(client, svc, path, {"data": {"v": 1}})
    write(client, svc, path, {"data": {"v": 2}})
    assert post(client, svc, "schedule-destroy", path, {"versions": [1], "pending_period": "1h"}).status_code == 200
    make_due(sql, path, 1)
    assert_intact(rows(sql, path)[1])  # nobody has looked yet
    item = listed(client, svc, path)[1]
    assert (item["status"], item["destroyed"], item["destroy_at"], item["payload_entry_keys"]) == ("DESTROYED", True, None, [])
    assert_destroyed(rows(sql, path)[1])
    assert_intact(rows(sql, path)[2])
    events = sql.execute("""SELECT principal, details FROM audit_events WHERE target = %s
                             AND action = 'secret.destroy_versions'""", (f"secret:{path}",)).fetchall()
    assert [details for _, details in events] == [{"versions": [1], "scheduled": True}]
    # Too late to cancel: it stays destroyed.
    assert post(client, svc, "cancel-destroy", path, {"versions": [1]}).status_code == 200
    assert listed(client, svc, path)[1]["status"] == "DESTROYED"


@pytest.mark.parametrize("touch", ["write", "metadata", "undelete", "cancel"])
def test_every_touch_destroys_what_is_due(client, svc, sql, touch):
    path = unique("lockbox/touch")
    write(client, svc, path, {"data": {"v": 1}})
    write(client, svc, path, {"data": {"v": 2}})
    post(client, svc, "schedule-destroy", path, {"versions": [1]})
    make_due(sql, path, 1)
    if touch == "write":
        write(client, svc, path, {"data": {"v": 3}})
    elif touch == "metadata":
        assert client.get(f"{V1}/secret/metadata/{path}", headers=svc).status_code == 200
    elif touch == "undelete":
        assert post(client, svc, "undelete", path, {"versions": [1]}).status_code == 200
    else:
        assert post(client, svc, "cancel-destroy", path, {"versions": [1]}).status_code == 200
    assert_destroyed(rows(sql, path)[1])


def test_a_write_through_v1_destroys_what_is_due(client, svc, sql, tokens):
    name, role = unique("lockbox-v1-touch"), new_role()
    assert client.post(f"{V1}/secrets", headers=tokens.headers("admin"),
                       json={"name": name, "data": {"v": 1}, "write_roles": [role]}).status_code == 201
    post(client, svc, "schedule-destroy", name, {"versions": [1]})
    make_due(sql, name, 1)
    assert_intact(rows(sql, name)[1])
    assert client.put(f"{V1}/secrets/{name}", headers=tokens.headers("user", roles=[role]),
                      json={"data": {"v": 2}}).status_code == 200
    assert_destroyed(rows(sql, name)[1])
    assert_intact(rows(sql, name)[2])


def test_a_version_not_due_is_never_destroyed_early(client, svc, sql):
    path = unique("lockbox/early")
    write(client, svc, path, {"data": {"v": 1}})
    post(client, svc, "schedule-destroy", path, {"versions": [1], "pending_period": "1h"})
    sql.execute("""UPDATE vault_secret_versions v SET destroy_at = now() + interval '1 minute' FROM vault_secrets s
                    WHERE s.id = v.secret_id AND s.name = %s""", (path,))
    write(client, svc, path, {"data": {"v": 2}})
    assert listed(client, svc, path)[1]["status"] == "SCHEDULED_FOR_DESTRUCTION"
    assert_intact(rows(sql, path)[1])
