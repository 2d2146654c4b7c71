"""Backups that restore: one consistent snapshot of a service's database, with a manifest.

A backup file is a tar archive of two members:

- `database.dump`: `pg_dump --format=custom` of the service's database, taken with a snapshot
  exported by a REPEATABLE READ transaction, so writes go on while it runs and the dump is
  exactly the database at one instant;
- `manifest.json`: what that same snapshot held (the schema versions applied, the rows of every
  table, the dump's SHA-256 and size, and for the Vault the master key ids its data keys need),
  the suite's version and the server's.

The file is not encrypted again: it holds no secret value in clear. The Vault's secret data is
ciphertext under per-secret data keys that are stored only wrapped by master keys, and the
master keys are never in a backup (they are in the environment or an HSM, kept apart). Names,
roles, the audit trail and the Secrets Manager's hosts and accounts are in clear, as they are
in the database: keep the files where you keep the database's own backups.

`restore` refuses a target database that holds any table, and a file whose manifest, format or
checksum is wrong, or whose data keys need a master key that is not configured; it restores
the dump in one transaction, checks every table's row count and the schema versions against the
manifest, migrates the schema forward to this release (a backup of an older release restores),
then runs the service's own verification (the Vault decrypts every stored version).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psycopg

from common import backup_store, config, logs, programs
from common.db import Database, migration_versions, stop_embedded_if_started_here

FORMAT = "privx-secrets-suite-backup"
FORMAT_VERSION = 1
MANIFEST, DUMP = "manifest.json", "database.dump"
CHUNK = 1 << 20


class BackupFailed(Exception):
    """A backup or restore could not be done; the message says why (never a secret)."""


class RestoreRefused(BackupFailed):
    """The backup or the target is not fit: nothing (or, after a failed check, only an
    unverified copy that the message names) was restored."""


@dataclass(frozen=True)
class Kind:
    """What differs between the services' backups."""

    service: str  # its name in schema_migrations ("vault", "secrets-manager")
    migrations_package: str
    # Facts of the snapshot for the manifest (the Vault: the master key ids its data keys need).
    describe: Callable[[psycopg.Connection], dict] = lambda conn: {}
    # What must be true before anything is restored (the Vault: every needed key configured).
    precheck: Callable[[dict], None] = lambda manifest: None
    # After restore and migration: {"...": counts, "failed": [...]} (empty "failed": verified).
    verify: Callable[[Database], dict] = lambda db: {"failed": []}


# --------------------------------------------------------------------------- backup

def backup(db: Database, kind: Kind, path: str) -> dict:
    """Write the backup file at `path` (atomically: a partial file is never left under that
    name); returns the manifest."""
    target = Path(path)
    with psycopg.connect(db.url, autocommit=True) as conn:
        snapshot = backup_store.export_snapshot(conn)
        facts = _snapshot_facts(conn)
        facts.update(kind.describe(conn))
        with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
            dump = Path(tmp, DUMP)
            _run("pg_dump", db.url, ["--format=custom", f"--snapshot={snapshot}", "--no-owner", "--no-privileges",
                                     f"--file={dump}"])
            backup_store.release_snapshot(conn)  # the snapshot is needed only until pg_dump has taken it
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "service": kind.service,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "suite_version": programs.version(),
                "encrypted": False,
                "holds": "secret data only as ciphertext under wrapped data keys; no master key",
                **facts,
                "dump": {"file": DUMP, "bytes": dump.stat().st_size, "sha256": _sha256(dump)},
            }
            partial = Path(tmp, "backup.tar")
            with tarfile.open(partial, "w") as archive:
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
                archive.addfile(info, io.BytesIO(body))
                archive.add(dump, arcname=DUMP)
            partial.chmod(0o600)
            shutil.move(partial, target)
    return manifest


def _snapshot_facts(conn) -> dict:
    return {
        "server_version": backup_store.server_version(conn),
        "schema_versions": backup_store.schema_versions(conn),
        "counts": backup_store.table_counts(conn),
    }


# --------------------------------------------------------------------------- restore

