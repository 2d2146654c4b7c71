"""deploy/nginx/secrets-suite.conf: static properties, `nginx -t`, and (slow) real
routing through nginx to stub upstreams.

The config is used as written except for plain text substitutions - the certificate
and key paths (a self-signed pair made with openssl in tmp_path), the 443 listener and,
for the routing test, the upstream addresses - inside a minimal nginx.conf whose pid,
temp and log paths all live in tmp_path, so no root and no /etc/nginx are needed.
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support import free_port, wait_until_listening

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "secrets-suite.conf"
CERT, KEY = "/etc/secrets-suite/tls.crt", "/etc/secrets-suite/tls.key"
UPSTREAMS = {"issuer": "127.0.0.1:8080", "vault": "127.0.0.1:8081", "secrets-manager": "127.0.0.1:8082"}

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None)
OPENSSL = shutil.which("openssl")
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def test_static_properties():
    text = CONF.read_text()
    # The strings the tests (and deployments) substitute are there exactly once.
    for needle in (f"ssl_certificate     {CERT};", f"ssl_certificate_key {KEY};", "listen 443 ssl;",
                   *(f"server {address};" for address in UPSTREAMS.values())):
        assert text.count(needle) == 1, needle
    assert re.search(r"^\s*client_max_body_size 1m;", text, re.M)
    # proxy_pass with no URI part, so nginx forwards the client's path bytes unchanged.
    passes = re.findall(r"^\s*proxy_pass\s+(\S+);", text, re.M)
    assert passes and all(re.fullmatch(r"http://[A-Za-z0-9_]+", p) for p in passes), passes
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID"):
        assert re.search(rf"^\s*proxy_set_header {header} ", text, re.M), header
    # The access log never records the query string or credentials.
    log_format = text[text.index("log_format"):text.index(";", text.index("log_format"))]
    for leak in ("$request ", "$request_uri", "$args", "$query_string", "$http_authorization", "$http_cookie"):
        assert leak not in log_format, leak


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    crt, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True, timeout=60)
    return crt, key


def write_nginx_conf(tmp_path: Path, tls_pair, port: int, upstreams: dict | None = None) -> Path:
    crt, key = tls_pair
    site = CONF.read_text()
    site = site.replace(CERT, str(crt)).replace(KEY, str(key))
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    for name, address in (upstreams or {}).items():
        site = site.replace(f"server {UPSTREAMS[name]};", f"server {address};")
    (tmp_path / "secrets-suite.conf").write_text(site)
    temp = tmp_path / "temp"
    temp.mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    # As root, nginx would run its workers as "nobody", who cannot enter tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    main.write_text(f"""
{user}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/secrets-suite.conf;
}}
""")
    return main


def nginx_command(tmp_path: Path, main: Path, *args: str) -> list[str]:
    return [NGINX, "-e", "stderr", "-p", str(tmp_path), "-c", str(main), *args]


@needs_nginx
@needs_openssl
def test_nginx_accepts_the_config(tmp_path, tls_pair):
    main = write_nginx_conf(tmp_path, tls_pair, free_port())
    result = subprocess.run(nginx_command(tmp_path, main, "-t"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class _Echo(http.server.BaseHTTPRequestHandler):
    """Stub upstream: answers with the raw request line path and the proxy headers."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({
            "upstream": self.server.name,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_LIST = _answer  # LIST: HashiCorp's listing verb

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, tls_pair):
    """nginx on a free port in front of three stub upstreams; yields a request function."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    tmp_path = tmp_path_factory.mktemp("nginx")
    servers = {}
    for name in UPSTREAMS:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        server.name = name
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers[name] = server
    port = free_port()
    main = write_nginx_conf(tmp_path, tls_pair, port,
                            {n: f"127.0.0.1:{s.server_address[1]}" for n, s in servers.items()})
    process = subprocess.Popen(nginx_command(tmp_path, main, "-g", "daemon off;"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    context = ssl.create_default_context(cafile=str(tls_pair[0]))
    try:
        wait_until_listening(port, process)

        def request(method, path, headers=None, body=None):
            conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                return response.status, (json.loads(data) if response.getheader("Content-Type") == "application/json"
                                         else None)
            finally:
                conn.close()

        yield request
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        for server in servers.values():
            server.shutdown()
            server.server_close()


@pytest.mark.slow
@needs_openssl
@pytest.mark.parametrize("path, upstream", [
    ("/vault/api/v1/secrets/team%2Fdb-password?version=2", "vault"),
    ("/vault/api/v1/status", "vault"),
    ("/secrets-manager/api/v1/status", "secrets-manager"),
    ("/secrets-manager/api/v1/secrets/a%2Fb%20c", "secrets-manager"),
    ("/authorizer/api/v1/secrets", "secrets-manager"),
    ("/authorizer/api/v1/secrets/x%2Fy", "secrets-manager"),
    ("/auth/api/v1/oauth/token", "issuer"),
    ("/auth/api/v1/oauth/jwks", "issuer"),
    ("/v1/secret/data/team%2Fdb?version=2", "vault"),
    ("/v1/sys/internal/ui/mounts/secret/app", "vault"),
])
def test_routes_keep_the_path_byte_for_byte(proxy, path, upstream):
    status, echo = proxy("GET", path)
    assert status == 200
    assert echo["upstream"] == upstream
    assert echo["path"] == path


@pytest.mark.slow
@needs_openssl
@pytest.mark.parametrize("path", ["/", "/metrics", "/authorizer/api/v1/secretsX", "/authorizer/api/v1/roles",
                                  "/vault-admin/"])
def test_everything_else_is_not_found(proxy, path):
    status, body = proxy("GET", path)
    # nginx answers itself (no upstream echo), in the API's error envelope.
    assert status == 404
    assert body == {"error_code": "OBJECT_NOT_FOUND", "error_message": "no such resource", "details": []}


@pytest.mark.slow
@needs_openssl
def test_forwarded_headers_and_request_id(proxy):
    _, echo = proxy("GET", "/vault/api/v1/status", {"X-Forwarded-For": "6.6.6.6", "X-Request-ID": "abc-123"})
    headers = echo["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the peer, not the client's claim
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "localhost"
    assert headers["x-request-id"] == "abc-123"

    _, echo = proxy("GET", "/vault/api/v1/status")
    assert re.fullmatch(r"[0-9a-f]{32}", echo["headers"]["x-request-id"])

    _, echo = proxy("GET", "/vault/api/v1/status", {"X-Request-ID": "x" * 129})
    assert re.fullmatch(r"[0-9a-f]{32}", echo["headers"]["x-request-id"])

    _, echo = proxy("GET", "/vault/api/v1/status", {"Authorization": "Bearer t"})
    assert echo["headers"]["authorization"] == "Bearer t"


@pytest.mark.slow
@needs_openssl
def test_body_limit_is_one_mebibyte(proxy):
    status, _ = proxy("POST", "/vault/api/v1/secrets", {"Content-Type": "application/octet-stream"},
                      b"x" * (1024 * 1024))
    assert status == 200
    status, body = proxy("POST", "/vault/api/v1/secrets", {"Content-Type": "application/octet-stream"},
                      b"x" * (1024 * 1024 + 1))
    assert status == 413
    assert body["error_code"] == "OUT_OF_RESOURCES"


@pytest.mark.slow
@needs_openssl
def test_the_contracts_header_limits_pass_through(proxy):
    token = "Bearer " + "t" * (8 * 1024 + 100)  # over the contract's 8 KiB: the service says 401
    status, echo = proxy("GET", "/vault/api/v1/secrets", {"Authorization": token})
    assert status == 200 and echo["headers"]["authorization"] == token
    path = "/vault/api/v1/secrets/" + "a" * (8 * 1024 + 100)  # the service says 414
    status, echo = proxy("GET", path)
    assert status == 200 and echo["path"] == path


@pytest.mark.slow
@needs_openssl
@pytest.mark.parametrize("headers, path, status, code", [
    ({"Authorization": "Bearer " + "t" * (1024 * 1024)}, "/vault/api/v1/secrets", 401, "UNAUTHORIZED"),
    ({"Authorization": "Bearer " + "t" * (20 * 1024)}, "/secrets-manager/api/v1/secrets", 401, "UNAUTHORIZED"),
    ({}, "/vault/api/v1/secrets/" + "a" * (20 * 1024), 414, "BAD_REQUEST"),
])
def test_what_nginx_refuses_itself_is_in_the_envelope(proxy, headers, path, status, code):
    got, body = proxy("GET", path, headers)
    assert got == status
    assert body is not None and body["error_code"] == code and body["details"] == []


@pytest.mark.slow
@needs_openssl
def test_a_malformed_request_is_400_in_the_envelope(proxy):
    got, body = proxy("GET", "/vault/api/v1/status", {"Host": "a b"})
    assert got == 400
    assert body == {"error_code": "BAD_REQUEST", "error_message": "malformed HTTP request", "details": []}


@pytest.mark.slow
@needs_openssl
def test_nginx_answers_hashicorp_clients_in_their_shape(proxy):
    status, body = proxy("POST", "/v1/secret/data/x", {"Content-Type": "application/json"}, b"x" * (1024 * 1024 + 1))
    assert status == 413 and body == {"errors": ["request body too large"]}
    status, echo = proxy("LIST", "/v1/secret/metadata/team")  # Vault's own verb reaches the Vault
    assert status == 200 and echo["upstream"] == "vault" and echo["path"] == "/v1/secret/metadata/team"
