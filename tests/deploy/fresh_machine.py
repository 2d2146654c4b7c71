"""`make fresh-machine-test`: the README's quick start on a machine that has never seen the project.

    .venv/bin/python -m tests.deploy.fresh_machine

The machine is a container of the bare Debian bookworm base that the image test uses
(tests/deploy/podman.py: minbase, the essential and required packages and apt, plus python3,
python3-pip, python3-venv and make; nothing else), as root, on the host network. Into it goes a
copy of the repository's tracked files, as a clone would give, and in it runs what the README
says: `make run` (which installs what it needs: `make install` and its apt step, the
virtualenv, the embedded PostgreSQL); once it prints that it is ready, curl (the one tool the
README says its printed commands need) is installed and every printed curl command is run in
the container after the printed `export` lines. Each must succeed: exit 0 and a JSON answer that is not
an error; the secret read must give the value written.

The suite's ports are free ports of this machine (ISSUER_PORT and the others, as the README
says), so a `make run` of the host is not disturbed. pip's download cache is kept between runs
(podman.STORE/pip-cache) but its built wheels are dropped first, so python-ldap is compiled
every time, against what `make install` installed.

With --make-test it then runs `make test` on that machine as a fresh machine has it: PyPI
reachable (the wheel test builds a wheel, and pip's build isolation fetches setuptools), but
nothing listening on its own 127.0.0.1, so the suite falls back to its embedded PostgreSQL and
the tests whose tools the bare machine lacks skip with their reasons. The container gets a
network namespace of its own through slirp4netns (user-mode NAT out to the internet) with
`allow_host_loopback=false`: the host's loopback, where its PostgreSQL (5432) and Redis (6379)
listen, is out of reach, and the container's 127.0.0.1 is its own, empty one. Host networking
would expose those servers; no network at all would fail the wheel build, which a real fresh
machine does not; a wheelhouse prepared beforehand would hand the machine what it lacks. Before
`make test`, a probe in the same container checks that 127.0.0.1:5432 and :6379 refuse and that
PyPI answers, so the run cannot silently test the host's servers.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.deploy.podman import STORE, Podman, base_image, failed, passed, require_tools, timed
from tests.e2e.suite import READY_LINE
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
PIP_CACHE = STORE / "pip-cache"
MAKE_TEST_LOG = STORE / "fresh-machine-make-test.log"
# make install compiles python-ldap and installs every dependency: minutes on a busy machine.
READY_DEADLINE_SECONDS = 1200
SOURCE_IN_CONTAINER = "/srv/suite"


def copy_tracked_files(destination: Path) -> None:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, names.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is gone
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def wait_until_ready(podman: Podman, container: str) -> str:
    """The output of `make run` up to its ready line; RuntimeError if it stops first."""
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while True:
        output = podman.run("logs", container, check=False)
        text = output.stdout + output.stderr
        if READY_LINE in text:
            return text
        if not podman.running(container):
            raise RuntimeError(f"make run stopped before it was ready:\n{text[-5000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"make run was not ready in {READY_DEADLINE_SECONDS} s:\n{text[-5000:]}")
        time.sleep(5)


def printed_commands(output: str) -> tuple[list[str], list[str]]:
    """The `export ...` lines and the curl commands `make run` printed."""
    lines = [line.strip() for line in output.splitlines()]
    exports = [line for line in lines if line.startswith("export ")]
    curls = [line for line in lines if line.startswith("curl ")]
    if not exports or not curls:
        raise RuntimeError(f"make run printed no export or no curl command:\n{output[-3000:]}")
    return exports, curls


def run_curls(podman: Podman, container: str, exports: list[str], curls: list[str]) -> list[str]:
    """Each printed command in the container, as a user pastes it after the printed exports."""
    podman.run("exec", container, "sh", "-c",
               "apt-get install -y -qq curl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq curl)")
    answers = []
    for command in curls:
        result = podman.run("exec", container, "bash", "-c", "; ".join([*exports, command]), check=False)
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            answer = None
        if result.returncode != 0 or not isinstance(answer, dict) or "error_code" in answer or "errors" in answer:
            raise RuntimeError(f"the printed command failed ({result.returncode}): {command}\n"
                               f"{result.stdout[-1000:]}{result.stderr[-1000:]}")
        answers.append(result.stdout)
    if not any('"s3cret"' in answer for answer in answers):
        raise RuntimeError(f"no printed command read the demo secret back: {answers}")
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--make-test", action="store_true",
                        help="then run `make test` there too, with PyPI but no server of the host in reach")
    make_test = parser.parse_args(argv).make_test
    require_tools()
    times: dict[str, float] = {}
    started = time.monotonic()
    ports = {name: str(free_port()) for name in ("ISSUER_PORT", "VAULT_PORT", "SM_PORT", "SM_WORKER_METRICS_PORT",
                                                 "DIRECTORY_PORT")}
    shutil.rmtree(PIP_CACHE / "wheels", ignore_errors=True)  # built wheels: python-ldap must compile here
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    with Podman() as podman, tempfile.TemporaryDirectory(prefix="secrets-suite-fresh-", dir="/var/tmp") as folder:
        try:
            with timed("base image", times):
                base = base_image(podman)
            source = Path(folder) / "suite"
            copy_tracked_files(source)
            with timed("make run until ready", times):
                container = podman.start(
                    "fresh-machine", base, "make", "run", env=ports,
                    run_options=("--volume", f"{source}:{SOURCE_IN_CONTAINER}", "--volume", f"{PIP_CACHE}:/root/.cache/pip",
                                 "--workdir", SOURCE_IN_CONTAINER))
                output = wait_until_ready(podman, container)
            if "make install: installing" not in output:  # deploy/build-deps.sh: the bare machine lacks them
                raise RuntimeError(f"make install did not install python-ldap's build packages:\n{output[-3000:]}")
            exports, curls = printed_commands(output)
            with timed("printed curl commands", times):
                run_curls(podman, container, exports, curls)
            steps = list(curls)
            if make_test:
                with timed("make test", times):
                    steps.append(run_make_test(podman, container, source, list(ports)))
        except RuntimeError as failure:
            return failed("fresh-machine-test", failure)
    return passed("fresh-machine-test", steps, times, started)


# A network of the container's own: out to PyPI through user-mode NAT, never to the host's loopback.
OWN_NETWORK = "slirp4netns:allow_host_loopback=false"
# Run in the container before `make test`: what must be out of reach, and what must answer.
NETWORK_PROBE = """
import os, socket, sys, urllib.request
reachable = []
for port in (5432, 6379):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        reachable.append(port)
    except OSError:
        pass
