"""The wheel as a user installs it: built from the tree, installed with the locked versions into
a fresh virtualenv outside the tree, and run from there, never from the tree.

Every other test imports the editable tree, so a module or data file that the package leaves
out (a folder without __init__.py, an undeclared data file) passes them all and breaks only an
installed suite. Here: every file of the tree's packages is in the wheel, every module imports
from the install, and the issuer, both services (gunicorn with deploy/gunicorn's
configurations, as in production) and the worker run from the install, in production mode
against the machine's PostgreSQL, through the end-to-end smoke (smoke.py) that the image test
(images.py) also runs. Processes run with an empty working directory outside the tree and a
bare environment, so nothing can be imported from the tree.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from common.devtools import slapd
from tests import support
from tests.deploy import installed_suite, smoke
from tests.deploy.packaging import PACKAGES, REPO, package_files

pytestmark = pytest.mark.slow

GUNICORN_CONF = REPO / "deploy" / "gunicorn"


def bare_env(venv: Path, home: Path, **settings: str) -> dict[str, str]:
    """What a process of the install gets: its venv's bin on PATH, a home, the settings; nothing
    of this test process (no PYTHONPATH, no VIRTUAL_ENV, no settings of the test run)."""
    return {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **settings}


@pytest.fixture(scope="session")
def venv(built_wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv outside the tree with the wheel installed, through the constraints
    (pip's cache makes the dependencies quick after the first run)."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    # sys.executable is the tree's .venv: `-m venv` builds on the interpreter under it, without its packages.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, cwd=root, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input",
                             "-c", str(REPO / "deploy" / "constraints.txt"), str(built_wheel.path)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """The installed processes' working directory and home: empty, outside the tree."""
    return tmp_path_factory.mktemp("installed-cwd")


class Processes:
    """Processes of the install, each logging to a file (shown when something fails)."""

    def __init__(self, venv: Path, workdir: Path, logs: Path):
        self.venv, self.workdir, self.logs = venv, workdir, logs
        self.running: dict[str, subprocess.Popen] = {}

    def env(self, **settings: str) -> dict[str, str]:
        return bare_env(self.venv, self.workdir, **settings)

    def run(self, argv: list[str], settings: dict) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env(**settings), cwd=self.workdir, capture_output=True, text=True,
                              timeout=120)

    def start(self, name: str, argv: list[str], settings: dict, health_url: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.running[name] = process = subprocess.Popen(argv, env=self.env(**settings), cwd=self.workdir,
                                                        stdout=log, stderr=subprocess.STDOUT)
        try:
            support.wait_until_up(health_url, timeout=60)
        except RuntimeError:
            raise AssertionError(f"{name} did not come up (exit code {process.poll()}):\n{self.log(name)}") from None

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for process in reversed(self.running.values()):
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def running(venv, workdir, db_server, tmp_path_factory):
    """The issuer, Vault, Secrets Manager and worker of the install, in production mode, on
    fresh databases that the install's own commands migrate."""
    state = tmp_path_factory.mktemp("installed-state")
    ports = installed_suite.Ports()
    processes = Processes(venv, workdir, tmp_path_factory.mktemp("installed-logs"))
    bin_ = venv / "bin"
    with support.fresh_database(db_server, "wheel_vault") as vault_db, \
            support.fresh_database(db_server, "wheel_sm") as sm_db:
        settings = installed_suite.settings(ports, vault_db=vault_db, sm_db=sm_db, data_dir=str(state),
                                            keys=installed_suite.master_keys())
        try:
            for command, service in ((bin_ / "vault-admin", "vault"), (bin_ / "secrets-manager-worker", "secrets-manager")):
                migrated = processes.run([str(command), "migrate"], settings[service])
                assert migrated.returncode == 0 and json.loads(migrated.stdout)["applied"], migrated.stderr
            processes.start("issuer", [str(bin_ / "dev-token-issuer"), "serve", "--port", str(ports.issuer)],
                            settings["issuer"], installed_suite.health_url(ports, "issuer"))
            for name, conf in (("vault", "vault.conf.py"), ("secrets-manager", "secrets_manager.conf.py")):
                service_settings = {**settings[name], "PROMETHEUS_MULTIPROC_DIR": str(state / f"metrics-{name}")}
                processes.start(name, [str(bin_ / "gunicorn"), "--config", str(GUNICORN_CONF / conf)],
                                service_settings, installed_suite.health_url(ports, name))
            processes.start("worker", [str(bin_ / "secrets-manager-worker"), "run"], settings["worker"],
                            installed_suite.health_url(ports, "worker"))
            yield ports, settings, processes
        finally:
            processes.stop_all()


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    reason = slapd.available()
    if reason:
        pytest.skip(reason)
    with slapd.Slapd(tmp_path_factory.mktemp("slapd"), users=3) as server:
        yield server


def test_the_wheel_holds_every_file_of_the_packages(built_wheel):
    names = set(zipfile.ZipFile(built_wheel.path).namelist())
    missing = sorted(package_files() - names)
    assert not missing, f"in the tree's packages but not in the wheel: {missing}"


def test_every_module_imports_from_the_install(built_wheel, venv, workdir, running):
    """Each module of the three packages, imported by the installed interpreter (the wsgi
    modules build their apps, so they get the services' settings), comes from the install."""
    modules = sorted(name[:-3].replace("/", ".").removesuffix(".__init__")
                     for name in zipfile.ZipFile(built_wheel.path).namelist()
                     if name.endswith(".py") and name.split("/")[0] in PACKAGES)
    script = """
import importlib, json, sys
failed, outside = {}, []
for name in json.loads(sys.argv[1]):
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # a SystemExit from a settings check counts too
        failed[name] = repr(exc)
        continue
    if not module.__file__.startswith(sys.prefix):
        outside.append(module.__file__)
print(json.dumps({"failed": failed, "outside": outside, "prefix": sys.prefix}))
"""
    _, settings, processes = running
    result = processes.run([str(venv / "bin" / "python"), "-c", script, json.dumps(modules)],
                           {**settings["vault"], **settings["secrets-manager"]})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["prefix"] == str(venv)
    assert len(modules) > 50 and report["failed"] == {} and report["outside"] == [], report


def test_the_installed_suite_passes_the_smoke(running, directory):
    ports, _, processes = running
    try:
        done = smoke.run(ports.suite(), directory)
    except smoke.SmokeFailure as failure:
        logs = "\n".join(f"--- {name}\n{processes.log(name)}" for name in processes.running)
        raise AssertionError(f"{failure}\n{logs}") from None
    assert len(done) == 4
    for name, process in processes.running.items():
        assert process.poll() is None, f"{name} exited: {processes.log(name)}"
