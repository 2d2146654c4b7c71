"""`secrets-manager-worker`: the Secrets Manager's background work.

    secrets-manager-worker migrate       apply the database migrations and exit
    secrets-manager-worker backup FILE   the database as one consistent snapshot, with a manifest
    secrets-manager-worker restore FILE  into an empty DATABASE_URL: checked against it and migrated
    secrets-manager-worker audit verify [--since T] [--until T] [--head SEQ:HASH]
                                         check the audit trail's hash chain (exit 1 names what broke it)
    secrets-manager-worker [run] [--once] [--interval SECONDS]

Each pass expires checkouts, queues scheduled rotations and runs the due ones
(see accounts.rotations), then does the same for target domains and scans them
(see target_domains.flows), then sends the workflow engine's due mail
(workflows.mail.deliver_due). Beside the passes, every second, a thread ends the workflow
engine's expired grants and the checkouts that needed an ended grant, and delivers the grants'
outbox to the Vault (see workflows.grants). Rotations are claimed with FOR UPDATE SKIP LOCKED, so
any number of workers may run. SIGTERM and SIGINT stop the loop between passes.
Settings are the app's (create_app reads the environment).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import prometheus_client
from flask import current_app

from common import config as settings
from common import backup, errors, programs
from common.db import stop_embedded_if_started_here
from secrets_manager_service.app import create_app
from secrets_manager_service.rotation import service
from secrets_manager_service.target_domains import flows
from secrets_manager_service.workflows import grants, mail, smtp_password

log = logging.getLogger("secrets_manager_service.worker")
PROGRAM = "secrets-manager-worker"
# Nothing in the Secrets Manager's database is secret (passwords live only in the Vault), so its
# backup is verified by its counts and schema versions alone.
BACKUP_KIND = backup.Kind("secrets-manager", "secrets_manager_service")


def main(argv: list[str] | None = None, *, config: dict | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["audit"]:  # its own subcommands (the same as vault-admin's)
        audit = argparse.ArgumentParser(prog=f"{PROGRAM} audit")
        programs.add_audit_commands(audit)
        return programs.audit(PROGRAM, audit.parse_args(argv[1:]), service="secrets-manager",
                              migrations_package="secrets_manager_service", overrides=config)
    args = _parser().parse_args(argv)
    if args.command == "migrate":  # the database alone, and the same JSON line as `vault-admin migrate`
        return programs.migrate(PROGRAM, service="secrets-manager", migrations_package="secrets_manager_service",
                                overrides=config)
    if args.command in ("backup", "restore"):
        if not args.file:
            _parser().error(f"{args.command} needs the backup FILE")
        run_command = backup.run_backup if args.command == "backup" else backup.run_restore
        return run_command(PROGRAM, lambda _: BACKUP_KIND, args.file, overrides=config)
    stop = threading.Event()
    if not args.once:
        # From the start: a SIGTERM while the app and its database are being set up (an orchestrator
        # stopping a pod that just started) ends the worker cleanly, before its first pass.
        _stop_on_signals(stop)
    with settings.exit_on_error(PROGRAM):
        app = create_app(config)
    programs.require_database(PROGRAM, app.extensions["db"])
    try:
        with app.app_context():
            interval = args.interval if args.interval is not None else app.config["SM_WORKER_INTERVAL_SECONDS"]
            if not args.once and app.config["SM_WORKER_METRICS_PORT"]:
                # Rotation and expiry counters live in this process: serve them for scraping.
                prometheus_client.start_http_server(app.config["SM_WORKER_METRICS_PORT"],
                                                    addr=app.config["SM_WORKER_METRICS_ADDRESS"])
            return run(once=args.once, interval=interval, stop=stop)
    finally:
        app.extensions["db"].close()
        stop_embedded_if_started_here()


def run(*, once: bool, interval: float, stop: threading.Event | None = None) -> int:
    """Passes until `stop` is set (by SIGTERM or SIGINT; or just one pass); needs an app context."""
    if stop is None:
        stop = threading.Event()
        if not once:
            _stop_on_signals(stop)
    app = current_app._get_current_object()
    if not once:  # the workflow engine's grants: ends and the Vault's outbox, every second
        grants.start_sweeper(app, stop)
    while not stop.is_set():  # (set already: stopped while starting)
        try:
            result = service.run_pass()
            if result.expired or result.scheduled or result.rotated or result.failed:
                log.info("worker pass", extra=vars(result))
            directories = flows.run_pass()  # target domains: scans, their rotations and checkouts
            if any(vars(directories).values()):
                log.info("directory pass", extra=vars(directories))
            db, vault = app.extensions["db"], app.extensions["vault_client"]
            smtp_password.encrypt_plain_text(db, vault)  # left in plain text by a release before 0013
            mailed = mail.deliver_due(db, vault)  # the workflow engine's outbox
            if any(vars(mailed).values()):
                log.info("mail pass", extra=vars(mailed))
            if once:
                grants.sweep(vault)
        except errors.ApiError as exc:
            # The database (or the Vault) is down: say so, and try again next pass.
            log.warning("worker pass failed", extra={"error_code": exc.code})
            if once:
                return 1
        if once or stop.wait(interval):
            return 0
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum, frame):
        log.info("stopping after this pass", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=programs.version_text(PROGRAM))
    parser.add_argument("command", nargs="?", choices=("run", "migrate", "backup", "restore", "audit"), default="run",
                        help="audit verify: see `%(prog)s audit verify --help`")
    parser.add_argument("file", nargs="?", help="the backup file (backup, restore)")
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.add_argument("--interval", type=float, default=None, help="seconds between passes")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
