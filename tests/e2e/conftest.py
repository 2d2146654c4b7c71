"""One running suite (`make run`) shared by the end-to-end modules; the last test of
test_suite_end_to_end.py restarts it on the same data folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.suite import listening, ok, start_suite, stop_suite


@pytest.fixture(scope="package")
def suite_data():
    """Not under pytest's basetemp: every pytest session that starts closes /tmp/pytest-of-<user>
    to 0700 again, and the embedded PostgreSQL runs as another user when the tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="secrets-suite-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def suite(suite_data):
    running = start_suite(suite_data)  # with SIGINT ignored, as a script's background job
    yield running
    assert stop_suite(running) == 0  # SIGINT: the launcher handles it whatever it inherited
    assert not any(listening(port) for port in running.ports.values()), "a service outlived Ctrl-C"


@pytest.fixture(scope="module")
def shell(suite, tmp_path_factory):
    """`secrets ...` with a private config folder (where the token is cached) and the suite's URLs."""
    home = tmp_path_factory.mktemp("cli-home")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SECRETS_")}
    env.update(XDG_CONFIG_HOME=str(home / "config"), HOME=str(home),
               SECRETS_AUTH_URL=f"http://127.0.0.1:{suite.ports['ISSUER_PORT']}",
               SECRETS_VAULT_URL=f"http://127.0.0.1:{suite.ports['VAULT_PORT']}",
               SECRETS_SM_URL=f"http://127.0.0.1:{suite.ports['SM_PORT']}")

    def run(*args: str, stdin: str | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        # Standard input is never the terminal pytest may have been started from (a pipe, as in a script).
        return subprocess.run([sys.executable, "-m", "common.cli.main", *args], input=stdin or "", text=True,
                              capture_output=True, env={**env, **(extra_env or {})}, cwd=home, timeout=60)

    run.home = home
    return run


@pytest.fixture(scope="module")
def logged_in(shell):
    (shell.home / "oauth-secret").write_text("dev-oauth-secret\n")
    # A PrivX SDK's login: the OAuth client in Basic auth, the API client by the password grant;
    # the password comes from standard input, never the command line.
    out = ok(shell("-o", "json", "login", "--client-id", "privx-external", "--client-secret", "@oauth-secret",
                   "--username", "admin", "--password", "-", stdin="dev-admin-secret\n"))
    assert "vaultManage" in json.loads(out)["scope"]
    return shell
