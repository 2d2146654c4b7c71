"""deploy/gunicorn: the conf files load with runpy, hold only real gunicorn settings
with sane values, and their hooks and access-log format behave."""
from __future__ import annotations

import datetime
import json
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from common import config
from tests import support

GUNICORN = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn"
CONFS = {
    "vault": (GUNICORN / "vault.conf.py", "vault_service.wsgi:app", 8081),
    "secrets-manager": (GUNICORN / "secrets_manager.conf.py", "secrets_manager_service.wsgi:app", 8082),
}
ENV = ("BIND", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=sorted(CONFS))
def conf(request):
    return CONFS[request.param]


def load(path: Path) -> dict:
    return runpy.run_path(str(path))


def settings_in(namespace: dict) -> dict:
    """What gunicorn reads from a config module: its public, non-module names."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and not isinstance(v, types.ModuleType)}


def gunicorn_config(namespace: dict) -> Config:
    cfg = Config()
    for key, value in settings_in(namespace).items():
        cfg.set(key, value)  # runs gunicorn's own validator for the setting
    return cfg


def test_defaults(conf):
    path, app, port = conf
    ns = load(path)
    assert ns["wsgi_app"] == app
    assert ns["bind"] == [f"0.0.0.0:{port}"]
    assert ns["worker_class"] == "sync"
    assert ns["preload_app"] is False
    assert (ns["timeout"], ns["graceful_timeout"], ns["keepalive"]) == (30, 30, 5)
    assert ns["max_requests"] > 0 and 0 < ns["max_requests_jitter"] < ns["max_requests"]
    assert ns["forwarded_allow_ips"] == "127.0.0.1"
    assert ns["accesslog"] == "-"
    assert ns["loglevel"] == "info"
    assert callable(ns["child_exit"])


def test_every_name_is_a_gunicorn_setting_gunicorn_accepts(conf):
    ns = load(conf[0])
    unknown = set(settings_in(ns)) - set(Config().settings)
    assert not unknown, f"not gunicorn settings (typo?): {sorted(unknown)}"
    cfg = gunicorn_config(ns)
    assert cfg.worker_class_str == "sync"
    assert cfg.forwarded_allow_ips == ["127.0.0.1"]


def test_worker_count_is_sane(conf):
    ns = load(conf[0])
    shared = runpy.run_path(str(GUNICORN / "shared.py"))
    cpus = shared["usable_cpus"]()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    assert ns["workers"] == 2 * cpus + 1
    assert 3 <= ns["workers"] <= 2 * (os.cpu_count() or 1) + 1


def test_environment_overrides(conf, monkeypatch):
    monkeypatch.setenv("BIND", "127.0.0.1:18000")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1,10.0.0.2")
    monkeypatch.setenv("LOG_LEVEL", "WARN")
    ns = load(conf[0])
    assert ns["bind"] == ["127.0.0.1:18000"]
    assert ns["workers"] == 4
    assert ns["loglevel"] == "warning"
    assert gunicorn_config(ns).forwarded_allow_ips == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_web_concurrency_is_refused(conf, monkeypatch, value):
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        load(conf[0])


def test_child_exit_marks_the_worker_dead_only_in_multiprocess_mode(conf, monkeypatch, tmp_path):
    from prometheus_client import multiprocess

    marked = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", marked.append)
    ns = load(conf[0])
    worker = types.SimpleNamespace(pid=4242)
    ns["child_exit"](None, worker)
    assert marked == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    ns["child_exit"](None, worker)
    assert marked == [4242]


def test_on_starting_prepares_an_empty_multiprocess_dir(conf, monkeypatch, tmp_path):
    ns = load(conf[0])
    monkeypatch.setenv("DEV_MODE", "1")  # the settings check before it passes
    directory = tmp_path / "prom"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    ns["on_starting"](None)
    assert directory.is_dir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "keep.txt").write_text("not ours")
    ns["on_starting"](None)
    assert sorted(p.name for p in directory.iterdir()) == ["keep.txt"]


def _without_service_settings(monkeypatch) -> None:
    for setting in (config.VAULT + config.SECRETS_MANAGER).settings:
        monkeypatch.delenv(setting.name, raising=False)


def test_missing_settings_stop_the_master_before_it_prepares_anything(conf, monkeypatch, tmp_path, capsys):
    _without_service_settings(monkeypatch)
    directory = tmp_path / "prom"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    name = "vault" if conf[0].name.startswith("vault") else "secrets-manager"
    with pytest.raises(SystemExit) as stopped:
        load(conf[0])["on_starting"](None)
    assert stopped.value.code == config.GUNICORN_APP_LOAD_ERROR
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith(f"{name}: ") for line in lines)
    assert any("DATABASE_URL is not set" in line for line in lines) and len(set(lines)) == len(lines)
    assert not directory.exists()


@pytest.mark.slow
def test_production_gunicorn_says_a_missing_setting_once_not_once_per_worker(conf, monkeypatch, tmp_path):
    """Three workers would each load the app and print the same lines: the master says them once."""
    _without_service_settings(monkeypatch)
    env = {**os.environ, "WEB_CONCURRENCY": "3", "BIND": f"127.0.0.1:{support.free_port()}",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", str(conf[0])], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == config.GUNICORN_APP_LOAD_ERROR
    ours = [line for line in result.stderr.splitlines() if "DATABASE_URL is not set" in line]
    assert len(ours) == 1, result.stderr
    assert "Booting worker" not in result.stderr and "Traceback" not in result.stderr


def test_access_log_line_is_json_without_query_or_credentials(conf):
    cfg = gunicorn_config(load(conf[0]))
    logger = glogging.Logger(cfg)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/vault/api/v1/secrets/a%2Fb?token=QUERY-SECRET",
        "PATH_INFO": "/vault/api/v1/secrets/a/b",
        "QUERY_STRING": "token=QUERY-SECRET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_USER_AGENT": 'curl/8 "quoted"',
        "HTTP_AUTHORIZATION": "Bearer HEADER-SECRET",
    }
    # No X-Request-ID from the client: the line carries the one the app made up and returned.
    request = types.SimpleNamespace(headers=[("AUTHORIZATION", "Bearer HEADER-SECRET")])
    response = types.SimpleNamespace(status="200 OK", sent=17, headers=[("Content-Type", "application/json"),
                                                                       ("X-Request-ID", "req-1")])
    atoms = glogging.SafeAtoms(logger.atoms(response, request, environ, datetime.timedelta(milliseconds=12)))
    line = cfg.access_log_format % atoms

    record = json.loads(line)
    assert "SECRET" not in line
    assert record["path"] == "/vault/api/v1/secrets/a/b"
    assert record["method"] == "GET" and record["status"] == 200 and record["duration_ms"] == 12
    assert record["request_id"] == "req-1"
    assert record["user_agent"] == 'curl/8 "quoted"'


def test_the_http_edge_config_is_the_services_http_edge(conf):
    """http_edge.conf.py (the tests' live servers) meets HTTP exactly as the service configs do."""
    edge = settings_in(load(GUNICORN / "http_edge.conf.py"))
    gunicorn_config(edge)
    service = settings_in(load(conf[0]))
    same = [getattr(service[key], "__code__", service[key]) == getattr(value, "__code__", value) for key, value in edge.items()]
    assert edge and all(same), edge
    assert edge["limit_request_field_size"] > 8 * 1024 + len("Authorization: Bearer ")
