"""The floor of `make bench`: bare Flask plus exactly the database work of a Vault request.

No token check, no encryption, no schema, no hooks: the bare app of `bare_app.py` plus
the Vault's own SQL (imported from its store, so it follows every change there) through
a psycopg_pool pool set up as the Vault's is. What these routes reach under the same
gunicorn settings is the most the Vault's routes could reach on the machine; the gap
between a Vault row and its floor row is what our Python costs.

    GET  /ping          one `SELECT 1` round trip: what any database call costs at least
    GET  /read/<name>   (X-Role: a read role)  the v1 read's one statement: the secret,
                        its newest version and the read's audit event
    POST /write/<name>  the v2 write's two statements: the row read, then the version
                        written (with prune and audit event) by one durable statement
                        that writes only if the row is still the one read
    GET  /read-unaudited/<name>  the same read without its audit insert: the difference
                        to /read is what the per-read audit event costs
    POST /search        (X-Role, body {"keywords": ...}) the v1 search's statement for a reader
                        of that role, its rows as names
    GET  /keys/<folder> the keys' (and KV list's) statement: a folder's direct children
    POST /checkout/<path>, POST /release  a checkout cycle's floor: one Vault call (the
                        read of every live version of the account's password, with a
                        service token) and a constant answer for the release
    POST /checkout-durable/<path>, POST /release-durable/<id>  the same with the Secrets
                        Manager's own SQL of the cycle (DATABASE_URL its database): the
                        account, the Vault call, then the checkout's durable transaction
                        (lock, claim with its audit event); the release's (the checkout with
                        its account locked, its end with its event, the queued rotation)

Settings: DATABASE_URL (the Vault's database, migrated); for the checkout floor
VAULT_URL and VAULT_TOKEN (a `service` token).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid

import urllib3
from flask import Flask, jsonify, request
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from secrets_manager_service import names
from secrets_manager_service.account_secrets import store as hosts
from secrets_manager_service.accounts import checkout_store, queue_store
from secrets_manager_service.accounts.kinds import HOST
from secrets_manager_service.rotation import store as rotation_store
from secrets_manager_service.target_domains import checkout_store as directory
from secrets_manager_service.target_domains.scanned import store as account_store
from vault_service.secrets import store

app = Flask(__name__)
_pools: dict[int, ConnectionPool] = {}
_http = threading.local()


def _pool() -> ConnectionPool:
    """One pool per gunicorn worker, opened after the fork, with the Vault's connection settings."""
    pool = _pools.get(os.getpid())
    if pool is None:
        pool = _pools[os.getpid()] = ConnectionPool(
            os.environ["DATABASE_URL"], min_size=1, max_size=4, open=True,
            kwargs={"autocommit": True, "row_factory": dict_row, "options": "-c synchronous_commit=off"})
    return pool


def _event(action: str, target: str) -> dict:
    return {"service": "vault", "request_id": os.urandom(16).hex(), "principal": "floor", "action": action,
            "target": target}


@app.get("/ping")
def ping():
    with _pool().connection() as conn:
        return jsonify(conn.execute("SELECT 1 AS one").fetchone())


@app.get("/read/<path:name>")
def read(name):
    event = _event("secret.read", f"secret:{name}")
    params = {"owner": "", "name": name, "version": None, "a_roles": [request.headers.get("X-Role", "")],
              "a_manager": False, **{f"a_{key}": value for key, value in event.items()}}
    with _pool().connection() as conn:
        row = conn.execute(store.V1_READ, params).fetchone()
    return jsonify({"name": row["name"], "version": row["v_version"], "outcome": row["outcome"]})


@app.post("/write/<path:name>")
def write(name):
    with _pool().connection() as conn, conn.cursor() as cur:
        secret = store.secret_for_write(cur, "", name)
        version = secret["current_version"] + 1
        row = store.add_version(cur, secret, version=version, ciphertext=os.urandom(96), created_by="floor", entry_keys=["password"],
                                audit_event=_event("secret.write", f"secret:{name}"), unchanged_since=secret["row_version"])
    return jsonify({"version": row["version"]})


@app.get("/read-unaudited/<path:name>")
def read_unaudited(name):
    with _pool().connection() as conn:
        # The statement the read's own CTE selects with (store.find_secret's), without the insert.
        row = conn.execute(store._WITH_VERSION, {"owner": "", "name": name, "version": None}).fetchone()
    return jsonify({"name": row["name"], "version": row["v_version"]})


class _FloorDatabase:
    """What the store's list functions take of a Database: cursor(), here on the floor's pool."""

    @contextlib.contextmanager
    def cursor(self):
        with _pool().connection() as conn, conn.cursor() as cur:
            yield cur


@app.post("/search")
def search():
    role = request.headers.get("X-Role", "")
    total, rows = store.search(
        _FloorDatabase(), owners=None, shared=None, visible_to_roles=[role], viewer="floor", readable_roles=None,
        writable_roles=None, keywords=[request.get_json()["keywords"]], sortkey="name", sortdir="ASC", offset=0,
        limit=100, with_version=False)
    return jsonify({"count": total, "items": [{"name": row["name"]} for row in rows]})


@app.get("/keys/<path:folder>")
def keys(folder):
    return jsonify({"keys": store.child_keys(_FloorDatabase(), [""], folder)})


