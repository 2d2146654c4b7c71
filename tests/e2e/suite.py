"""The suite as `make run` starts it, for the end-to-end tests: start, stop, and what is left running."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "Ctrl-C stops everything."


class RunningSuite:
    def __init__(self, process, output: str, ports: dict):
        self.process, self.output, self.ports = process, output, ports
        self.token = re.search(r"export TOKEN=(\S+)", output).group(1)
        self.kv_token = re.search(r"VAULT_TOKEN=(\S+)", output).group(1)  # the least-privilege KV client's
        self.curls = [line.strip() for line in output.splitlines() if line.strip().startswith("curl ")]
        self.demo_path = re.search(r'"path": "(hosts/[^"]+)"', output).group(1)
        directory = re.search(r'"path": "(targetdomains/[^"]+)"', output)
        self.directory_path = directory.group(1) if directory else None  # None without slapd


def _as_a_scripts_background_job() -> None:
    """A shell script's `make run &` starts it with SIGINT ignored: the launcher must still stop on it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_suite(data_dir: Path, ports: dict | None = None) -> RunningSuite:
    """The launcher on free ports (or on `ports`: a restart on the same ones)."""
    if ports is None:
        ports = {"ISSUER_PORT": free_port(), "VAULT_PORT": free_port(), "SM_PORT": free_port()}
        ports["SM_WORKER_METRICS_PORT"] = free_port()
        ports["DIRECTORY_PORT"] = free_port()  # the demo directory, where slapd is installed
    # DEVSTACK_EXIT_WITH_PARENT: should this test process die without its teardown, the launcher stops too.
    env = {**os.environ, "DATA_DIR": str(data_dir), "WEB_CONCURRENCY": "1", "DEVSTACK_EXIT_WITH_PARENT": "1",
           **{k: str(v) for k, v in ports.items()}}
    for unset in ("DATABASE_URL", "AUTH_JWKS_FILE", "AUTH_JWKS_URL", "VAULT_MASTER_KEYS", "ISSUER_CLIENTS_FILE"):
        env.pop(unset, None)
    process = subprocess.Popen([sys.executable, "-m", "common.devtools.devstack"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=_as_a_scripts_background_job)
    lines, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY_LINE in line:
            return RunningSuite(process, "".join(lines), ports)
    process.kill()
    raise AssertionError("the suite did not start:\n" + "".join(lines)[-3000:])


def stop_suite(suite: RunningSuite, sig: int = signal.SIGINT) -> int:
    suite.process.send_signal(sig)  # SIGINT is what Ctrl-C sends
    try:
        return suite.process.wait(timeout=60)
    finally:
        if suite.process.poll() is None:
            os.killpg(suite.process.pid, signal.SIGKILL)


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead, only not yet reaped
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except requests.ConnectionError:
        return False


# What a `secrets` run printed, checked as a user would read it.
def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("secrets: error: ") and "Traceback" not in result.stderr
    return line
