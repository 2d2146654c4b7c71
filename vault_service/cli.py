"""`vault-admin`: operator commands that run beside the service, never inside a request.

    vault-admin migrate                  apply the SQL migrations and exit
    vault-admin generate-master-key KID  print a new VAULT_MASTER_KEYS entry
    vault-admin rotate-master-key        re-wrap every data key with the active master key
"""
from __future__ import annotations

import argparse
import json
import sys

from common import config, crypto, embedded_pg, programs
from vault_service.app import create_app
from vault_service.secrets import store

REWRAP_BATCH = 500


def rotate_master_key(app) -> int:
    """Re-wrap data keys wrapped by older master keys; safe to run while the service serves.

    Each batch is its own transaction with rows locked SKIP LOCKED, so concurrent
    writers are never blocked for long and two runs do not fight over rows.
    """
    keyring: crypto.Keyring = app.extensions["keyring"]
    db = app.extensions["db"]
    total = 0
    while True:
        with db.transaction() as cur:
            rows = store.all_wrapped_keys(cur, not_key_id=keyring.active_key_id, batch=REWRAP_BATCH)
            for row in rows:
                rewrapped = keyring.rewrap(crypto.WrappedKey(row["dek_key_id"], bytes(row["dek_wrapped"])), str(row["id"]))
                store.set_wrapped_key(cur, row["id"], rewrapped.key_id, rewrapped.wrapped)
        total += len(rows)
        if len(rows) < REWRAP_BATCH:
            return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vault-admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=programs.version_text("vault-admin"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the SQL migrations and exit")
    generate = commands.add_parser("generate-master-key", help="print a new VAULT_MASTER_KEYS entry")
    generate.add_argument("key_id")
    commands.add_parser("rotate-master-key", help="re-wrap all data keys with VAULT_ACTIVE_MASTER_KEY")
    args = parser.parse_args(argv)

    if args.command == "generate-master-key":
        print(crypto.generate_master_key_spec(args.key_id))
        return 0
    if args.command == "migrate":  # the database alone: no master key is read, none is made
        return programs.migrate("vault-admin", service="vault", migrations_package="vault_service")
    with config.exit_on_error("vault-admin"):
        app = create_app()
    try:
        count = rotate_master_key(app)
        print(json.dumps({"rewrapped": count, "active_key_id": app.extensions["keyring"].active_key_id}))
    finally:
        app.extensions["db"].close()
        embedded_pg.stop_if_started_here()
    return 0


if __name__ == "__main__":
    sys.exit(main())