def read_manifest(path: str, kind: Kind) -> dict:
    """The manifest of a backup file, checked against `kind`; RestoreRefused if unfit."""
    try:
        with tarfile.open(path, "r") as archive:
            manifest = json.load(archive.extractfile(MANIFEST))
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise RestoreRefused(f"{path} is not a backup file ({type(exc).__name__})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreRefused(f"{path} is not a backup of format {FORMAT} {FORMAT_VERSION}")
    if manifest.get("service") != kind.service:
        raise RestoreRefused(f"{path} is a backup of the {manifest.get('service')} database, not of the {kind.service}")
    return manifest


def restore(db: Database, kind: Kind, path: str) -> dict:
    """Restore the backup at `path` into the (empty) database of `db`, migrate it forward and
    verify it; returns a report whose "verified" says whether everything held."""
    manifest = read_manifest(path, kind)
    _refuse_newer_schema(manifest, kind)
    kind.precheck(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp, DUMP)
        with tarfile.open(path, "r") as archive, open(dump, "wb") as out:
            member = archive.extractfile(DUMP)
            if member is None:
                raise RestoreRefused(f"{path} has no {DUMP}")
            shutil.copyfileobj(member, out, CHUNK)
        if _sha256(dump) != manifest["dump"]["sha256"]:
            raise RestoreRefused(f"the dump in {path} does not match its manifest's checksum: the file is damaged")
        with psycopg.connect(db.url, autocommit=True) as conn:
            found = backup_store.table_counts(conn)
        if found:
            raise RestoreRefused(f"the target database is not empty ({len(found)} tables, e.g. {sorted(found)[0]}): "
                                 "restore into a new database")
        _run("pg_restore", db.url, ["--no-owner", "--no-privileges", "--no-comments", "--exit-on-error",
                                    "--single-transaction", str(dump)])
    with psycopg.connect(db.url, autocommit=True) as conn:
        restored = {"schema_versions": backup_store.schema_versions(conn), "counts": backup_store.table_counts(conn)}
    wrong = [f"{table}: {restored['counts'].get(table)} rows, the manifest says {n}"
             for table, n in manifest["counts"].items() if restored["counts"].get(table) != n]
    if restored["schema_versions"] != manifest["schema_versions"]:
        wrong.append("schema versions differ from the manifest's")
    if wrong:
        raise RestoreRefused("the restored database does not match the manifest (" + "; ".join(wrong[:5]) +
                             "): it is left as restored, unverified; drop it")
    migrated = db.migrate()  # forward to this release; a no-op for a backup of this release
    checks = kind.verify(db)
    return {"restored": path, "service": kind.service, "backup_created": manifest["created"],
            "backup_suite_version": manifest["suite_version"], "counts": restored["counts"],
            "migrated": migrated, **checks, "verified": not checks["failed"]}


def _refuse_newer_schema(manifest: dict, kind: Kind) -> None:
    """Migrations only go forward: a backup whose schema has migrations this release does not
    know was made by a newer release, and this one's code may not read it."""
    known = {"common": migration_versions("common"), kind.service: migration_versions(kind.migrations_package)}
    unknown = [f"{service}/{version:04d}" for service, versions in manifest["schema_versions"].items()
               for version in versions if version not in known.get(service, set())]
    if unknown:
        raise RestoreRefused(f"the backup was made by a newer release (migrations {', '.join(unknown)} are not in "
                             f"this one, {programs.version()}): restore it with that release or a later one")


# --------------------------------------------------------------------------- the commands

def run_backup(program: str, kind_from, path: str, *, group=None, overrides: dict | None = None) -> int:
    """`PROGRAM backup FILE`: the service's database as one consistent snapshot (common.backup);
    prints the manifest's summary; 1 with the reason on stderr when it cannot."""
    return _backup_command(program, "backup", kind_from, path, group, overrides)


def run_restore(program: str, kind_from, path: str, *, group=None, overrides: dict | None = None) -> int:
    """`PROGRAM restore FILE` into DATABASE_URL, which must be empty; prints the report and exits
    0 only when everything was verified."""
    return _backup_command(program, "restore", kind_from, path, group, overrides)


def _backup_command(program, command, kind_from, path, group, overrides) -> int:
    with config.exit_on_error(program):
        settings = config.load(group or config.DATABASE, overrides)
        kind = kind_from(settings)
    logs.configure(settings["LOG_LEVEL"], stream=sys.stderr)  # stdout is for the JSON result
    config.announce(settings)
    db = programs.database_from(settings, service=kind.service, migrations_package=kind.migrations_package)
    programs.require_database(program, db)
    try:
        if command == "backup":
            manifest = backup(db, kind, path)
            result = {"backup": path, **{k: manifest[k] for k in ("created", "schema_versions", "counts", "dump")},
                      **({"master_key_ids": manifest["master_key_ids"]} if "master_key_ids" in manifest else {})}
        else:
            result = restore(db, kind, path)
    except BackupFailed as exc:
        print(f"{program}: {command} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
        stop_embedded_if_started_here()
    print(json.dumps(result), flush=True)
    return 0 if result.get("verified", True) else 1


# --------------------------------------------------------------------------- PostgreSQL client programs

def _run(program: str, url: str, args: list[str]) -> None:
    """pg_dump or pg_restore against `url`: the password goes in the environment, never on the
    command line (where `ps` shows it); their messages are not echoed (they may quote data)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    env = {**os.environ}
    if "password" in params:
        env["PGPASSWORD"] = str(params.pop("password"))
    binary = _client_program(program)
    done = subprocess.run([binary, *args, f"--dbname={psycopg.conninfo.make_conninfo(**params)}"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupFailed(f"{program} failed (exit {done.returncode}): {last[:300]}")


def _client_program(program: str) -> str:
    """PG_BINDIR's program if set, else the one on PATH (Debian's wrapper picks the newest)."""
    bindir = os.environ.get("PG_BINDIR")
    found = os.path.join(bindir, program) if bindir else shutil.which(program)
    if not found or not os.path.exists(found):
        raise BackupFailed(f"{program} is not installed (PostgreSQL's client programs; apt-get install postgresql-client)")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
