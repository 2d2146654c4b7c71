"""Podman on this kind of machine, for the image test (images.py) and the fresh-machine test
(fresh_machine.py): how to call it, and a Debian base image made here.

Measured on these machines (Debian's podman 4.3 and runc, as root): containers run with
`--runtime runc --cgroup-manager cgroupfs --network host`, and only with a containers.conf
that sets `[containers] default_ulimits = []` (the default ulimits cannot be set here). That
file is written to a temporary folder and named by CONTAINERS_CONF for our calls only; the
machine's own configuration is not touched. Images and containers live in a store of their own
(STORE, `--root`), so what the tests build and prune never mixes with other images of the machine.

No container registry is reachable, so the base image is made here: `mmdebstrap` lays out a
Debian bookworm root file system from Debian's mirror and `podman import` turns it into an
image. It is tagged with a hash of its recipe (and of the CA bundle it carries), so a second
run finds it and skips the 45 s it takes to make.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PODMAN_FLAGS = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# Kept between runs (the base image and the build's layers are the cache); outside any clone.
STORE = Path(os.environ.get("SECRETS_SUITE_PODMAN_STORE", "/var/tmp/secrets-suite-podman"))
RUN_STORE = Path("/run/secrets-suite-podman")
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n"
# Debian packages every tool here comes from (the CI script installs them).
DEBIAN_PACKAGES = ("podman", "runc", "mmdebstrap")

# The base image: a bare Debian bookworm (minbase: the essential and required packages, apt)
# with Python 3.11, pip, venv and make, and nothing else. It is the images' PYTHON_IMAGE and
# the fresh machine.
SUITE = "bookworm"
VARIANT = "minbase"
BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "make")
MIRRORS = ("deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian-security bookworm-security main")
BASE_REPOSITORY = "localhost/secrets-suite-base"
# The host's CA bundle, carried into the image for pip: where the network reaches PyPI only
# through a TLS-inspecting proxy, pip in a container trusts it as pip on the host does.
CA_IN_IMAGE = "/etc/ssl/host-ca-bundle.pem"


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        sys.exit(f"missing: {', '.join(missing)}; as root: apt-get install -y {' '.join(DEBIAN_PACKAGES)}")
    if os.geteuid() != 0:
        sys.exit("run as root: Podman's containers here run as root (rootless needs subuid setup this machine lacks)")


class Podman:
    """Calls to podman with this machine's flags and our containers.conf; removes every
    container it started when closed."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="secrets-suite-podman-")
        conf = Path(self._folder.name) / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.containers: list[str] = []

    def __enter__(self) -> "Podman":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def command(self, *args: str) -> list[str]:
        return ["podman", *PODMAN_FLAGS, "--root", str(STORE / "storage"), "--runroot", str(RUN_STORE), *args]

    def run(self, *args: str, check: bool = True, capture: bool = True, timeout: float = 1800,
            **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*args), env=self.env, text=True, timeout=timeout,
                                capture_output=capture, **kwargs)
        if check and result.returncode != 0:
            output = (result.stdout or "") + (result.stderr or "") if capture else ""
            raise RuntimeError(f"podman {' '.join(args[:3])} ... failed ({result.returncode}):\n{output[-4000:]}")
        return result

    def start(self, name: str, image: str, *args: str, env: dict[str, str] | None = None,
              run_options: tuple[str, ...] = ()) -> str:
        """A detached container on the host network; returns its name (unique per call)."""
        container = f"secrets-suite-{name}-{uuid.uuid4().hex[:8]}"
        options = ["--detach", "--name", container, "--network", "host", *run_options]
        if env:
            options += ["--env-file", self.env_file(container, env)]
        self.containers.append(container)
        self.run("run", *options, image, *args)
        return container

    def env_file(self, name: str, env: dict[str, str]) -> str:
        """Settings in a file of our temporary folder (mode 0600), not on a command line."""
        path = Path(self._folder.name) / f"{name}.env"
        path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        path.chmod(0o600)
        return str(path)

    def logs(self, container: str) -> str:
        result = self.run("logs", container, check=False)
        return (result.stdout + result.stderr)[-3000:]

    def running(self, container: str) -> bool:
        result = self.run("inspect", "--format", "{{.State.Running}}", container, check=False)
        return result.stdout.strip() == "true"

    def close(self) -> None:
        if self.containers:
            self.run("rm", "--force", "--time", "10", *self.containers, check=False)
            self.containers.clear()
        self._folder.cleanup()


def host_ca_bundle() -> Path | None:
    """The CA bundle pip uses on this machine, when it has one."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def base_image(podman: Podman, log=print) -> str:
    """The tag of the base image, made (about 45 s) only when no image of this recipe exists."""
    ca = host_ca_bundle()
    recipe = "\n".join([SUITE, VARIANT, *BASE_PACKAGES, *MIRRORS, CA_IN_IMAGE])
    digest = hashlib.sha256(recipe.encode() + (ca.read_bytes() if ca else b"")).hexdigest()[:16]
    tag = f"{BASE_REPOSITORY}:{digest}"
    if podman.run("image", "exists", tag, check=False).returncode == 0:
        log(f"base image {tag}: cached")
        return tag
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="secrets-suite-rootfs-", dir="/var/tmp") as folder:
        rootfs = Path(folder) / "rootfs.tar"
        hooks, changes = [], []
        if ca is not None:
            shutil.copyfile(ca, Path(folder) / Path(CA_IN_IMAGE).name)
            hooks = [f"--customize-hook=copy-in {Path(folder) / Path(CA_IN_IMAGE).name} {Path(CA_IN_IMAGE).parent}"]
            changes = ["--change", f"ENV PIP_CERT={CA_IN_IMAGE}"]
        result = subprocess.run(["mmdebstrap", f"--variant={VARIANT}", f"--include={','.join(BASE_PACKAGES)}",
                                 *hooks, SUITE, str(rootfs), *MIRRORS], capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed:\n{result.stderr[-4000:]}")
        podman.run("import", *changes, str(rootfs), tag)
    log(f"base image {tag}: made in {time.monotonic() - started:.0f} s (mmdebstrap {SUITE} {VARIANT} + "
        f"{', '.join(BASE_PACKAGES)})")
    return tag


@contextlib.contextmanager
def timed(label: str, times: dict[str, float]):
    started = time.monotonic()
    try:
        yield
    finally:
        times[label] = time.monotonic() - started


def passed(name: str, steps: list[str], times: dict[str, float], started: float) -> int:
    """The end of a run that passed: each step, the time of each phase, and the closing line
    that CI reads ('N passed, N failed'). Returns the exit code."""
    for step in steps:
        print(f"ok: {step[:120]}")
    print(f"{name} took {time.monotonic() - started:.0f} s (" +
          ", ".join(f"{label} {seconds:.0f} s" for label, seconds in times.items()) + ")")
    print(f"{name}: {len(steps)} passed, 0 failed")
    return 0


def failed(name: str, failure: Exception) -> int:
    print(f"{name} FAILED: {failure}", file=sys.stderr)
    print(f"{name}: 0 passed, 1 failed")
    return 1
