"""deploy/docker/Dockerfile, checked statically (no Docker engine needed): stages,
user, ports and entrypoints, and that it agrees with the gunicorn confs, the
packaging and the Kubernetes manifests."""
from __future__ import annotations

import configparser
import json
import runpy
import shlex
from pathlib import Path

import pytest

from tests.deploy.test_manifests import BASE, RUN_AS_USER, SERVING, _containers, load_kustomization

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
TARGETS = {"vault": 8081, "secrets-manager": 8082, "worker": None}
SECRET_NAMES = ("DATABASE_URL", "VAULT_MASTER_KEYS", "SM_CLIENT_SECRET", "PASSWORD", "TOKEN")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def stages() -> dict[str, dict]:
    """Per stage: its base, and its instructions plus those of the stages it builds on."""
    result, current = {}, None
    for instruction, args in instructions():
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            inherited = result.get(base.strip(), {"lines": []})["lines"]
            current = result[name.strip()] = {"base": base.strip(), "lines": list(inherited)}
        elif current is not None:
            current["lines"].append((instruction, args))
    return result


def last(stage: dict, instruction: str) -> str | None:
    values = [args for ins, args in stage["lines"] if ins == instruction]
    return values[-1] if values else None


def test_stages_and_base_image():
    text = (DOCKER / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    all_stages = stages()
    assert set(TARGETS) <= set(all_stages)
    assert all_stages["build"]["base"] == all_stages["system"]["base"] == "${PYTHON_IMAGE}"
    assert all_stages["install"]["base"] == all_stages["runtime"]["base"] == "system"
    # The install stage installs the build's wheels (and nothing from an index) into a virtualenv;
    # the runtime takes only that virtualenv, so no wheel lands in an image's layers.
    assert any(ins == "RUN" and "pip install" in args and "--no-index" in args
               for ins, args in all_stages["install"]["lines"])
    runtime_copies = [args for ins, args in all_stages["runtime"]["lines"] if ins == "COPY"]
    assert runtime_copies == ["--from=install /opt/secrets-suite /opt/secrets-suite"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_runs_unprivileged_without_healthcheck(target):
    stage = stages()[target]
    assert last(stage, "USER") == f"{RUN_AS_USER}:{RUN_AS_USER}"
    assert last(stage, "HEALTHCHECK") == "NONE"
    for ins, args in stage["lines"]:
        if ins in ("ENV", "ARG"):
            assert not any(name in args.upper() for name in SECRET_NAMES), f"{ins} {args}"


@pytest.mark.parametrize("target", ["vault", "secrets-manager"])
def test_web_target_exposes_its_port_and_runs_its_gunicorn_conf(target, monkeypatch):
    monkeypatch.delenv("BIND", raising=False)
    stage = stages()[target]
    port = TARGETS[target]
    assert last(stage, "EXPOSE") == str(port)
    assert SERVING[target][0] == port  # the Kubernetes containerPort

    entrypoint = json.loads(last(stage, "ENTRYPOINT"))
    assert entrypoint[:2] == ["gunicorn", "--config"] and len(entrypoint) == 3
    conf_path = Path(entrypoint[2])
    copies = [shlex.split(args) for ins, args in stage["lines"] if ins == "COPY"]
    (copy,) = [c for c in copies if c[-1].rstrip("/") == str(conf_path.parent)]
    sources = {Path(s).name: REPO / s for s in copy[:-1]}
    assert conf_path.name in sources, "the conf file is copied where the entrypoint looks"
    for source in sources.values():
        assert source.is_file(), source
    assert runpy.run_path(str(sources[conf_path.name]))["bind"] == [f"0.0.0.0:{port}"]

    env = " ".join(args for ins, args in stage["lines"] if ins == "ENV")
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc" in env  # mounted there in k8s


def test_worker_target_runs_the_worker_console_script():
    stage = stages()["worker"]
    assert json.loads(last(stage, "ENTRYPOINT")) == ["secrets-manager-worker"]
    assert last(stage, "EXPOSE") is None
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    for command in ("secrets-manager-worker", "vault-admin"):  # vault-admin: the migration Job
        assert f"{command} =" in scripts


def test_dockerignore_allows_exactly_what_the_build_needs():
    lines = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "allow-list: exclude everything first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    packages = {p.name for p in REPO.iterdir()
                if (p / "__init__.py").is_file() and p.name != "tests"}
    assert packages and packages <= allowed, f"packages not sent to the build: {packages - allowed}"
    assert {"setup.py", "setup.cfg", "deploy/gunicorn"} <= allowed


def test_kubernetes_images_are_dockerfile_targets():
    names = {c["image"].rpartition(":")[0] for doc in load_kustomization(BASE) for c in _containers(doc)}
    assert names == {f"secrets-suite/{target}" for target in TARGETS}
