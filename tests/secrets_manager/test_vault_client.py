"""The Vault client: service token from the real issuer, cached; 401 renews it once; bounded retries."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common import errors
from secrets_manager_service import vault_client
from secrets_manager_service.vault_client import VaultClient

pytestmark = pytest.mark.slow


@pytest.fixture()
def make_client(token_url, sm_client_secret):
    def make(vault_url, **kw):
        client = VaultClient(vault_url, token_url=token_url, client_id="secrets-manager",
                             client_secret=kw.pop("client_secret", sm_client_secret), backoff=0.05, **kw)
        client.fetches = 0
        fetch = client._fetch_token

        def counted():
            client.fetches += 1
            return fetch()

        client._fetch_token = counted
        return client

    return make


class _Stub:
    """A stand-in Vault answering with the statuses given, in order (the last one repeats)."""

    def __init__(self, statuses, delay: float = 0.0, idle_close: float | None = None):
        self.statuses, self.delay, self.hits = list(statuses), delay, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            if idle_close is not None:  # HTTP/1.1 keep-alive, closed by the server after this long idle
                protocol_version = "HTTP/1.1"
                timeout = idle_close
            def _answer(self):
                stub.hits.append((self.command, self.headers.get("Authorization", "")))
                time.sleep(stub.delay)
                status = stub.statuses.pop(0) if len(stub.statuses) > 1 else stub.statuses[0]
                body = b'{"data": {"password": "p"}, "metadata": {"version": 1}}' if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub():
    made = []

    def make(statuses, **kw):
        made.append(_Stub(statuses, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_round_trip_with_one_cached_token(make_client, vault_url):
    client = make_client(vault_url)
    path = f"hosts/{uuid.uuid4()}/a b+c@d=e"
    assert client.read(path) is None and client.metadata(path) is None
    client.set_metadata(path, max_versions=3)
    assert client.write(path, {"password": "one"})["version"] == 1
    assert client.read(path)["data"] == {"password": "one"}
    assert client.metadata(path)["metadata"]["max_versions"] == 3
    client.delete(path)
    client.delete(path)  # already gone: fine
    assert client.read(path) is None
    assert client.fetches == 1
    assert client.ping()


def test_threads_share_one_token(make_client, vault_url):
    client = make_client(vault_url)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.read(f"hosts/{uuid.uuid4()}/x"), range(16)))
    assert client.fetches == 1


def test_a_rejected_token_is_renewed_once(make_client, vault_url):
    client = make_client(vault_url)
    client._token, client._token_renew_at = "not-a-token", time.monotonic() + 3600
    assert client.read(f"hosts/{uuid.uuid4()}/x") is None
    assert client.fetches == 1


def test_a_token_is_renewed_before_it_expires(make_client, vault_url):
    client = make_client(vault_url)
    client.read(f"hosts/{uuid.uuid4()}/x")
    client._token_renew_at = time.monotonic() - 1
    client.read(f"hosts/{uuid.uuid4()}/x")
    assert client.fetches == 2


def test_refused_credentials(make_client, vault_url, caplog):
    client = make_client(vault_url, client_secret="wrong-secret-value")
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.IntraServiceError) as raised:
        client.read("hosts/x/y")
    assert raised.value.status == 503 and raised.value.code == "INTRA_SERVICE_COMMUNICATION_ERROR"
    assert "wrong-secret-value" not in caplog.text and client.fetches == 1


def test_no_credentials_configured(vault_url):
    client = VaultClient(vault_url, token_url=None, client_id="secrets-manager", client_secret=None)
    with pytest.raises(errors.IntraServiceError):
        client.read("hosts/x/y")


def test_unavailable_answers_are_retried_a_few_times(make_client, stub):
    down = stub([503])
    with pytest.raises(errors.IntraServiceError):
        make_client(down.url).write("hosts/x/y", {"password": "p"})
    assert len(down.hits) == vault_client.TRIES

    flaky = stub([502, 504, 200])
    assert make_client(flaky.url).read("hosts/x/y")["data"] == {"password": "p"}
    assert len(flaky.hits) == 3

    refused = stub([403])
    with pytest.raises(errors.IntraServiceError):
        make_client(refused.url).read("hosts/x/y")
    assert len(refused.hits) == 1


def test_401_renews_the_token_only_once(make_client, stub):
    rejecting = stub([401])
    client = make_client(rejecting.url)
    with pytest.raises(errors.IntraServiceError):
        client.read("hosts/x/y")
    assert len(rejecting.hits) == 2 and client.fetches == 2
    assert rejecting.hits[0][1] != rejecting.hits[1][1]  # a new token the second time


def test_timeouts_retry_reads_but_not_writes(make_client, stub, monkeypatch):
    monkeypatch.setattr(vault_client, "TIMEOUT", (2.0, 0.2))
    slow = stub([200], delay=0.6)
    client = make_client(slow.url)
    with pytest.raises(errors.IntraServiceError):
        client.read("hosts/x/y")
    assert [m for m, _ in slow.hits] == ["GET"] * vault_client.TRIES
    slow.hits.clear()
    with pytest.raises(errors.IntraServiceError):
        client.write("hosts/x/y", {"password": "p"})
    assert [m for m, _ in slow.hits] == ["POST"]


def test_a_kept_connection_the_vault_closed_while_idle_is_not_a_failure(make_client, stub):
    """The client keeps its connection to the Vault between calls; one the Vault closed meanwhile
    (its keep-alive timeout) is noticed and replaced, not taken for an outage and retried."""
    vault = stub([200], idle_close=0.2)
    client = make_client(vault.url, tries=1)
    assert client.read("hosts/x/y")["data"] == {"password": "p"}
    time.sleep(0.6)  # the stub has closed the idle connection by now
    assert client.read("hosts/x/y")["data"] == {"password": "p"}
    assert len(vault.hits) == 2


def test_unreachable_vault_and_nothing_secret_in_the_logs(make_client, caplog):
    from tests import support

    client = make_client(f"http://127.0.0.1:{support.free_port()}")
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.IntraServiceError) as raised:
        client.write("hosts/x/y", {"password": "do-not-log-me"})
    assert raised.value.message == "the Vault is unreachable"
    assert "do-not-log-me" not in caplog.text
    assert client._token not in caplog.text
    assert not client.ping()


def test_the_environment_is_read_once_and_still_honoured(make_client, vault_url, monkeypatch, tmp_path):
    """Sessions skip requests' per-call re-reading of the environment (trust_env, issue 25), but a
    proxy and an explicit CA bundle set for the service still apply: read when the session is made."""
    ca_bundle = tmp_path / "ca.pem"
    ca_bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxied = make_client(vault_url, tries=1)
    session = proxied._session()
    assert session.trust_env is False
    assert session.verify == str(ca_bundle)
    assert session.proxies["http"] == "http://127.0.0.1:9"
    with pytest.raises(errors.IntraServiceError):
        proxied.read(f"missing/{uuid.uuid4()}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")
    direct = make_client(vault_url)
    assert "http" not in direct._session().proxies
    assert direct.read(f"missing/{uuid.uuid4()}") is None
