"""Migration 0012 (one account model) on data written by the code before it: every live
checkout, rotation state, queued rotation and rotation history row of both account families
survives the move into the shared tables and is served by today's code: live checkouts are
read and released, the ended ones stay ended, and the rotations a killed worker left resume.

The data (accounts_0009/) was made by the real API and worker at schema 0009 (make_fixture.py
there says how to make it again from a commit); the Vault's side of it is written back into the
session's Vault first, version by version, as it was.
"""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from common.db import Database, _migration_files
from secrets_manager_service.app import create_app
from tests import support
from tests.secrets_manager.accounts_0009 import people
from tests.secrets_manager.helpers import SmApi

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "accounts_0009"
SM = "secrets-manager"


def _at_schema_0009(url: str) -> None:
    """The schema as migration 0009 left it, with the fixture's rows; its checkouts' times moved
    so that they are as old now as they were when it was made."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE schema_migrations (service text NOT NULL, version int NOT NULL, name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (service, version))""")
        for service, package in (("common", "common"), (SM, "secrets_manager_service")):
            for version, name, sql in _migration_files(package):
                if service == SM and version > 9:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (service, version, name) VALUES (%s, %s, %s)",
                             (service, version, name))
        conn.execute((DATA / "sm_0009.sql").read_text())
        (shift,), = conn.execute("""SELECT now() - max(created) FROM (
                                        SELECT created FROM sm_checkouts UNION ALL SELECT created FROM sm_td_checkouts) t""")
        for table in ("sm_checkouts", "sm_td_checkouts"):  # one shift for both: their order stays
            conn.execute(f"""UPDATE {table} SET created = created + %(shift)s, expires = expires + %(shift)s,
                                    ended = ended + %(shift)s""", {"shift": shift})


def _write_back_the_vault(app) -> None:
    with app.app_context():
        vault = app.extensions["vault_client"]
        for path, secret in json.loads((DATA / "vault_0009.json").read_text()).items():
            vault.set_metadata(path, max_versions=0)
            for expected, version in enumerate(sorted(secret["versions"], key=lambda v: v["version"]), start=1):
                assert vault.write(path, version["data"] or {"password": "gone"})["version"] == version["version"]
                if version["data"] is None:
                    vault.destroy(path, [version["version"]])
            vault.set_metadata(path, max_versions=secret["max_versions"], custom_metadata=secret["custom_metadata"])


