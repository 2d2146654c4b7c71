"""What the command-line programs share: their version, a database from settings, `migrate`."""
from __future__ import annotations

import json
import sys
from importlib import metadata

from common import config, embedded_pg, logs
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
