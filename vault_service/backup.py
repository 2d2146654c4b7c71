"""What the Vault's backups add to common.backup: the master key ids a backup needs (checked
before a restore starts) and, after it, every stored version decrypted with the configured keys."""
from __future__ import annotations

from common import backup, crypto
from common.db import Database
from vault_service import backup_store

FAILURES_LISTED = 20


def kind(keyring: crypto.Keyring | None = None) -> backup.Kind:
    """The Vault's backup kind; restoring needs the `keyring` the restored Vault will run with."""
    return backup.Kind("vault", "vault_service", describe=_master_keys_needed,
                       precheck=lambda manifest: _keys_configured(manifest, keyring),
                       verify=lambda db: _decrypt_everything(db, keyring))


def _master_keys_needed(conn) -> dict:
    return {"master_key_ids": backup_store.master_key_counts(conn)}


def _keys_configured(manifest: dict, keyring: crypto.Keyring) -> None:
    missing = sorted(set(manifest.get("master_key_ids", {})) - set(keyring.key_ids))
    if missing:
        raise backup.RestoreRefused(f"the backup's data keys are wrapped by master keys that are not configured: "
                                    f"{', '.join(missing)} (configured: {', '.join(keyring.key_ids)})")


def _decrypt_everything(db: Database, keyring: crypto.Keyring) -> dict:
    """Every version that still has data, unwrapped and decrypted (nothing is kept or shown)."""
    decrypted, failed = 0, []
    for row in backup_store.stored_versions(db.url):
        secret_id = str(row["id"])
        try:
            data_key = keyring.unwrap(crypto.WrappedKey(row["dek_key_id"], bytes(row["dek_wrapped"])), secret_id)
            crypto.decrypt_version(data_key, secret_id, row["version"], bytes(row["ciphertext"]))
            decrypted += 1
        except crypto.DecryptionFailed:
            failed.append(f"secret {secret_id} version {row['version']}")
    return {"versions_decrypted": decrypted, "versions_failed": len(failed), "failed": failed[:FAILURES_LISTED]}