def _rows(url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_todays_rows_survive_the_move_and_are_served(db_server, data_dir, vault_url, token_url, sm_client_secret,
                                                       tokens):
    made = json.loads((DATA / "made.json").read_text())
    vault = json.loads((DATA / "vault_0009.json").read_text())
    with support.fresh_database(db_server, "sm_accounts_0012") as url:
        _at_schema_0009(url)
        before = {
            "checkouts": _rows(url, """SELECT id, 'host', account_id, user_id, created, expires, ended FROM sm_checkouts
                                       UNION ALL SELECT id, 'directory', managed_account_id, user_id, created, expires,
                                       ended FROM sm_td_checkouts ORDER BY 1"""),
            "states": _rows(url, """SELECT 'host', account_id, rotation_id, step, previous_version, pending_version, reason
                                     FROM sm_rotation_states UNION ALL
                                    SELECT 'directory', managed_account_id, rotation_id, step, previous_version,
                                           pending_version, reason FROM sm_td_rotation_states ORDER BY 2"""),
            "queue": _rows(url, """SELECT 'host', account_id, reason, due, attempts FROM sm_rotations UNION ALL
                                   SELECT 'directory', managed_account_id, trigger, due, attempts FROM sm_td_rotations
                                    ORDER BY 2"""),
            "history": _rows(url, "SELECT * FROM sm_td_rotation_history ORDER BY id"),
        }
        assert len(before["checkouts"]) == 6 and len(before["states"]) == 2 and len(before["queue"]) == 5
        db = Database(url, service=SM, migrations_package="secrets_manager_service")
        try:
            assert f"{SM}/0012_one_account_model.sql" in db.migrate()  # (with those between 0009 and after it)
        finally:
            db.close()

        # Every row is where the one account model keeps it, unchanged.
        assert _rows(url, """SELECT id, account_kind, account_id, user_id, created, expires, ended FROM sm_checkouts
                              ORDER BY 1""") == before["checkouts"]
        assert _rows(url, """SELECT account_kind, account_id, rotation_id, step, previous_version, pending_version, reason
                               FROM sm_rotation_states ORDER BY 2""") == before["states"]
        assert _rows(url, "SELECT account_kind, account_id, reason, due, attempts FROM sm_rotations ORDER BY 2") == \
            before["queue"]
        assert _rows(url, "SELECT * FROM sm_td_rotation_history ORDER BY id") == before["history"]
        assert _rows(url, """SELECT count(*) FROM pg_tables WHERE tablename IN
                             ('sm_td_checkouts', 'sm_td_rotations', 'sm_td_rotation_states')""") == [(0,)]

        app = create_app(support.service_settings(data_dir, url, VAULT_URL=vault_url, SM_TOKEN_URL=token_url,
                                                  SM_CLIENT_SECRET=sm_client_secret, LOG_LEVEL="WARNING"))
        try:
            _write_back_the_vault(app)
            sm = SmApi(app.test_client(), tokens)
            host_user = tokens.headers("user", sub=people.HOST_USER, roles=[people.HOST_ROLE])
            dir_user = tokens.headers("user", sub=people.DIRECTORY_USER, roles=[people.DIRECTORY_ROLE])
            root, admin_root = made["live"]["host"]
            (admin_sub,), = _rows(url, "SELECT user_id FROM sm_checkouts WHERE id = %s", admin_root)
            admin = tokens.headers("admin", sub=admin_sub)
            host, domain = made["host"], made["domain"]

            # The live checkouts are read by their holders, with the passwords the Vault held.
            read = sm.get(f"/secrets/checkouts/{root}", headers=host_user)
            assert read.status_code == 200, read.get_json()
            assert read.get_json()["path"] == f"hosts/{host}/root"
            assert read.get_json()["secrets"][0]["secret"] == vault[f"hosts/{host}/root"]["versions"][0]["data"]["password"]
            assert sm.get(f"/secrets/checkouts/{admin_root}", headers=admin).status_code == 200
            (live_dir,) = made["live"]["directory"]
            user1 = made["managed"]["user1"]
            read = sm.get(f"/secrets/checkouts/{live_dir}", headers=dir_user)
            assert read.status_code == 200, read.get_json()
            assert read.get_json()["type"] == "TARGET_DOMAIN_SECRET" and read.get_json()["managed_account_id"] == user1
            assert read.get_json()["secrets"][0]["secret"] == \
                vault[f"targetdomains/{domain}/{user1}"]["versions"][0]["data"]["password"]
            assert [c["id"] for c in sm.get("/secrets/checkouts", headers=host_user).get_json()["items"]] == [root]
            assert [c["id"] for c in sm.get("/secrets/checkouts", headers=dir_user).get_json()["items"]] == [live_dir]
            # The directory account's policy allows one holder: its migrated checkout still counts.
            assert sm.post("/secrets/checkouts", json={"path": f"targetdomains/{domain}/{user1}"}).status_code == 409
            assert sm.get(f"/targetdomains/{domain}/managedaccounts/{user1}").get_json()["checkouts"][0]["id"] == live_dir
            for ended in made["ended"]:
                assert sm.get(f"/secrets/checkouts/{ended}").status_code == 404
            # ... and released; the same user's new checkout is a new one.
            assert sm.post(f"/secrets/checkouts/{root}/release", headers=host_user).status_code == 200
            assert sm.post(f"/secrets/checkouts/{live_dir}/release", headers=dir_user).status_code == 200
            assert sm.checkout(f"hosts/{host}/root", host_user)["id"] != root

            # The rotations resume: the host one the worker left after the target took its password
            # is finished (the pending version made current), the queued ones run.
            from secrets_manager_service.accounts import rotations
            from secrets_manager_service.accounts.families import DIRECTORY
            from secrets_manager_service.rotation.service import run_pass

            with app.app_context():
                result = run_pass()
            assert (result.rotated, result.failed) == (3, 0), result
            pend = sm.account(host, "pend")
            assert pend["last_error"] is not None and "interrupted" in pend["last_error_details"]
            with app.app_context():
                assert app.extensions["vault_client"].metadata(f"hosts/{host}/pend")["metadata"][
                    "custom_metadata"]["current_version"] == "2"
            assert _rows(url, "SELECT count(*) FROM sm_rotation_states WHERE account_kind = 'host'") == [(0,)]
            # The directory's own rotation is taken up where it stopped: with the directory gone
            # (it was the fixture's private one) it stays unfinished, its state and pending version kept.
            with app.app_context():
                outcomes = rotations.run_due(DIRECTORY, rotations.app_deps())
            assert outcomes["failed"] >= 1, outcomes
            user3 = made["managed"]["user3"]
            assert _rows(url, """SELECT step, pending_version FROM sm_rotation_states
                                  WHERE account_kind = 'directory' AND account_id = %s""", user3) == [("pending", 2)]
            account = sm.get(f"/targetdomains/{domain}/managedaccounts/{user3}").get_json()
            assert "the Vault keeps the previous and the pending password" in account["last_error_details"]
            assert [(e["trigger"], e["status"]) for e in account["rotation_history"]][-1] == ("ONBOARDING", "SUCCESS")
        finally:
            app.extensions["db"].close()
