"""The SMTP password of the workflow engine's settings: only in the Vault, in the Secrets
Manager's reserved part as `workflow-engine/smtp`, encrypted there under the Vault's master keys
like every password the Secrets Manager keeps (account and bind passwords); the settings row
holds only which version is the password. A new password is written ahead: the Vault has the
version before the row names it, so a failure in between leaves the row naming the old one.

A password written in plain text by an older release (wf_settings.smtp_password, before
migration 0013) is still used until the worker's next pass moves it into the Vault
(encrypt_plain_text) and empties the column."""
from __future__ import annotations

from common import audit
from common.db import Database
from secrets_manager_service.vault_client import VaultClient
from secrets_manager_service.workflows import store

PATH = "workflow-engine/smtp"
VERSIONS_KEPT = 3  # a password being replaced survives a failed settings write or two, no more


def save(vault: VaultClient, password: str) -> int:
    """Store a new password in the Vault; its version, for the settings row to name."""
    vault.set_metadata(PATH, max_versions=VERSIONS_KEPT)
    return vault.write(PATH, {"password": password})["version"]


def stored(db: Database, vault: VaultClient) -> str:
    """The password the settings name ("" when none was set)."""
    with db.cursor() as cur:
        version, plain_text = store.smtp_password_ref(cur)
    if plain_text:
        return plain_text
    if version is None:
        return ""
    found = vault.read(PATH, version)
    return ((found or {}).get("data") or {}).get("password") or ""


def encrypt_plain_text(db: Database, vault: VaultClient) -> bool:
    """The data migration of a password an older release stored in plain text: into the Vault,
    then the column emptied (unless a new password was set meanwhile). Whether one was moved."""
    with db.cursor() as cur:
        _, plain_text = store.smtp_password_ref(cur)
    if not plain_text:
        return False
    version = save(vault, plain_text)
    with db.transaction() as cur:
        moved = store.adopt_smtp_password(cur, version, replacing=plain_text)
        if moved:
            audit.record("workflow.settings.password_encrypted", "settings", cur=cur, details={"version": version})
    return moved
