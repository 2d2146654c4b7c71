"""`vault-admin`: operator commands that run beside the service, never inside a request.

    vault-admin migrate                  apply the SQL migrations and exit
    vault-admin generate-master-key KID  print a new VAULT_MASTER_KEYS entry
    vault-admin hsm-create-key LABEL     make an AES-256 master key in the PKCS#11 token (VAULT_PKCS11_*)
    vault-admin rewrap [--batch-size N]  re-wrap every data key with the active master key, online
                                         (rotate-master-key is the same command)
    vault-admin backup FILE              the database as one consistent snapshot, with a manifest
    vault-admin restore FILE             into an empty DATABASE_URL: checked, migrated, every version decrypted
    vault-admin audit verify [--since T] [--until T] [--head SEQ:HASH]
                                         check the audit trail's hash chain (exit 1 names what broke it)
    vault-admin destroy-due [--every S]  destroy the versions whose scheduled destruction is due
                                         (a CronJob runs it; `make run` every minute)
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from common import audit_pump, backup, config, crypto, hsm, logs, programs
from common.db import stop_embedded_if_started_here
from vault_service import backup as vault_backup
from vault_service import rewrap
from vault_service.app import create_app, keyring_from
from vault_service.versioned import lifecycle

PROGRAM = "vault-admin"
log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=programs.version_text(PROGRAM))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the SQL migrations and exit")
    generate = commands.add_parser("generate-master-key", help="print a new VAULT_MASTER_KEYS entry")
    generate.add_argument("key_id")
    create_key = commands.add_parser("hsm-create-key", help="make an AES-256 master key in the PKCS#11 token")
    create_key.add_argument("label")
    for name in ("rewrap", "rotate-master-key"):
        command = commands.add_parser(name, help="re-wrap every data key with the active master key, online")
        command.add_argument("--batch-size", type=int, default=rewrap.DEFAULT_BATCH,
                             help="data keys per transaction (default %(default)s)")
    for name, text in (("backup", "write a backup of the database to FILE"),
                       ("restore", "restore FILE into the empty database of DATABASE_URL and verify it")):
        commands.add_parser(name, help=text).add_argument("file")
    programs.add_audit_commands(commands.add_parser("audit", help="the audit trail's hash chain"))
    due = commands.add_parser("destroy-due", help="destroy versions whose scheduled destruction is due, and exit")
    due.add_argument("--every", type=float, metavar="SECONDS",
                     help="do not exit: destroy what is due again every SECONDS (make run's timer)")
    args = parser.parse_args(argv)

    if args.command == "generate-master-key":
        print(crypto.generate_master_key_spec(args.key_id))
        return 0
    if args.command == "migrate":  # the database alone: no master key is read, none is made
        return programs.migrate(PROGRAM, service="vault", migrations_package="vault_service")
    if args.command == "destroy-due":
        return destroy_due(args.every)
    if args.command == "hsm-create-key":
        return _hsm_create_key(args.label)
    if args.command == "backup":  # the database alone: the master keys are not needed to copy ciphertext
        return backup.run_backup(PROGRAM, lambda settings: vault_backup.kind(), args.file)
    if args.command == "restore":  # the keys the restored Vault will run with, to prove they open it
        return backup.run_restore(PROGRAM, lambda settings: vault_backup.kind(keyring_from(settings)), args.file,
                                    group=config.DATABASE + config.KEYRING)
    if args.command == "audit":
        return programs.audit(PROGRAM, args, service="vault", migrations_package="vault_service")
    with config.exit_on_error(PROGRAM):
        app = create_app()
    audit_pump.leave_to_the_services(app)
    programs.require_database(PROGRAM, app.extensions["db"])
    keyring: crypto.Keyring = app.extensions["keyring"]
    try:
        result = rewrap.rewrap(app.extensions["db"], keyring, batch=max(1, args.batch_size))
        print(json.dumps(result), flush=True)
        return 0 if result["remaining"] == 0 else 1
    finally:
        keyring.close()
        app.extensions["db"].close()
        stop_embedded_if_started_here()


def destroy_due(every: float | None) -> int:
    """Destroy every due version, one per transaction, and print `{"destroyed": n}`; with `every`,
    again every that many seconds until stopped. Needs only the database: no master key is read
    (destroying is forgetting a ciphertext, not reading it)."""
    with config.exit_on_error(PROGRAM):
        settings = config.load(config.DATABASE)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)  # stdout is for the JSON result
    db = programs.database_from(settings, service="vault", migrations_package="vault_service")
    try:
        while True:
            try:
                print(json.dumps({"destroyed": lifecycle.destroy_every_due(db)}), flush=True)
            except Exception:
                if every is None:
                    raise
                # The timer outlives a database outage: what is due stays due for the next pass.
                log.exception("destroy-due pass failed; trying again later")
            if every is None:
                return 0
            time.sleep(every)
    finally:
        db.close()
        stop_embedded_if_started_here()


def _hsm_create_key(label: str) -> int:
    with config.exit_on_error(PROGRAM):
        settings = config.load(config.KEYRING)
        if not settings["VAULT_PKCS11_MODULE"]:
            raise config.ConfigError(["VAULT_PKCS11_MODULE is not set: " + config.VAULT_PKCS11_MODULE.fix])
    logs.configure("WARNING", stream=sys.stderr)
    keys = hsm.from_settings(settings)
    try:
        key_id = keys.create_key(label)
    except (ValueError, crypto.KeyProviderUnavailable) as exc:
        print(f"{PROGRAM}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(json.dumps({"key_id": key_id, "label": label}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
