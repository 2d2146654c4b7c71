"""`make image-test`: the container images built with Podman and run through the smoke.

    .venv/bin/python -m tests.deploy.images

1. The base image: a Debian bookworm made here (tests/deploy/podman.py; cached by its recipe),
   passed to deploy/docker/Dockerfile as PYTHON_IMAGE.
2. The three targets (vault, secrets-manager, worker) built from the repository, as the
   Dockerfile's header says (its Dockerfile.dockerignore filters the context).
3. Fresh databases on the machine's PostgreSQL (127.0.0.1:5432), migrated by the worker image
   (`vault-admin migrate`, `secrets-manager-worker migrate`).
4. Containers on the host network, in production mode (tests/deploy/installed_suite.py): the
   development issuer (the worker image's `dev-token-issuer serve`), the Vault and the Secrets
   Manager (their images' gunicorn entrypoints), the worker.
5. The smoke the wheel test runs (tests/deploy/smoke.py), with a private slapd on this machine.

Prints the time of each phase; exits 1 on any failure (with the containers' logs). Every
container and database it made is removed at the end; the images stay, so the next build
reuses their layers.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psycopg

from common.devtools import slapd
from tests import support
from tests.deploy import installed_suite, smoke
from tests.deploy.podman import Podman, base_image, failed, passed, require_tools, timed

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("vault", "secrets-manager", "worker")
IMAGE_TAG = "image-test"
# Inside the containers: the images' DATA_DIR (writable by the service user).
CONTAINER_DATA_DIR = "/tmp/secrets-suite"


def image(target: str) -> str:
    return f"localhost/secrets-suite/{target}:{IMAGE_TAG}"


# The Dockerfile's intermediate stages, tagged too: untagged, the next run's prune would drop
# them, and with them the cache of an unchanged tree.
STAGES = ("build", "install")


def build(podman: Podman, base: str) -> None:
    for target in STAGES + TARGETS:
        podman.run("build", "--network", "host", "--file", "deploy/docker/Dockerfile", "--build-arg",
                   f"PYTHON_IMAGE={base}", "--target", target, "--tag", image(target), ".", cwd=REPO)
        if target in TARGETS:
            print(f"built {image(target)}", flush=True)
    # Earlier runs' images, untagged by this run's tags, would pile up a gigabyte a run. The
    # store is the tests' own (podman.STORE), so this prunes nothing else.
    podman.run("image", "prune", "--force")


def migrate(podman: Podman, settings: dict) -> None:
    for entrypoint, service in (("vault-admin", "vault"), ("secrets-manager-worker", "secrets-manager")):
        env_file = podman.env_file(f"migrate-{service}", {"DATABASE_URL": settings[service]["DATABASE_URL"]})
        result = podman.run("run", "--rm", "--network", "host", "--env-file", env_file, "--entrypoint", entrypoint,
                            image("worker"), "migrate")
        print(f"{entrypoint} migrate: {result.stdout.strip()}", flush=True)


def start(podman: Podman, ports: installed_suite.Ports, settings: dict) -> dict[str, str]:
    """Each process's container, started in order, each up before the next; name -> container."""
    containers = {}
    plan = [
        ("issuer", image("worker"), ("--entrypoint", "dev-token-issuer"), ("serve", "--port", str(ports.issuer))),
        ("vault", image("vault"), (), ()),
        ("secrets-manager", image("secrets-manager"), (), ()),
        ("worker", image("worker"), (), ("run",)),
    ]
    for name, image_name, options, args in plan:
        containers[name] = podman.start(name, image_name, *args, env=settings[name], run_options=options)
        try:
            support.wait_until_up(installed_suite.health_url(ports, name), timeout=90)
        except RuntimeError:
            raise RuntimeError(f"{name} did not come up:\n{podman.logs(containers[name])}") from None
        print(f"{name} is up ({containers[name]})", flush=True)
    return containers


def main() -> int:
    require_tools()
    times: dict[str, float] = {}
    started = time.monotonic()
    with Podman() as podman, tempfile.TemporaryDirectory(prefix="secrets-suite-image-test-") as folder:
        try:
            with timed("base image", times):
                base = base_image(podman)
            with timed("build", times):
                build(podman, base)
            server = support.LOCAL_SERVER
            try:
                psycopg.connect(server, connect_timeout=5).close()
            except psycopg.OperationalError:
                raise RuntimeError(f"the machine's PostgreSQL does not answer at {server}: the containers need "
                                   "one on TCP (the tests' embedded one listens on a socket)") from None
            ports = installed_suite.Ports()
            with support.fresh_database(server, "image_vault") as vault_db, \
                    support.fresh_database(server, "image_sm") as sm_db, \
                    slapd.Slapd(Path(folder) / "slapd", users=3) as directory:
                settings = installed_suite.settings(ports, vault_db=vault_db, sm_db=sm_db, data_dir=CONTAINER_DATA_DIR,
                                                    keys=installed_suite.master_keys())
                with timed("migrate", times):
                    migrate(podman, settings)
                with timed("boot", times):
                    containers = start(podman, ports, settings)
                with timed("smoke", times):
                    try:
                        done = smoke.run(ports.suite(), directory)
                    except smoke.SmokeFailure as failure:
                        logs = "\n".join(f"--- {name}\n{podman.logs(c)}" for name, c in containers.items())
                        raise RuntimeError(f"smoke: {failure}\n{logs}") from None
                stopped = [name for name, container in containers.items() if not podman.running(container)]
                if stopped:
                    raise RuntimeError(f"stopped during the smoke: {stopped}")
        except RuntimeError as failure:
            return failed("image-test", failure)
    return passed("image-test", done, times, started)


if __name__ == "__main__":
    sys.exit(main())
