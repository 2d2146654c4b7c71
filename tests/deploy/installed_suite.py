"""The suite as an installer runs it: production settings (no DEV_MODE), each service with its
own database, the development issuer as the token issuer (its packaged clients), the Vault
and the Secrets Manager under gunicorn with deploy/gunicorn's configurations, and the worker.

The wheel test (test_wheel_install.py: processes from a virtualenv) and the image test
(images.py: containers on the host network) start the same processes with these settings and
run the same smoke (smoke.py) against them.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

from tests import support
from tests.deploy.smoke import SERVICE_CLIENT, Suite

ISSUER = "privx-dev-issuer"  # the development issuer's default AUTH_ISSUER
AUDIENCE = "privx-secrets"


@dataclass(frozen=True)
class Ports:
    issuer: int = field(default_factory=support.free_port)
    vault: int = field(default_factory=support.free_port)
    secrets_manager: int = field(default_factory=support.free_port)
    worker_metrics: int = field(default_factory=support.free_port)

    def suite(self) -> Suite:
        return Suite(issuer=f"http://127.0.0.1:{self.issuer}", vault=f"http://127.0.0.1:{self.vault}",
                     secrets_manager=f"http://127.0.0.1:{self.secrets_manager}")


def master_keys() -> str:
    """A VAULT_MASTER_KEYS value, as `vault-admin generate-master-key` makes one."""
    return f"k1:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"


def settings(ports: Ports, *, vault_db: str, sm_db: str, data_dir: str, keys: str) -> dict[str, dict[str, str]]:
    """Each process's environment settings, by name: issuer, vault, secrets-manager, worker.
    `data_dir` is where a process may write (the issuer keeps its signing key there)."""
    urls = ports.suite()
    common = {"DATA_DIR": data_dir, "LOG_LEVEL": "INFO"}
    auth = {**common, "AUTH_JWKS_URL": f"{urls.issuer}/auth/api/v1/oauth/jwks", "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE}
    sm = {**auth, "DATABASE_URL": sm_db, "VAULT_URL": urls.vault,
          "SM_TOKEN_URL": f"{urls.issuer}/auth/api/v1/oauth/token",
          "SM_CLIENT_ID": SERVICE_CLIENT[0], "SM_CLIENT_SECRET": SERVICE_CLIENT[1]}
    return {
        "issuer": {**common, "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE},
        "vault": {**auth, "DATABASE_URL": vault_db, "VAULT_MASTER_KEYS": keys,
                  "BIND": f"127.0.0.1:{ports.vault}", "WEB_CONCURRENCY": "2"},
        "secrets-manager": {**sm, "BIND": f"127.0.0.1:{ports.secrets_manager}", "WEB_CONCURRENCY": "2"},
        # A pass a second, so the smoke's scan and rotation come soon.
        "worker": {**sm, "SM_WORKER_INTERVAL_SECONDS": "1", "SM_WORKER_METRICS_PORT": str(ports.worker_metrics)},
    }


# What each process answers when it is up.
HEALTH = {"issuer": "/auth/api/v1/status", "vault": "/vault/api/v1/status",
          "secrets-manager": "/secrets-manager/api/v1/status", "worker": "/metrics"}


def health_url(ports: Ports, name: str) -> str:
    port = {"issuer": ports.issuer, "vault": ports.vault, "secrets-manager": ports.secrets_manager,
            "worker": ports.worker_metrics}[name]
    return f"http://127.0.0.1:{port}{HEALTH[name]}"
