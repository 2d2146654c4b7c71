"""The whole suite under gunicorn on 127.0.0.1, for `make bench`, `make load` and `make fuzz`.

`running_suite()` yields a `bench.Context` whose `vault_base` and `sm_base` answer: fresh
databases (the machine's PostgreSQL, else an embedded one), the dev token issuer the
Secrets Manager takes its Vault token from, and each service with its migrations applied
before the first request. Everything is stopped and dropped when the block ends.
"""
from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from common.devtools.issuer.keys import ensure_signing_key
from tests import support
from tests.benchmarks import bench


def start_vault(ctx: bench.Context, *, workers: int = bench.WORKERS, **settings: str) -> None:
    ctx.extras["vault_database_url"] = ctx.database("vault_bench")
    env = {**ctx.service_env(ctx.extras["vault_database_url"]),
           "VAULT_MASTER_KEYS": f"k1:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}", **settings}
    ctx.vault_base = ctx.serve("vault_service.wsgi:app", env, f"{bench.VAULT}/status",
                               migrations_of="vault_service.app", workers=workers)


def start_secrets_manager(ctx: bench.Context, *, workers: int = bench.WORKERS, **settings: str) -> None:
    """The dev token issuer (the Secrets Manager's source of its `service` token), then the Secrets Manager."""
    client_secret = secrets.token_urlsafe(24)
    clients_file = support.write_issuer_clients(Path(ctx.data_dir, "bench-issuer-clients.json"),
                                                sm_client_secret=client_secret, name="Secrets Manager (bench)")
    issuer = ctx.serve("common.devtools.issuer.wsgi:app", support.service_settings(ctx.data_dir, ISSUER_CLIENTS_FILE=clients_file),
                       "/auth/api/v1/status", workers=1)
    env = {**ctx.service_env(ctx.database("sm_bench")), "VAULT_URL": ctx.vault_base,
           "SM_TOKEN_URL": issuer + "/auth/api/v1/oauth/token", "SM_CLIENT_SECRET": client_secret, **settings}
    ctx.extras["sm_env"] = env  # what a worker of this Secrets Manager runs with
    ctx.sm_base = ctx.serve("secrets_manager_service.wsgi:app", env, f"{bench.SM}/status",
                            migrations_of="secrets_manager_service.app", workers=workers)


@contextlib.contextmanager
def running_suite(*, workers: int = bench.WORKERS, **settings: str):
    os.chdir(bench.ROOT)  # gunicorn imports the apps from the working directory
    with contextlib.ExitStack() as stack:
        data_dir = tempfile.mkdtemp(prefix="suite-data-")
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        ensure_signing_key(data_dir)
        db_server = stack.enter_context(bench.database_server(data_dir))
        ctx = bench.Context(stack=stack, data_dir=data_dir, db_server=db_server, tokens=support.TokenFactory(data_dir))
        stack.callback(ctx.http.close)
        start_vault(ctx, workers=workers, **settings)
        start_secrets_manager(ctx, workers=workers, **settings)
        yield ctx
