"""PostgreSQL access: a connection pool opened after fork, migrations, error translation.

Stores take a `Database` and use `db.cursor()` / `db.transaction()`; these turn a
connection failure into `DatabaseUnavailable` (503) and a unique violation into
`Conflict` (409), so no store or view ever sees a psycopg exception. While the database is
known to be unreachable they fail at once instead of waiting for the pool (_OutageGate).
"""
from __future__ import annotations

import logging
import os
import re
import select
import threading
from contextlib import contextmanager
from importlib import resources

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from common import audit_partition_store, audit_partitions, errors

log = logging.getLogger(__name__)

RECONNECT_SERIES_SECONDS = 4.0
AUDIT_PUMP_INTERVAL_SECONDS = 1.0

_MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Database:
    """One service's database: a lazily opened pool plus its migrations."""

    def __init__(self, url: str | None, *, service: str, migrations_package: str | None,
                 data_dir: str = ".data", min_size: int = 1, max_size: int = 4,
                 timeout: float = 3.0, statement_timeout_ms: int = 5000, audit_retention_days: int = 0):
        self._url = url
        self.service = service
        self.migrations_package = migrations_package
        self.data_dir = data_dir
        self._pool_args = dict(min_size=min_size, max_size=max_size, timeout=timeout)
        self._statement_timeout_ms = statement_timeout_ms
        self.audit_retention_days = audit_retention_days
        self._pool: ConnectionPool | None = None
        self._pool_pid: int | None = None
        self._lock = threading.RLock()
        self._migrated = False
        self._outage = _OutageGate(self._probe)
        self._holders = 0  # connections requests of this process hold right now
        self._holders_lock = threading.Lock()
        self.audit_pump = None  # the app's audit_pump.AuditPump, run about every second once the pool opens

    # --- connection management -------------------------------------------

    @property
    def url(self) -> str:
        if not self._url:
            from common.devtools import embedded_pg  # development only: no DATABASE_URL

            self._url = embedded_pg.database_url(self.data_dir, self.service.replace("-", "_"))
        return self._url

    def pool(self) -> ConnectionPool:
        """The pool of this process; a forked child opens its own (gunicorn workers)."""
        if self._pool is not None and self._pool_pid == os.getpid():
            return self._pool
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ConnectionPool(
                    self.url,
                    open=False,
                    name=self.service,
                    kwargs={
                        "autocommit": True,
                        "row_factory": dict_row,
                        # Single statements (reads, read-audit events, role names) commit without
                        # waiting for the WAL flush; transaction() turns durable commits back on.
                        "options": f"-c statement_timeout={self._statement_timeout_ms} -c synchronous_commit=off",
                        "connect_timeout": 3,
                        "application_name": self.service,
                    },
                    # Give up a reconnect series after a few seconds (1 s, 2 s, ...): the next
                    # request that finds no connection starts a fresh one, so the service
                    # reconnects within seconds of the server's return instead of after a long
                    # exponential back-off.
                    reconnect_timeout=RECONNECT_SERIES_SECONDS,
                    check=_refuse_if_closed_by_server,
                    **self._pool_args,
                )
                self._pool.open(wait=False)
                self._pool_pid = os.getpid()
                if self.migrations_package:
                    audit_partitions.scheduler.register(self, self._pool_pid)
                if self.audit_pump is not None:
                    _audit_pump_scheduler.register(self, self._pool_pid)
        return self._pool

    def close(self) -> None:
        audit_partitions.scheduler.unregister(self)
        _audit_pump_scheduler.unregister(self)
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
        self._pool = None

    def pool_stats(self) -> dict:
        if self._pool is None or self._pool_pid != os.getpid():
            return {}
        return self._pool.get_stats()

    def cursor(self) -> "_Cursor":
        """A cursor in autocommit mode: one statement, one round trip.

        Its commits do not wait for the WAL flush (a crash may lose the last fraction of a
        second of them): use it for reads and for records that may be lost that way, such
        as read-audit events. Every other write goes through transaction().
        """
        self.ensure_migrated()
        return _Cursor(self)

    @contextmanager
    def transaction(self):
        """A cursor inside one durable transaction: everything or nothing is written."""
        with self.cursor() as cur:
            conn = cur.connection
            # One round trip for both (simple query protocol), like a bare BEGIN.
            cur.execute("BEGIN; SET LOCAL synchronous_commit = on")
            try:
                yield cur
            except BaseException:
                if not conn.broken:
                    conn.execute("ROLLBACK")
                raise
            _commit_replicated(conn)

    @contextmanager
    def _connection(self):
        """A pooled connection; DatabaseUnavailable at once while the database is known down."""
        with _Cursor(self) as cur:
            yield cur.connection

    def _failed(self, exc: BaseException, conn) -> BaseException | None:
        """What a failure while holding (or getting) a connection becomes: the outage gate is told
        of a lost connection, a driver or server limit is a 400, and _translated's errors
        replace psycopg's (None: `exc` goes on as it is)."""
        if isinstance(exc, PoolTimeout):
            # No connection came although this process holds none: the server is
            # unreachable (when requests hold them all, the pool is only busy).
            if not self._holders:
                self._outage.mark_down()
        elif isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            if _connection_lost(exc, conn):
                self._outage.mark_down()
            elif _over_a_limit(exc):
                # The request's own statement reached a limit of the driver or the protocol
                # (65,535 parameters) or of the server (class 54); the connection is fine.
                log.warning("statement over a database limit", extra={"exception_type": type(exc).__name__})
                return errors.ApiError("the request is larger than the database can take at once",
                                       code="VALUE_OUT_OF_BOUNDS").with_status(400)
        return _translated(exc)

    def _probe(self) -> None:
        """One connection and a round trip through the pool, as the outage gate's probe."""
        with self.pool().connection(timeout=self._pool_args["timeout"]) as conn:
            conn.execute("SELECT 1")

    @property
    def known_down(self) -> bool:
        return self._outage.down

    def ping(self) -> bool:
        try:
            with self.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except errors.DatabaseUnavailable:
            return False

    # --- migrations -------------------------------------------------------

    def ensure_migrated(self) -> None:
        if self._migrated or not self.migrations_package:
            return
        with self._lock:
            if not self._migrated:
                self.migrate()

    def migrate(self) -> list[str]:
        """Apply pending migrations; replicas starting together wait on an advisory lock.

        The `common` set (the audit trail) comes first, then the service's own; each set
        has its own lock and its own rows in schema_migrations, so two services sharing
        one database apply `common` once.
        """
        applied = []
        sets = [("common", "common"), (self.service, self.migrations_package)]
        with self._connection() as conn:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('migrations:schema_migrations'))")
                cur.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           service text NOT NULL, version int NOT NULL, name text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now(),
                           PRIMARY KEY (service, version))"""
                )
            for set_name, package in sets:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%(key)s))", {"key": f"migrations:{set_name}"})
                    # A migration may build an index over millions of rows: not bound by the
                    # statement timeout meant for requests.
                    cur.execute("SET LOCAL statement_timeout = 0")
                    cur.execute("SELECT version FROM schema_migrations WHERE service = %(s)s", {"s": set_name})
                    done = {row["version"] for row in cur.fetchall()}
                    for version, name, sql in _migration_files(package):
                        if version in done:
                            continue
                        log.info("applying migration", extra={"migration_set": set_name, "migration": name})
                        cur.execute(sql)
                        cur.execute(
                            "INSERT INTO schema_migrations (service, version, name) VALUES (%(s)s, %(v)s, %(n)s)",
                            {"s": set_name, "v": version, "n": name},
                        )
                        applied.append(f"{set_name}/{name}")
        self._migrated = True
        self.maintain_audit_partitions()
        return applied

    def maintain_audit_partitions(self) -> dict | None:
        """Create the audit trail's partitions ahead and apply its retention (audit_partition_store.py);
        a failure is logged, not raised: the next pass tries again."""
        try:
            with self._connection() as conn:
                with conn.transaction(), conn.cursor() as cur:
                    result = audit_partition_store.maintain(cur, retention_days=self.audit_retention_days)
        except (psycopg.Error, errors.DatabaseUnavailable) as exc:
            log.warning("audit partition upkeep failed", extra={"exception_type": type(exc).__name__})
            return None
        if result and (result["created"] or result["dropped"]):
            # (`created` is a LogRecord attribute: the names get a prefix)
            log.info("audit partitions", extra={f"partitions_{key}": n for key, n in result.items()})
        return result


def stop_embedded_if_started_here() -> None:
    """Stop the embedded PostgreSQL if this process started it (a one-shot command such as
    `vault-admin migrate` without DATABASE_URL); a server it joined (`make run`'s) stays up.
    The programs call this on exit; the development module is imported only here and in url."""
    from common.devtools import embedded_pg

    embedded_pg.stop_if_started_here()


def connection_problem(url: str, timeout: int = 3) -> str | None:
    """None when PostgreSQL at `url` lets us in; else one line that tells the usual mistakes
    apart (nothing listening, unknown host, no answer, no such database, login refused) and
    says what to fix. It names the host, port, database and user, never the password.

    For programs at their start (`make run`, the CLIs), so a bad DATABASE_URL is said at once
    instead of becoming a pool that retries quietly."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    host, port = params.get("host") or "localhost", params.get("port") or "5432"
    where = f"{host}:{port}" if not host.startswith("/") else f"the socket in {host}"
    user, dbname = params.get("user") or "(the login name)", params.get("dbname") or params.get("user") or "postgres"
    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return None
    except psycopg.Error as exc:
        detail = str(exc)
    lowered = detail.lower()
    # libpq's own words (English, as psycopg gives them): there is no SQLSTATE before a session exists.
    if "does not exist" in lowered and "database" in lowered:
        return (f"PostgreSQL at {where} has no database {dbname!r}: create it (createdb -h {host} -p {port} {dbname}), "
                "or fix the database name in DATABASE_URL")
    if any(words in lowered for words in ("authentication failed", "role", "pg_hba.conf", "password")):
        return (f"PostgreSQL at {where} refused the login of user {user!r} (wrong password, unknown user, or not "
                "allowed by its pg_hba.conf): fix the user and password in DATABASE_URL")
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return (f"nothing accepts connections at {where} (connection refused): start PostgreSQL there, or fix the "
                "host and port in DATABASE_URL")
    if "resolve host" in lowered or "translate host name" in lowered:
        return f"the database host {host!r} is unknown: fix the host in DATABASE_URL"
    if "timeout" in lowered or "timed out" in lowered:
        return (f"no answer from {where} within {timeout} s: check the host and port in DATABASE_URL, and that a "
                "firewall lets the connection through")
    reason = detail.splitlines()[0].rpartition(" failed: ")[2].strip() if detail else "no reason given"
    return f"cannot connect to PostgreSQL at {where}: {reason}"


_audit_pump_scheduler = audit_partitions.Scheduler("audit-pump", AUDIT_PUMP_INTERVAL_SECONDS,
                                                  lambda db: db.audit_pump.tick())


def fetch_page(db: Database, *, columns: str, source: str, where: str, order: str, params: dict,
               offset: int, limit: int) -> tuple[int, list[dict]]:
    """(total matching, rows of the page). `source` and `where` are trusted SQL; values go in `params`.

    One statement (one snapshot, one round trip), with the total as its own subquery: a
    `count(*) OVER ()` would make the database build, and sort, every matching row with all of
    `columns` before it could take one page; this way the page is the first rows of an index or
    of a top-N sort, and the count is the cheapest count the database finds.
    """
    query = f"""SELECT {columns}, (SELECT count(*) FROM {source} WHERE {where}) AS total FROM {source}
                 WHERE {where} ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s"""
    return fetch_counted_page(db, query, {**params, "offset": offset, "limit": limit},
                              total_query=f"SELECT count(*) AS total FROM {source} WHERE {where}")


def like_escaped(text: str) -> str:
    """`text` matching only itself in a LIKE pattern (backslash is LIKE's escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fetch_counted_page(db: Database, query: str, params: dict, *, total_query: str) -> tuple[int, list[dict]]:
    """Run a page `query` whose rows carry `total`; a page past the end (no rows at an offset)
    gets its total from `total_query` instead, so `count` stays the total.

    Never as a prepared statement: a list's best plan depends on its values (a LIKE pattern, the
    caller's roles, a time range), and a prepared statement's generic plan, which PostgreSQL
    switches to after five runs, knows none of them (a LIKE 'prefix%' then reads the whole index).
    """
    with db.cursor() as cur:
        cur.execute(query, params, prepare=False)
        rows = cur.fetchall()
        if rows or not params.get("offset"):
            return (rows[0]["total"] if rows else 0), rows
        cur.execute(total_query, params, prepare=False)
        return cur.fetchone()["total"], []


class _OutageGate:
    """While the database is known to be unreachable, every request fails at once (503)
    instead of each waiting DB_POOL_TIMEOUT_SECONDS for a connection that cannot come.

    One probe at a time (a background thread, started by the first request that finds the
    gate closed) asks the pool for a connection; when it gets one, the outage is over. The
    request that started it waits for it a moment (PROBE_WAIT_SECONDS, inside the contract's
    250 ms), so the first request after the database's return is usually served. So recovery
    needs no restart, and a down database costs one connection attempt at a time per process
    rather than one per waiting request.
    """

    PROBE_WAIT_SECONDS = 0.2

    def __init__(self, probe):
        self.down = False
        self._probe = probe
        self._probing = threading.Lock()

    def admit(self) -> None:
        if not self.down:
            return
        if self._probing.acquire(blocking=False):
            probe = threading.Thread(target=self._run_probe, name="database-probe", daemon=True)
            probe.start()
            probe.join(self.PROBE_WAIT_SECONDS)
            if not self.down:
                return
        raise errors.DatabaseUnavailable("database unavailable")

    def mark_down(self) -> None:
        if not self.down:
            log.warning("database unreachable: failing fast until a probe reaches it")
            self.down = True

    def _run_probe(self) -> None:
        try:
            self._probe()
        except Exception as exc:  # still down; the next request starts the next probe
            log.info("database probe failed", extra={"exception_type": type(exc).__name__})
        else:
            self.down = False
            log.warning("database reachable again")
        finally:
            self._probing.release()


# What PostgreSQL says when a commit's wait for its synchronous standby is cancelled
# (pg_cancel_backend, a pooler's query timeout; the statement timeout does not apply to a
# commit): the commit stands locally but may not be on the standby.
_SYNC_REPLICATION_CANCELLED = "canceling wait for synchronous replication"


def _commit_replicated(conn: psycopg.Connection) -> None:
    """COMMIT, acknowledged only if the synchronous standby confirmed it (_standby_confirmed)."""
    with _standby_confirmed(conn):
        conn.execute("COMMIT")


@contextmanager
def _standby_confirmed(conn: psycopg.Connection):
    """Around what commits a write: acknowledged only if it is as durable as the server promises.
    With a synchronous standby, PostgreSQL answers a commit whose wait for the standby was
    cancelled (while the standby is unreachable) with success and a WARNING. Acknowledging that
    write could lose it in a failover, so it is a 503: its outcome is unknown to the client, as
    after any commit whose answer was lost."""
    warnings = []

    def keep(diagnostic):
        if (diagnostic.message_primary or "").startswith(_SYNC_REPLICATION_CANCELLED):
            warnings.append(diagnostic)

    conn.add_notice_handler(keep)
    try:
        yield
    finally:
        conn.remove_notice_handler(keep)
    if warnings:
        log.warning("commit not confirmed by the synchronous standby")
        raise errors.DatabaseUnavailable("the database could not confirm the write")


# A condition that is always true and, evaluated, makes the statement's own transaction commit as
# durably as transaction()'s (synchronous_commit on, for this transaction only). A row is written
# only when every condition on it held, so a statement that has it among the conditions of what
# it writes has evaluated it whenever it wrote anything (write_alone).
DURABLE_COMMIT = "set_config('synchronous_commit', 'on', true) IS NOT NULL"


def write_alone(cur: psycopg.Cursor, query: str, params: dict) -> None:
    """One statement that is its own transaction (a Database.cursor(), autocommit: one round trip
    where transaction() takes three more for BEGIN and COMMIT), committed as durably as
    transaction()'s: `query` holds DURABLE_COMMIT among the conditions of every row it writes, and
    a commit the synchronous standby did not confirm is a 503. Everything or nothing is written:
    it is one statement."""
    if DURABLE_COMMIT not in query:
        raise ValueError("write_alone: the statement must hold DURABLE_COMMIT")
    conn = cur.connection
    if conn.pgconn.transaction_status != _IDLE:
        raise RuntimeError("write_alone: inside a transaction (its commit is the transaction's)")
    with _standby_confirmed(conn):
        cur.execute(query, params)


def _connection_lost(exc: psycopg.Error, conn: psycopg.Connection | None) -> bool:
    """The connection itself failed (none was had, it broke or closed, class 08, the server
    shutting down), rather than a statement (a deadlock, say, is an OperationalError too, and
    so is libpq refusing to send a statement of more than 65,535 parameters on a sound
    connection): only this trips the outage gate."""
    state = exc.sqlstate
    if state is not None:
        return state.startswith("08") or state in ("57P01", "57P02", "57P03")
    return conn is None or conn.broken or conn.closed


def _over_a_limit(exc: psycopg.Error) -> bool:
    """A statement the driver would not send (no SQLSTATE: the connection is sound, see
    _connection_lost) or the server refused as over one of its limits (class 54:
    program_limit_exceeded, statement_too_complex, too_many_columns, too_many_arguments)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return exc.sqlstate is None or exc.sqlstate.startswith("54")


def _refuse_if_closed_by_server(conn: psycopg.Connection) -> None:
    """Pool check, without a round trip: an idle connection whose socket is readable was
    closed by the server (restart, failover, network cut); the pool then discards it and
    hands out another instead of failing the request."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.close()  # a failed check alone would put it back in the pool
        raise psycopg.OperationalError("connection was closed by the server")


def migration_versions(package: str) -> set[int]:
    """The migration numbers a package ships (what this release can migrate to)."""
    return {version for version, _, _ in _migration_files(package)}


def _migration_files(package: str):
    folder = resources.files(package) / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class _Cursor:
    """Database.cursor(): a pooled connection and a cursor on it, as one context manager (the
    five nested ones it was cost a read about 3% of its instructions, issue 25). A connection
    failure is DatabaseUnavailable (503) at once while the database is known down (_OutageGate)."""

    __slots__ = ("db", "pool", "conn", "cur")

    def __init__(self, db: Database):
        self.db = db

    def __enter__(self):
        db = self.db
        db._outage.admit()
        self.conn = None
        try:
            self.pool = db.pool()
            self.conn = self.pool.getconn()
            with db._holders_lock:
                db._holders += 1
            self.cur = _kept_cursor(self.conn)
        except BaseException as exc:
            if self.conn is not None:
                self._release(type(exc), exc, exc.__traceback__)
            replacement = db._failed(exc, self.conn)
            if replacement is not None:
                raise replacement from _cause(replacement, exc)
            raise
        return self.cur

    def __exit__(self, exc_type, exc, tb):
        conn, db = self.conn, self.db
        try:
            self._release(exc_type, exc, tb)
        except BaseException as release_failure:
            if exc is None:
                exc = release_failure
        if exc is None:
            return False
        replacement = db._failed(exc, conn)
        if replacement is None:
            if exc_type is None:  # the release itself failed
                raise exc
            return False
        raise replacement from _cause(replacement, exc)

    def _release(self, exc_type, exc, tb) -> None:
        db = self.db
        try:
            # psycopg's own end: rollback on an error, else commit (nothing to do, and no need to
            # ask psycopg, for an autocommit connection outside a transaction: the usual case)
            if exc_type is not None or self.conn.pgconn.transaction_status != _IDLE:
                self.conn.__exit__(exc_type, exc, tb)
        finally:
            with db._holders_lock:
                db._holders -= 1
            self.pool.putconn(self.conn)


_IDLE = psycopg.pq.TransactionStatus.IDLE


def _kept_cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """The connection's one cursor, kept with it from one request to the next: a new cursor and
    the column loaders it sets up again cost a request 25,000 to 45,000 instructions (issue 25).
    Each request's statements run on it in turn (a pooled connection has one holder at a time),
    and every execute starts afresh; a cursor someone closed is replaced."""
    cur = getattr(conn, "_kept_cursor", None)
    if cur is None or cur.closed:
        cur = conn._kept_cursor = conn.cursor()
    return cur


@contextmanager
def _translated_errors():
    """_translated() as a context manager, for a Database on a connection of its own (tests)."""
    try:
        yield
    except BaseException as exc:
        replacement = _translated(exc)
        if replacement is None:
            raise
        raise replacement from _cause(replacement, exc)


def _cause(replacement: BaseException, exc: BaseException) -> BaseException | None:
    """What a replacement error is raised from: a conflict or a timeout keeps psycopg's error as
    its cause; every other one hides it (its message may carry connection details or a value)."""
    return exc if isinstance(replacement, (errors.Conflict, _TimedOut)) else None


class _TimedOut(errors.DatabaseUnavailable):
    """A statement cancelled by the statement timeout."""


def _translated(exc: BaseException) -> BaseException | None:
    """The API error a psycopg or pool error becomes (None: not one of them)."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return errors.Conflict("the object already exists")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return _TimedOut("database statement timed out")
    if isinstance(exc, psycopg.DataError):
        # A value the database cannot hold (a number out of range, a NUL in text) that the
        # request layer did not already refuse (common.strict_json, common.schemas.Integer):
        # the client's value, so a 400, never a 500. The message is PostgreSQL's, not echoed.
        log.warning("value refused by the database", extra={"exception_type": type(exc).__name__})
        return errors.InvalidRequestData("a value in the request cannot be stored")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)):
        # The message may contain connection details; log the type only.
        log.warning("database unavailable", extra={"exception_type": type(exc).__name__})
        return errors.DatabaseUnavailable()
    return None
