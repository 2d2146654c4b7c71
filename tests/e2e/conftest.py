"""One running suite (`make run`) shared by the end-to-end modules; the last test of
test_suite_end_to_end.py restarts it on the same data folder."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.suite import listening, start_suite, stop_suite


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
