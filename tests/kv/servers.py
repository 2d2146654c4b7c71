"""The Vault as the KV tests run it: under gunicorn with the production settings."""
from __future__ import annotations

from tests import support


def vault_under_gunicorn(kv_env: dict, *, workers: int):
    """The Vault under gunicorn with the production settings (deploy/gunicorn); yields its base URL."""
    return support.gunicorn("vault_service.wsgi:app", kv_env, workers=workers, health_path="/v1/sys/health",
                            conf="vault.conf.py")
