"""Test helpers: a database server, fresh databases, real tokens, live servers, a cuttable TCP link."""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg import sql

from common.devtools.issuer.keys import mint_token

ISSUER = "test-issuer"
AUDIENCE = "test-audience"
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def service_settings(data_dir: str, database_url: str | None = None, **extra: str) -> dict:
    """What every service (and the dev issuer) is given in tests: development mode (tokens
    are checked against the dev issuer's key in the data folder), the data folder, the
    tokens' issuer and audience, plus its database and `extra` settings."""
    settings = {"DEV_MODE": "1", "DATA_DIR": data_dir, "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE,
                # so that POST .../audit/hash answers (no sink is configured: nothing else changes)
                "AUDIT_HMAC_KEY": "test-audit-hmac-key"}
    if database_url:
        settings["DATABASE_URL"] = database_url
    return {**settings, **extra}


def write_issuer_clients(path, *, sm_client_secret: str, name: str) -> str:
    """A dev-issuer clients file with only the Secrets Manager's client-credentials client."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"oauth_clients": [{
            "client_id": "secrets-manager", "client_secret": sm_client_secret, "grant_types": ["client_credentials"],
            "sub": str(uuid.uuid4()), "scope": "service", "roles": [], "name": name,
        }], "api_clients": []}, handle)
    return str(path)


def database_server_url(data_dir: str) -> str:
    """The machine's PostgreSQL when it answers, else the embedded one."""
    try:
        with psycopg.connect(LOCAL_SERVER, connect_timeout=2):
            return LOCAL_SERVER
    except psycopg.OperationalError:
        from common.devtools import embedded_pg

        return embedded_pg.server_url(data_dir, cleanup_mode="stop")  # stopped when the test run exits


def create_database(server_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


def drop_database(server_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def migrated_database(server_url: str, prefix: str, *, service: str = "vault", package: str = "vault_service"):
    """A fresh database with `service`'s migrations applied, as a common.db.Database (no app)."""
    from common.db import Database

    with fresh_database(server_url, prefix) as url:
        database = Database(url, service=service, migrations_package=package)
        database.migrate()
        try:
            yield database
        finally:
            database.close()


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str):
    """A new, empty database for the `with` block; dropped afterwards, even on failure."""
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(server_url, url)


class TokenFactory:
    """Real EdDSA tokens signed by the dev issuer's key in the test data folder."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir

    def __call__(self, scopes: str, *, sub: str | None = None, roles=(), ttl: int = 600, **claims) -> str:
        return mint_token(self.data_dir, sub=sub or str(uuid.uuid4()), scopes=scopes, roles=list(roles),
                          issuer=claims.pop("issuer", ISSUER), audience=claims.pop("audience", AUDIENCE),
                          ttl=ttl, extra_claims=claims or None)

    def headers(self, scopes: str, **kwargs) -> dict:
        return {"Authorization": f"Bearer {self(scopes, **kwargs)}"}


def new_role(name: str = "role") -> dict:
    return {"id": str(uuid.uuid4()), "name": f"{name}-{uuid.uuid4().hex[:6]}"}


def unique(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def all_at_once(calls):
    """Run the calls in threads released together; their results in order."""
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DEPLOY_GUNICORN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "gunicorn")


@contextlib.contextmanager
def gunicorn(app: str, env: dict, *, workers: int = 1, health_path: str, port: int | None = None,
             conf: str | None = None):
    """Run `app` under gunicorn on 127.0.0.1; yields the base URL; stops it afterwards.

    `conf` names a file of deploy/gunicorn (e.g. "vault.conf.py"): its settings apply, as in
    production, except for the ones given here on the command line. Without one, gunicorn
    still meets HTTP as in production (http_edge.conf.py: its limits and JSON refusals)."""
    port = port or free_port()
    config = ["--config", os.path.join(DEPLOY_GUNICORN, conf or "http_edge.conf.py")]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *config, app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "sync", "--timeout", "30", "--graceful-timeout", "5", "--no-control-socket",
         # The deploy configs log every request; keep that out of the stderr pipe read below.
         *(["--access-logfile", os.devnull] if conf else [])],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + health_path, process)
        yield base
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_up(url: str, process=None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or workers still booting
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Until something accepts TCP on 127.0.0.1:`port` (for servers that answer no plain HTTP,
    such as nginx on TLS); RuntimeError with the end of `process`'s stderr if it exits first or
    does not listen in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    process.kill()
                stderr = process.communicate(timeout=5)[1] or b""
                raise RuntimeError(f"the server did not start: {stderr.decode(errors='replace')[-2000:]}") from None
            time.sleep(0.05)


def cuttable_database(url: str) -> tuple["TcpLink", str]:
    """A started TcpLink to the database server of `url`, and `url` through it; skips the
    test where that server is not on TCP (the embedded one listens on a socket)."""
    import pytest

    params = psycopg.conninfo.conninfo_to_dict(url)
    if not params.get("host", "").startswith("127."):
        pytest.skip("needs a TCP database server to cut (the embedded one listens on a socket)")
    link = TcpLink("127.0.0.1", int(params.get("port", 5432))).start()
    params.update(host="127.0.0.1", port=str(link.port))
    return link, psycopg.conninfo.make_conninfo(**params)


class TcpLink:
    """A TCP forwarder we can cut and restore, to take a dependency away from a service for real."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.rejecting = False
        self.attempts = 0  # connections accepted (forwarded or rejected), to count attempts

    def start(self) -> "TcpLink":
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._server.settimeout(0.2)
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        self._running = False
        self._server.close()
        self._break_open_connections()
        time.sleep(0.3)

    def restore(self) -> None:
        self.rejecting = False
        if not self._running:
            self.start()

    def reject(self) -> None:
        """Break the open connections; accept (and count) new ones but close them at once,
        as a server that is down behind a live address does."""
        self.rejecting = True
        self._break_open_connections()

    def _break_open_connections(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
            self._connections.clear()

    def _accept(self):
        server = self._server
        while self._running:
            try:
                client, _ = server.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.attempts += 1
            if self.rejecting:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


class LoadThreads:
    """Client threads (`self.thread(target, *args)`) that run from the `with` block's start until
    its end; a target loops `while self.running()`."""

    def __init__(self):
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def thread(self, target, *args) -> None:
        self._threads.append(threading.Thread(target=target, args=args, daemon=True))

    def running(self) -> bool:
        return not self._stop.is_set()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


# -- recorded responses (tests/vault and tests/secrets_manager test_recorded_responses.py) ----------
_RECORDED_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RECORDED_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


def masked_ids_and_times(body: bytes, chosen: set[str]) -> bytes:
    """A recorded answer's bytes with what varies from run to run masked: every UUID the service made
    (those in `chosen`, which the test picks, stay) and every timestamp. Nothing else is."""
    body = _RECORDED_UUID.sub(lambda m: m.group(0) if m.group(0).decode() in chosen else b"<uuid>", body)
    return _RECORDED_TIME.sub(b"<time>", body)


def compare_with_recording(answers: list[dict], recording: Path) -> None:
    """Each answer equals the recorded one, in the same order; with RECORD_RESPONSES=1 the answers
    are written as the new recording instead (and the test skips, saying so)."""
    if os.environ.get("RECORD_RESPONSES") == "1":
        recording.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.skip(f"recorded {len(answers)} answers in {recording.name}")
    recorded = json.loads(recording.read_text(encoding="utf-8"))
    assert [answer["request"] for answer in answers] == [answer["request"] for answer in recorded]
    for answer, expected in zip(answers, recorded):
        assert answer == expected, answer["request"]