if reachable:
    sys.exit(f"127.0.0.1 ports {reachable} answer: the host's servers are in reach")
urllib.request.urlopen("https://pypi.org/simple/setuptools/", timeout=60, cafile=os.environ.get("PIP_CERT"))
print("network: own loopback empty, PyPI reachable")
"""


def run_make_test(podman: Podman, container: str, source: Path, run_settings: list[str]) -> str:
    """`make test` on the same machine (the container as `make run` left it, committed), with
    PyPI in reach and nothing on its loopback (OWN_NETWORK; the probe checks both). Returns
    pytest's closing line. The commit keeps the environment `make run` was given (its ports,
    `run_settings`, chosen here so as not to disturb the host): `make test` runs without them,
    as in a user's shell, where they were never exported."""
    snapshot = "localhost/secrets-suite-fresh-machine:make-test"
    podman.run("commit", container, snapshot)
    options = ("--rm", "--network", OWN_NETWORK, "--volume", f"{source}:{SOURCE_IN_CONTAINER}",
               "--volume", f"{PIP_CACHE}:/root/.cache/pip", "--workdir", SOURCE_IN_CONTAINER)
    try:
        podman.run("run", *options, snapshot, "python3", "-c", NETWORK_PROBE)
        result = podman.run("run", *options, snapshot, "env", *(f"--unset={name}" for name in run_settings),
                            "make", "test", check=False, timeout=7200)
    finally:
        podman.run("rmi", "--force", snapshot, check=False)
    MAKE_TEST_LOG.write_text(result.stdout + result.stderr)
    closing = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode != 0:
        raise RuntimeError(f"make test failed ({result.returncode}), whole output in {MAKE_TEST_LOG}:\n"
                           f"{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return "make test: " + closing.strip("= ")


if __name__ == "__main__":
    sys.exit(main())
