"""Scheduled destruction through HashiCorp's eyes (/v1/, KV v2, under gunicorn): a version
scheduled for destruction reads as deleted, a destroyed one as destroyed, and reading one whose
destroy_at has come destroys it (a touch), in the table too."""
from __future__ import annotations

import hvac.exceptions
import psycopg
import pytest
import requests

from tests.support import unique

pytestmark = pytest.mark.slow

PRIVX = "/vault/api/v1"


@pytest.fixture()
def privx(kv_base, service_token):
    session = requests.Session()

    def call(method, path, **kwargs):
        return session.request(method, kv_base + PRIVX + path, headers={"Authorization": f"Bearer {service_token}"},
                               timeout=15, **kwargs)

    yield call
    session.close()


@pytest.fixture()
def sql(kv_db):
    with psycopg.connect(kv_db, autocommit=True) as conn:
        yield conn


def test_scheduled_reads_as_deleted_and_due_as_destroyed(hvac_client, http, privx, service_token, sql):
    path = unique("kv-lockbox/app")
    hvac_client.secrets.kv.v2.create_or_update_secret(path, secret={"pw": "one"})
    hvac_client.secrets.kv.v2.create_or_update_secret(path, secret={"pw": "two"})
    assert privx("POST", f"/secret/schedule-destroy/{path}", json={"versions": [2], "pending_period": "1h"}).status_code == 200

    # Scheduled: deleted as far as a HashiCorp client can tell, and undelete does not bring it back.
    gone = http("GET", f"/v1/secret/data/{path}", token=service_token)
    assert gone.status_code == 404 and "errors" not in gone.json()
    meta = gone.json()["data"]["metadata"]
    assert meta["version"] == 2 and meta["deletion_time"] != "" and meta["destroyed"] is False
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)
    hvac_client.secrets.kv.v2.undelete_secret_versions(path, versions=[2])
    assert http("GET", f"/v1/secret/data/{path}?version=2", token=service_token).status_code == 404
    listing = hvac_client.secrets.kv.v2.read_secret_metadata(path)["data"]["versions"]
    assert listing["2"]["deletion_time"] != "" and listing["2"]["destroyed"] is False

    # Its time comes: the next read of it destroys it, and says so.
    sql.execute("""UPDATE vault_secret_versions v SET destroy_at = now() - interval '1 second' FROM vault_secrets s
                    WHERE s.id = v.secret_id AND s.name = %s AND v.version = 2""", (path,))
    due = http("GET", f"/v1/secret/data/{path}?version=2", token=service_token)
    assert due.status_code == 404 and due.json()["data"]["metadata"]["destroyed"] is True
    ciphertext, destroyed = sql.execute("""SELECT v.ciphertext, v.destroyed FROM vault_secret_versions v
                                            JOIN vault_secrets s ON s.id = v.secret_id
                                           WHERE s.name = %s AND v.version = 2""", (path,)).fetchone()
    assert ciphertext is None and destroyed is True
    assert hvac_client.secrets.kv.v2.read_secret_metadata(path)["data"]["versions"]["2"]["destroyed"] is True
    assert hvac_client.secrets.kv.v2.read_secret_version(path, version=1, raise_on_deleted_version=True)["data"]["data"] == {
        "pw": "one"}


def test_cancel_makes_it_readable_through_kv_again(hvac_client, http, privx, service_token):
    path = unique("kv-lockbox/cancel")
    hvac_client.secrets.kv.v2.create_or_update_secret(path, secret={"pw": "kept"})
    assert privx("POST", f"/secret/schedule-destroy/{path}", json={"versions": [1]}).status_code == 200
    assert http("GET", f"/v1/secret/data/{path}", token=service_token).status_code == 404
    assert privx("POST", f"/secret/cancel-destroy/{path}", json={"versions": [1]}).status_code == 200
    found = hvac_client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)["data"]
    assert found["data"] == {"pw": "kept"} and found["metadata"]["deletion_time"] == ""
