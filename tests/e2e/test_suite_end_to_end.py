"""The whole suite as `make run` starts it, and the whole flow through nginx over HTTPS.

The launcher runs exactly as a newcomer's `make run` does (embedded PostgreSQL, token
issuer, Vault, Secrets Manager, worker), on free ports and a private data folder.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import hvac
import psycopg
import pytest
import requests

from tests.deploy.test_nginx_conf import NGINX, OPENSSL, nginx_command, write_nginx_conf
from tests.e2e import browser
from tests.e2e.suite import ROOT, alive, descendants, listening, start_suite, stop_suite
from tests.support import free_port, unique

pytestmark = pytest.mark.slow


def test_printed_curl_commands_work(suite, suite_data):
    from common.devtools import slapd

    with_directory = slapd.available() is None
    assert len(suite.curls) == (5 if with_directory else 4), suite.output
    outputs = []
    for command in suite.curls:
        result = subprocess.run(["bash", "-c", command], env={**os.environ, "TOKEN": suite.token,
                                                               "VAULT_TOKEN": suite.kv_token},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    if with_directory:
        # The demo directory's account: its checked-out password binds to the demo slapd.
        import ldap

        directory_checkout = outputs.pop(3)["items"][0]
        assert directory_checkout["type"] == "TARGET_DOMAIN_SECRET"
        conn = ldap.initialize(f"ldap://127.0.0.1:{suite.ports['DIRECTORY_PORT']}")
        conn.simple_bind_s(f"uid={directory_checkout['username']},{slapd.PEOPLE}", directory_checkout["secrets"][0]["secret"])
        conn.unbind_s()
    else:
        assert "No demo directory" in suite.output
    created, read, checkout, hashicorp_read = outputs
    assert created == {"name": "demo/db"}  # a fresh data folder: the create must succeed
    assert read["data"] == {"password": "s3cret"}
    # The HashiCorp read is made with the KV client's token, whose policy reaches app/ and nothing else.
    assert hashicorp_read["data"]["data"] == {"username": "app", "password": "app-demo-password"}
    vault = f"http://127.0.0.1:{suite.ports['VAULT_PORT']}/v1/secret"
    least = {"X-Vault-Token": suite.kv_token}
    assert requests.get(f"{vault}/data/demo/db", headers=least, timeout=10).status_code == 403
    assert requests.request("LIST", f"{vault}/metadata", headers=least, timeout=10).status_code == 403
    assert requests.put(f"{vault}/data/app/db", headers=least, json={"data": {"x": 1}}, timeout=10).status_code == 403
    assert "dev-secrets-manager-secret" not in suite.output  # the Secrets Manager's own secret is never shown
    assert checkout["count"] == 1 and checkout["items"][0]["secrets"][0]["secret"]
    release = requests.post(f"http://127.0.0.1:{suite.ports['SM_PORT']}/secrets-manager/api/v1/secrets/checkouts/"
                            f"{checkout['items'][0]['id']}/release",
                            headers={"Authorization": f"Bearer {suite.token}"}, timeout=10)
    assert release.status_code == 200
    # At make run's INFO, as the README says: the audit events are in the services' logs too.
    vault_log = (suite_data / "logs" / "vault.log").read_text()
    assert '"audit event"' in vault_log and '"secret.create"' in vault_log
    sm_log = (suite_data / "logs" / "secrets-manager.log").read_text()
    assert '"audit event"' in sm_log and "checkout" in sm_log


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_every_listener_is_on_loopback(suite):
    """Nothing `make run` starts listens on the machine's other addresses (the worker's metrics did, on 0.0.0.0)."""
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    for name, port in suite.ports.items():
        if name == "DIRECTORY_PORT" and suite.directory_path is None:
            continue
        assert _listening_addresses(port) == {loopback}, (name, port, _listening_addresses(port))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    crt, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture(scope="module")
def edge(suite, tls_files, tmp_path_factory):
    """nginx in front of the running suite; yields its HTTPS base URL."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    main = write_nginx_conf(directory, tls_files, port, upstreams={
        "issuer": f"127.0.0.1:{suite.ports['ISSUER_PORT']}", "vault": f"127.0.0.1:{suite.ports['VAULT_PORT']}",
        "secrets-manager": f"127.0.0.1:{suite.ports['SM_PORT']}"})
    process = subprocess.Popen(nginx_command(directory, main, "-g", "daemon off;"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/vault/api/v1/status", verify=str(tls_files[0]), timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_whole_flow_through_nginx_over_https(edge, suite, tls_files):
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides `verify`
    session.verify = str(tls_files[0])
    # A PrivX client's login: OAuth client in Basic auth, API client as username/password.
    basic = base64.b64encode(b"privx-external:dev-oauth-secret").decode()
    token = session.post(f"{edge}/auth/api/v1/oauth/token", headers={"Authorization": f"Basic {basic}"},
                         data={"grant_type": "password", "username": "admin", "password": "dev-admin-secret"}).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    roles = [{"id": "00000000-0000-4000-8000-000000000001"}]

    name = unique("edge/db")
    created = session.post(f"{edge}/vault/api/v1/secrets", json={"name": name, "data": {"pw": "via-nginx"},
                                                                 "read_roles": roles, "write_roles": roles})
    assert created.status_code == 201 and created.headers["Location"] == f"/vault/api/v1/secrets/{quote(name, safe='')}"
    read = session.get(f"{edge}/vault/api/v1/secrets/{quote(name, safe='')}")  # %2F survives the proxy
    assert read.status_code == 200 and read.json()["data"] == {"pw": "via-nginx"}
    assert read.headers["X-Request-ID"]

    checkout = session.post(f"{edge}/authorizer/api/v1/secrets/checkouts", json={"path": suite.demo_path})
    assert checkout.status_code == 200, checkout.text
    item = checkout.json()["items"][0]
    again = session.get(f"{edge}/secrets-manager/api/v1/secrets/checkouts/{item['id']}")
    assert again.status_code == 200 and again.json()["secrets"][0]["secret"] == item["secrets"][0]["secret"]
    listing = session.get(f"{edge}/authorizer/api/v1/secrets")
    assert any(i["path"] == suite.demo_path for i in listing.json()["items"])
    released = session.post(f"{edge}/authorizer/api/v1/secrets/checkouts/{item['id']}/release")
    assert released.status_code == 200

    audit = session.get(f"{edge}/vault/api/v1/audit-events", params={"target": f"secret:{name}"}).json()
    assert [e["action"] for e in audit["items"]] == ["secret.read", "secret.create"]
    assert session.get(f"{edge}/metrics").status_code == 404  # metrics stay inside
    too_big = session.post(f"{edge}/vault/api/v1/secrets", data=b"x" * (1024 * 1024 + 1),
                           headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error_code"] == "OUT_OF_RESOURCES"
    assert session.get(f"{edge}/secrets-manager/api/v1/status").json()["status"] == "RUNNING"


def test_hvac_round_trip_through_nginx(edge, suite, tls_files):
    """HashiCorp's Python client through the reverse proxy: /v1/ reaches the Vault."""
    client = hvac.Client(url=edge, token=suite.token, verify=str(tls_files[0]))
    client.session.trust_env = False  # as above: REQUESTS_CA_BUNDLE must not override `verify`
    path = unique("edge/hvac")
    assert client.secrets.kv.v2.create_or_update_secret(path=path, secret={"pw": "via-nginx"}, cas=0)["data"]["version"] == 1
    read = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"pw": "via-nginx"}
    assert client.is_authenticated() and client.sys.read_health_status().status_code == 200
    assert client.secrets.kv.v2.list_secrets(path="edge")["data"]["keys"]  # LIST passes the proxy
    client.adapter.close()


def test_limits_answer_in_the_envelope_through_nginx_and_gunicorn(edge, suite, tls_files):
    """A token or URL over the contract's 8 KiB, and over nginx's and gunicorn's own limits,
    always comes back in the JSON envelope with the contract's status; 405 carries Allow."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls_files[0])
    cases = [
        ({"Authorization": f"Bearer {suite.token}{'A' * 9000}"}, "/vault/api/v1/secrets", 401),  # the app's check
        ({"Authorization": f"Bearer {'A' * 14000}"}, "/secrets-manager/api/v1/secrets", 401),
        ({"Authorization": f"Bearer {'A' * (1024 * 1024)}"}, "/vault/api/v1/secrets", 401),  # nginx's own
        ({}, "/vault/api/v1/secrets/" + "a" * 9000, 414),  # gunicorn's request-line limit
        ({}, "/vault/api/v1/secrets/" + "a" * 20000, 414),  # nginx's
    ]
    for headers, path, status in cases:
        response = session.get(edge + path, headers=headers)
        assert response.status_code == status, (path[:40], response.status_code, response.text[:200])
        assert response.headers["Content-Type"].startswith("application/json")
        assert set(response.json()) >= {"error_code", "error_message", "details"}
    not_allowed = session.patch(f"{edge}/vault/api/v1/secrets", headers={"Authorization": f"Bearer {suite.token}"})
    assert not_allowed.status_code == 405 and "POST" in not_allowed.headers["Allow"]


@pytest.mark.skipif(browser.CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("service, prefix", [("VAULT_PORT", "/vault/api/v1"), ("SM_PORT", "/secrets-manager/api/v1")])
def test_docs_page_renders_offline_in_a_browser(suite, service, prefix):
    """The docs page in headless Chromium with nothing but 127.0.0.1 reachable: Swagger UI
    renders every operation of the service's OpenAPI document, and no request leaves the machine."""
    base = f"http://127.0.0.1:{suite.ports[service]}"
    spec = requests.get(f"{base}{prefix}/openapi.json", timeout=10).json()
    expected = {(method.upper(), path) for path, item in spec["paths"].items()
                for method in item if method in ("get", "put", "post", "delete", "patch")}
    with browser.OffMachineRecorder() as recorder:
        dom = browser.rendered_dom(f"{base}{prefix}/docs", recorder)
    assert recorder.requests == [], f"the docs page reached off the machine: {recorder.requests}"
    assert len(expected) > 10 and browser.operations(dom) == expected


@pytest.mark.skipif(browser.CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_browser_check_sees_a_page_that_uses_a_cdn(tmp_path):
    """The control of the test above: a page that loads Swagger UI from a CDN is caught."""
    (tmp_path / "cdn.html").write_text('<html><body><script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist/'
                                       'swagger-ui-bundle.js"></script></body></html>')
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        with browser.OffMachineRecorder() as recorder:
            browser.rendered_dom(f"http://127.0.0.1:{port}/cdn.html", recorder, budget_ms=3000)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert any("cdn.jsdelivr.net" in line for line in recorder.requests), recorder.requests


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while not listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_second_run_keeps_the_data(suite, suite_data):
    """Runs last of the end-to-end tests: stops the suite, starts it again on the same folder."""
    headers = {"Authorization": f"Bearer {suite.token}"}
    name = unique("persist")
    vault = f"http://127.0.0.1:{suite.ports['VAULT_PORT']}/vault/api/v1"
    roles = [{"id": "00000000-0000-4000-8000-000000000001"}]
    assert requests.post(f"{vault}/secrets", headers=headers, timeout=10,
                         json={"name": name, "data": {"kept": True}, "read_roles": roles}).status_code == 201
    assert stop_suite(suite) == 0
    # At once, on the same ports: the closed connections' TIME-WAIT must not count as "in use".
    again = start_suite(suite_data, ports=suite.ports)
    tree = descendants(again.process.pid)
    try:
        vault = f"http://127.0.0.1:{again.ports['VAULT_PORT']}/vault/api/v1"
        read = requests.get(f"{vault}/secrets/{name}", headers={"Authorization": f"Bearer {again.token}"}, timeout=10)
        assert read.status_code == 200 and read.json()["data"] == {"kept": True}
        if again.directory_path:
            # The demo directory survived the restart with its entries: its managed account is the
            # same and still checks out (a directory made anew had it REMOVED: 404).
            assert again.directory_path == suite.directory_path
            (curl,) = [c for c in again.curls if "targetdomains/" in c]
            result = subprocess.run(["bash", "-c", curl], env={**os.environ, "TOKEN": again.token},
                                    capture_output=True, text=True, timeout=30)
            checkout = json.loads(result.stdout)
            assert checkout.get("count") == 1, checkout
            from common.devtools import slapd
            import ldap

            item = checkout["items"][0]
            conn = ldap.initialize(f"ldap://127.0.0.1:{again.ports['DIRECTORY_PORT']}")
            conn.simple_bind_s(f"uid={item['username']},{slapd.PEOPLE}", item["secrets"][0]["secret"])
            conn.unbind_s()
        metrics = requests.get(f"http://127.0.0.1:{again.ports['SM_WORKER_METRICS_PORT']}/metrics", timeout=10)
        assert metrics.status_code == 200 and "secrets_manager_rotations_total" in metrics.text
    finally:
        assert stop_suite(again, signal.SIGTERM) == 0  # what kill, systemd or a test's teardown send
    assert len(tree) >= 5 and not [pid for pid in tree if alive(pid)], "SIGTERM left part of the tree running"
    suite.process = again.process  # the fixture's teardown then finds it stopped
    suite.ports = again.ports


def test_a_port_taken_by_another_suite_is_reported_as_such(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "DATA_DIR": str(tmp_path), "ISSUER_PORT": str(free_port()), "VAULT_PORT": str(port),
               "SM_PORT": str(free_port()), "SM_WORKER_METRICS_PORT": str(free_port())}
        result = subprocess.run([sys.executable, "-m", "common.devtools.devstack"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {port} (VAULT_PORT, the vault) is already in use, perhaps by another running suite" in result.stderr
    assert not (tmp_path / "postgres").exists()  # nothing was started


def test_a_bad_database_stops_make_run_at_once_with_one_line_saying_which(tmp_path, db_server):
    server = psycopg.conninfo.conninfo_to_dict(db_server)
    if server.get("host", "").startswith("/") or "host" not in server:
        pytest.skip("the database server is the embedded one (a socket): this URL needs TCP")
    url = psycopg.conninfo.make_conninfo(db_server, dbname="no_such_database_here")
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": url,
           **{name: str(free_port()) for name in ("ISSUER_PORT", "VAULT_PORT", "SM_PORT", "SM_WORKER_METRICS_PORT")}}
    result = subprocess.run([sys.executable, "-m", "common.devtools.devstack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1].startswith(
        "make run: DATABASE_URL: PostgreSQL at ") and "has no database 'no_such_database_here'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "logs" / "vault.log").exists()  # nothing started


def test_a_bad_setting_stops_make_run_with_its_one_line(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DB_POOL_MAX_SIZE": "abc"}
    result = subprocess.run([sys.executable, "-m", "common.devtools.devstack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["make run: DB_POOL_MAX_SIZE='abc' is not a whole number: set it to a whole "
                                          "number of connections, e.g. 4"]
    assert list(tmp_path.iterdir()) == []  # nothing was started
