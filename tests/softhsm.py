"""A real SoftHSM2 token for tests (Debian `softhsm2`): made in a temp folder, with its own
configuration file, so nothing outside the test sees it."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USER_PIN = "4711-test-pin"


def missing() -> str | None:
    """Why a SoftHSM2 token cannot be made here, or None."""
    if not Path(MODULE).exists() or not shutil.which("softhsm2-util"):
        return "SoftHSM2 is not installed (apt-get install softhsm2)"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed (pip install '.[hsm]')"
    return None


class Token:
    """A token in `folder`; `settings` are the Vault's VAULT_PKCS11_* for it (keys by `labels`)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.tokens = folder / "tokens"
        self.tokens.mkdir(parents=True)
        self.conf = folder / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        self.pin_file = folder / "pin"
        self.pin_file.write_text(USER_PIN + "\n")
        self.pin_file.chmod(0o600)
        self.label = "vault-" + uuid.uuid4().hex[:8]
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", self.label, "--pin", USER_PIN,
                        "--so-pin", "so-" + USER_PIN], env=self.env(), check=True, capture_output=True)

    def env(self) -> dict:
        """The environment a process needs to find this token (SoftHSM2 reads it at C_Initialize)."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def settings(self, *labels: str) -> dict:
        return {"VAULT_PKCS11_MODULE": MODULE, "VAULT_PKCS11_TOKEN_LABEL": self.label,
                "VAULT_PKCS11_PIN_FILE": str(self.pin_file), "VAULT_PKCS11_KEY_LABELS": ",".join(labels)}

    def create_key(self, label: str, base_env: dict | None = None) -> str:
        """`vault-admin hsm-create-key LABEL`, the operator's command; returns the key id."""
        env = {**(base_env or {}), **self.env(), **self.settings(label)}
        done = subprocess.run([sys.executable, "-m", "vault_service.cli", "hsm-create-key", label], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return __import__("json").loads(done.stdout)["key_id"]

    @contextlib.contextmanager
    def removed(self):
        """The token taken out (its folder moved away) for the `with` block, then put back."""
        away = self.folder / "tokens.removed"
        self.tokens.rename(away)
        try:
            yield
        finally:
            away.rename(self.tokens)
