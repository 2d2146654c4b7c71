"""A page of the v1 list is written as JSON text at once (service.list_page, issue 25): the same
bytes the schema's dump and Flask's encoder gave, for every kind of value a page holds."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from common.timefmt import rfc3339
from tests import support
from tests.vault.helpers import V1, create_shared
from vault_service.secrets import schemas, service, store


def _as_flask_wrote_it(page: dict) -> bytes:
    """What the route answered before: schemas.SecretList's dump, encoded by Flask."""
    return (json.dumps(schemas.SecretList().dump(page), ensure_ascii=True, sort_keys=False,
                       separators=(",", ":")) + "\n").encode()


@pytest.mark.parametrize("moment", [
    datetime(2026, 12, 5, 23, 17, 8, 999999, tzinfo=timezone.utc),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    datetime(12, 11, 10, 9, 8, 7, tzinfo=timezone.utc),
])
def test_the_database_formats_a_time_as_rfc3339_does(sql, moment):
    text = sql.execute(f"SELECT {store.listed_time('%s::timestamptz')}", (moment,)).fetchone()[0]
    assert text == rfc3339(moment)


def test_a_page_is_the_bytes_the_schema_and_flask_gave(client, tokens, sql):
    reader_role = support.new_role('reader "quoted" \\ ünï')
    gone_role = support.new_role("gone")
    names = [support.unique("list-json/a@b+c=d e"), support.unique("list-json/plain"),
             support.unique("list-json/nodata")]
    datas = [{"ü": "ä", "n": 1.5, "big": 10 ** 30, "nested": {"a": [1, None, True, "\u2028 \x01"]}, "e": {}},
             {"password": "p"}, None]
    for name, data in zip(names, datas):
        create_shared(client, tokens, name=name, data=data or {"v": 1}, read_roles=[reader_role],
                      write_roles=[reader_role, gone_role])
    sql.execute("UPDATE vault_roles SET deleted = true WHERE id = %s", (gone_role["id"],))
    # every version of the third deleted: listed with "data": null
    sql.execute("UPDATE vault_secret_versions SET deletion_time = now() WHERE secret_id = "
                "(SELECT id FROM vault_secrets WHERE name = %s)", (names[2],))
    headers = tokens.headers("user", roles=[reader_role])
    answer = client.get(f"{V1}/secrets?limit=10", headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    rows = sql.execute("SELECT name, author, updated_by, created, updated, owner_id FROM vault_secrets "
                       "WHERE name = ANY (%s) ORDER BY name", (names,)).fetchall()
    def roles(listed):
        return [{"id": r["id"], "name": r["name"], "deleted": r["id"] == gone_role["id"]} for r in listed]

    items = []
    for name, author, updated_by, created, updated, owner in rows:
        items.append({"name": name, "data": datas[names.index(name)], "read_roles": roles([reader_role]),
                      "write_roles": roles([reader_role, gone_role]), "author": author,
                      "path": service.secret_path(owner, name), "updated_by": updated_by,
                      "created": created, "updated": updated})
    assert answer.get_data() == _as_flask_wrote_it({"count": 3, "items": items})