def _connection() -> urllib3.HTTPConnectionPool:
    pool = getattr(_http, "pool", None)
    if pool is None:
        pool = _http.pool = urllib3.connection_from_url(os.environ["VAULT_URL"], maxsize=1, retries=False,
                                                        timeout=10)
    return pool


@app.post("/checkout/<path:path>")
def checkout(path):
    """What a checkout needs from the Vault, as the Secrets Manager asks for it: one HTTP call
    (every live version of the account's password) on the thread's kept connection (urllib3's pool, as
    the Secrets Manager's client) with a service token."""
    answer = _connection().urlopen("GET", f"/vault/api/v1/secret/live/{path}", redirect=False,
                                   headers={"Authorization": f"Bearer {os.environ['VAULT_TOKEN']}"})
    if answer.status != 200:
        return jsonify({"error": answer.status}), 502
    found = json.loads(answer.data)
    return jsonify({"count": 1, "items": [{"id": "floor", "path": path, "secrets": [
        {"version": v["version"], "secret": v["data"].get("password")} for v in found["versions"]]}]})


@app.route("/release", methods=["GET", "POST"])  # GET: the health check
def release():
    return "", 200


def _sm_event(action: str, target: str, details: dict | None = None) -> dict:
    return {"service": "secrets-manager", "request_id": os.urandom(16).hex(), "principal": "floor", "action": action,
            "target": target, "outcome": "success", "details": details or {}}


@contextlib.contextmanager
def _durable():
    """A cursor in a transaction as the Secrets Manager's Database.transaction() opens and commits it
    (an error leaves it to the pool, which rolls it back)."""
    with _pool().connection() as conn, conn.cursor() as cur:
        cur.execute("BEGIN; SET LOCAL synchronous_commit = on")
        yield cur
        cur.execute("COMMIT")


@app.post("/checkout-durable/<path:path>")
def checkout_durable(path):
    """The checkout's floor with the Secrets Manager's own SQL: the account (one statement), the
    Vault call, then one durable transaction: the account's lock, the claim that writes its event."""
    account = hosts.find_account(_FloorDatabase(), *names.parse_secret_path(path))
    answer = _connection().urlopen("GET", f"/vault/api/v1/secret/live/{path}", redirect=False,
                                   headers={"Authorization": f"Bearer {os.environ['VAULT_TOKEN']}"})
    if answer.status != 200:
        return jsonify({"error": answer.status}), 502
    found = json.loads(answer.data)
    with _durable() as cur:
        limits = hosts.lock_account(cur, account["account_id"])
        claimed = checkout_store.claim(cur, HOST, uuid.uuid4(), account["account_id"], "floor",
                                       limit=limits["max_concurrent_checkouts"],
                                       duration_seconds=limits["max_checkout_duration"], holder_role_ids=[],
                                       holder_admin=False, audit_event=_sm_event("checkout.create", path))
    return jsonify({"count": 1, "items": [{"id": str(claimed["id"]), "path": path, "secrets": [
        {"version": v["version"], "secret": v["data"].get("password")} for v in found["versions"]]}]})


@app.post("/release-durable/<uuid:checkout_id>")
def release_durable(checkout_id):
    """The release's floor with its SQL: one durable transaction, as the Secrets Manager's."""
    with _durable() as cur:
        found = hosts.find_checkout(cur, checkout_id, lock=True)
        checkout_store.end_checkout(cur, checkout_id, audit_event=_sm_event(
            "checkout.release", f"checkouts/{checkout_id}", {"checkout_id": str(checkout_id)}))
        queue_store.enqueue_selected(cur, HOST, rotation_store.released_unused([found["account_id"]]),
                                     rotation_store.RELEASE)
    return "", 200


# --- floors of the Secrets Manager's lists (its database; the page's SQL, rows as they come) -----

def _listing(total_rows: tuple) -> dict:
    """The page's total and its number of rows: the rows are fetched as the route fetches them,
    and not rendered (rendering is the route's own work above its floor)."""
    total, rows = total_rows
    return {"count": total, "rows": len(rows)}


@app.get("/sm/accounts")
def sm_accounts():
    """The account list's SQL: each family's first page for the caller's roles (X-Roles)."""
    roles = request.headers.get("X-Roles", "").split(",")
    window = {"role_ids": roles, "keywords": [], "username": None, "sortkey": "path", "sortdir": "ASC",
              "offset": 0, "limit": 100}
    with _pool().connection() as conn:
        host_page = _listing(hosts.list_accounts(conn, **window))
        directory_page = _listing(directory.list_usable(conn, domain_id=None, **window))
    return jsonify({"count": host_page["count"] + directory_page["count"],
                    "rows": min(100, host_page["rows"] + directory_page["rows"])})


@app.get("/sm/targetdomains/<domain_id>/accounts")
def sm_domain_accounts(domain_id):
    """A target domain's scanned-account list's SQL, its first page by username."""
    with _pool().connection() as conn:
        return jsonify(_listing(account_store.list_accounts(conn, domain_id, sortkey="username", sortdir="ASC",
                                                            offset=0, limit=100)))


@app.get("/sm/checkouts/<user_id>")
def sm_checkouts(user_id):
    """The checkout list's SQL: the user's live checkouts, newest first."""
    with _pool().connection() as conn:
        return jsonify(_listing(checkout_store.live_of(conn, user_id, sortdir="ASC", limit=100)))
