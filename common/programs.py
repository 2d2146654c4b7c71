"""What the command-line programs share: their version, a database from settings, `migrate`."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from importlib import metadata

from common import audit_chain, config, logs
from common.db import Database, connection_problem, stop_embedded_if_started_here

DISTRIBUTION = "privx-secrets-suite"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def version_text(program: str) -> str:
    """What `--version` prints."""
    return f"{program} {version()}"


def database_from(settings, *, service: str, migrations_package: str | None) -> Database:
    """The service's Database as its validated settings describe it."""
    return Database(
        settings["DATABASE_URL"],
        service=service,
        migrations_package=migrations_package,
        data_dir=settings["DATA_DIR"],
        min_size=settings["DB_POOL_MIN_SIZE"],
        max_size=settings["DB_POOL_MAX_SIZE"],
        timeout=settings["DB_POOL_TIMEOUT_SECONDS"],
        statement_timeout_ms=settings["DB_STATEMENT_TIMEOUT_MS"],
        audit_retention_days=settings["AUDIT_RETENTION_DAYS"],
    )


# What a program returns when its database cannot be reached or entered at start.
DATABASE_ERROR = 1


def require_database(program: str, db: Database) -> None:
    """Stop with one line on stderr when the database refuses us (see common.db.connection_problem):
    a traceback, or a pool retrying in silence, tells an operator nothing."""
    problem = connection_problem(db.url)
    if problem:
        db.close()
        stop_embedded_if_started_here()
        print(f"{program}: DATABASE_URL: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(DATABASE_ERROR)


def migrate(program: str, *, service: str, migrations_package: str, overrides: dict | None = None) -> int:
    """Apply a service's migrations and print `{"applied": [...]}`; needs only the database settings.

    An embedded development database that this command started is stopped before it returns.
    """
    with config.exit_on_error(program):
        settings = config.load(config.DATABASE, overrides)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)  # stdout is for the JSON result
    config.announce(settings)
    db = database_from(settings, service=service, migrations_package=migrations_package)
    require_database(program, db)
    try:
        applied = db.migrate()
    finally:
        db.close()
        stop_embedded_if_started_here()
    print(json.dumps({"applied": applied}), flush=True)
    return 0


def add_audit_commands(parser: argparse.ArgumentParser) -> None:
    """`audit verify [--since T] [--until T] [--head SEQ:HASH]` under `parser` (vault-admin,
    secrets-manager-worker)."""
    commands = parser.add_subparsers(dest="audit_command", required=True)
    verify = commands.add_parser("verify", help="walk the audit trail's hash chain and name the first event that was "
                                                "changed, deleted, inserted or moved (exit 1), or count what holds")
    verify.add_argument("--since", type=_moment, help="only events that occurred at or after this time (RFC 3339)")
    verify.add_argument("--until", type=_moment, help="only events that occurred before this time (RFC 3339)")
    verify.add_argument("--head", type=_head, help="a head written out earlier (the log's or the SIEM's "
                                                   "audit_chain_head 'verify' value, SEQ:HASH): the chain must still "
                                                   "reach it unchanged")


def audit(program: str, args: argparse.Namespace, *, service: str, migrations_package: str,
          overrides: dict | None = None) -> int:
    """Run an `audit` command; needs only the database settings. Prints one JSON object."""
    with config.exit_on_error(program):
        settings = config.load(config.DATABASE, overrides)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)
    db = database_from(settings, service=service, migrations_package=migrations_package)
    require_database(program, db)
    try:
        report = audit_chain.verify(db, service, since=args.since, until=args.until, expected_head=args.head)
    finally:
        db.close()
        stop_embedded_if_started_here()
    print(json.dumps(report.as_dict()), flush=True)
    return 0 if report.ok else 1


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _head(text: str) -> tuple[int, bytes]:
    try:
        return audit_chain.parse_head(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None
