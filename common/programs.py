"""What the command-line programs share: their version, a database from settings, `migrate`."""
from __future__ import annotations

import json
import sys
from importlib import metadata

from common import backup, config, embedded_pg, logs
from common.db import Database

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


def migrate(program: str, *, service: str, migrations_package: str, overrides: dict | None = None) -> int:
    """Apply a service's migrations and print `{"applied": [...]}`; needs only the database settings.

    An embedded development database that this command started is stopped before it returns.
    """
    with config.exit_on_error(program):
        settings = config.load(config.DATABASE, overrides)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)  # stdout is for the JSON result
    config.announce(settings)
    db = database_from(settings, service=service, migrations_package=migrations_package)
    try:
        applied = db.migrate()
    finally:
        db.close()
        embedded_pg.stop_if_started_here()
    print(json.dumps({"applied": applied}), flush=True)
    return 0


def run_backup(program: str, kind_from, path: str, *, group=config.DATABASE, overrides: dict | None = None) -> int:
    """`PROGRAM backup FILE`: the service's database as one consistent snapshot (common.backup);
    prints the manifest's summary; 1 with the reason on stderr when it cannot."""
    return _backup_command(program, "backup", kind_from, path, group, overrides)


def run_restore(program: str, kind_from, path: str, *, group=config.DATABASE, overrides: dict | None = None) -> int:
    """`PROGRAM restore FILE` into DATABASE_URL, which must be empty; prints the report and exits
    0 only when everything was verified."""
    return _backup_command(program, "restore", kind_from, path, group, overrides)


def _backup_command(program, command, kind_from, path, group, overrides) -> int:
    with config.exit_on_error(program):
        settings = config.load(group, overrides)
        kind = kind_from(settings)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)  # stdout is for the JSON result
    config.announce(settings)
    db = database_from(settings, service=kind.service, migrations_package=kind.migrations_package)
    try:
        if command == "backup":
            manifest = backup.backup(db, kind, path)
            result = {"backup": path, **{k: manifest[k] for k in ("created", "schema_versions", "counts", "dump")},
                      **({"master_key_ids": manifest["master_key_ids"]} if "master_key_ids" in manifest else {})}
        else:
            result = backup.restore(db, kind, path)
    except backup.BackupFailed as exc:
        print(f"{program}: {command} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
        embedded_pg.stop_if_started_here()
    print(json.dumps(result), flush=True)
    return 0 if result.get("verified", True) else 1
