"""Per-principal quotas by route group: per process, shared through Redis, and across gunicorn workers.

Windows here are a billion seconds long, so a test never straddles a window's end.
"""
from __future__ import annotations

import uuid

import pytest
import redis
import requests

from common import ratelimit
from tests import support
from tests.edges import expect
from tests.vault.helpers import V1, assert_error, create_shared

REDIS_URL = "redis://127.0.0.1:6379/0"
LONG_WINDOW = 10**9


def redis_or_skip():
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        client.ping()
        return client
    except redis.RedisError as exc:
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({type(exc).__name__}); .ci/run installs redis-server")


@pytest.fixture()
def redis_prefix():
    """A key prefix of this test alone; its keys are deleted afterwards."""
    client = redis_or_skip()
    prefix = f"test-ratelimit-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def limited_vault(vault_config, **settings):
    from vault_service.app import create_app

    return create_app({**vault_config, "RATE_LIMIT_WINDOW_SECONDS": LONG_WINDOW, **settings})


@pytest.fixture()
def apps():
    made = []
    yield made
    for app in made:
        app.extensions["db"].close()


def assert_limited(response, quota: int):
    body = assert_error(response, 429, "MAX_LOAD")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= LONG_WINDOW
    assert str(quota) in body["error_message"] and f"retry after {retry_after} s" in body["error_message"]
    assert body["details"] == [{"error_code": "MAX_LOAD", "error_message": f"retry after {retry_after} s",
                                "property": "Retry-After"}]


@pytest.fixture(scope="module")
def route_of(vault_app, data_dir):
    """(app, endpoint, rule) of a request, as the apps' own routers resolve it (the Secrets
    Manager's app is only built, never started: its router is all that is asked)."""
    from secrets_manager_service.app import create_app

    unused = f"http://127.0.0.1:{support.free_port()}"
    sm_app = create_app(support.service_settings(data_dir, f"postgresql://postgres@127.0.0.1:{support.free_port()}/unused",
                                                 VAULT_URL=unused, SM_TOKEN_URL=unused + "/token",
                                                 SM_CLIENT_SECRET="unused", LOG_LEVEL="WARNING"))

    def resolve(method, path):
        app = sm_app if path.startswith(("/secrets-manager", "/authorizer")) else vault_app
        rule, _ = app.url_map.bind("localhost").match(path, method="GET" if method == "LIST" else method,
                                                      return_rule=True)
        return app, rule.endpoint, rule.rule

    return resolve


@pytest.mark.parametrize("method,path,group", [
    ("GET", "/vault/api/v1/secrets", "reads"),
    ("HEAD", "/vault/api/v1/secrets/a", "reads"),
    ("POST", "/vault/api/v1/search/secrets", "reads"),
    ("POST", "/secrets-manager/api/v1/secrets/search", "reads"),
    ("POST", "/secrets-manager/api/v1/targetdomains/resolve", "reads"),
    ("POST", f"/secrets-manager/api/v1/targetdomains/{uuid.uuid4()}/accounts/search", "reads"),
    ("POST", "/vault/api/v1/secrets", "writes"),
    ("PUT", "/vault/api/v1/secrets/a/b", "writes"),
    ("DELETE", "/vault/api/v1/secret/metadata/a", "writes"),
    ("POST", "/secrets-manager/api/v1/secrets/checkouts", "checkouts"),
    ("POST", "/authorizer/api/v1/secrets/checkouts", "checkouts"),
    ("POST", f"/secrets-manager/api/v1/secrets/checkouts/{uuid.uuid4()}/release", "checkouts"),
    ("GET", "/secrets-manager/api/v1/secrets/checkouts", "reads"),
    ("GET", "/vault/api/v1/status", None),
    ("GET", "/secrets-manager/api/v1/status", None),
    ("GET", "/metrics", None),
    ("GET", "/vault/api/v1/openapi.json", None),
    ("GET", "/vault/api/v1/docs", None),
    ("GET", "/vault/api/v1/docs/assets/swagger-ui.css", None),
    ("OPTIONS", "/vault/api/v1/secrets", None),
    ("GET", "/v1/secret/data/a", "reads"),
    ("LIST", "/v1/secret/metadata/a", "reads"),
    ("POST", "/v1/secret/data/a", "writes"),
    # A route is its rule, never its path: names that look like another route count as what they are.
    ("GET", "/vault/api/v1/secrets/team/status", "reads"),
    ("GET", "/vault/api/v1/secrets/team/metrics", "reads"),
    ("GET", "/vault/api/v1/secrets/team/openapi.json", "reads"),
    ("GET", "/vault/api/v1/secrets/docs/x", "reads"),
    ("GET", "/vault/api/v1/metadata/secrets/docs", "reads"),
    ("GET", "/v1/secret/data/status", "reads"),
    ("POST", "/vault/api/v1/secret/data/a/search", "writes"),
    ("POST", "/vault/api/v1/secret/data/x/resolve", "writes"),
    ("POST", "/vault/api/v1/secret/data/secrets/checkouts", "writes"),
    ("POST", "/v1/secret/data/secrets/checkouts", "writes"),
])
def test_route_groups(route_of, method, path, group):
    app, endpoint, rule = route_of(method, path)
    assert ratelimit.route_group(app, method, endpoint, rule) == group


def test_unmatched_requests_count_by_method(vault_app):
    assert ratelimit.route_group(vault_app, "GET", None, None) == "reads"
    assert ratelimit.route_group(vault_app, "POST", None, None) == "writes"


def test_off_unless_configured(vault_app):
    assert "rate_limiter" not in vault_app.extensions


def test_per_process_quota_per_principal_and_group(vault_config, tokens, apps):
    app = limited_vault(vault_config, RATE_LIMIT_READS=3, RATE_LIMIT_WRITES=1)
    apps.append(app)
    client = app.test_client()
    alice, bob = tokens.headers("admin user"), tokens.headers("admin user")
    for _ in range(3):
        assert client.get(f"{V1}/secrets", headers=alice).status_code == 200
    assert_limited(client.get(f"{V1}/secrets", headers=alice), 3)
    assert_limited(client.post(f"{V1}/search/secrets", headers=alice, json={}), 3)  # searches are reads
    assert client.get(f"{V1}/secrets", headers=bob).status_code == 200  # a quota is per caller
    # Writes have their own quota, untouched by the reads.
    create_shared(client, tokens)  # a fresh admin: its own first write
    writer = tokens.headers("admin")
    assert client.post(f"{V1}/secrets", headers=writer, json={"name": support.unique(), "data": {}}).status_code == 201
    assert_limited(client.post(f"{V1}/secrets", headers=writer, json={"name": support.unique(), "data": {}}), 1)


def test_uncounted_callers_and_routes(vault_config, tokens, apps):
    app = limited_vault(vault_config, RATE_LIMIT_READS=1)
    apps.append(app)
    client = app.test_client()
    for _ in range(3):
        assert client.get(f"{V1}/status").status_code == 200
        # No token, or a bad one, is 401 whatever the quota (and counts for no one).
        assert_error(client.get(f"{V1}/secrets"), 401, "UNAUTHORIZED")
        assert_error(client.get(f"{V1}/secrets", headers={"Authorization": "Bearer x.y.z"}), 401, "UNAUTHORIZED")
    service = tokens.headers("service")
    for _ in range(3):  # the Secrets Manager's own calls are counted where its callers are
        assert client.get(f"{V1}/secret/keys", headers=service).status_code in (200, 404)


def test_redis_counts_are_shared_by_replicas(vault_config, tokens, apps, redis_prefix):
    # Two apps stand for two replicas (or workers): they share nothing but Redis.
    settings = {"RATE_LIMIT_READS": 4, "REDIS_URL": REDIS_URL, "RATE_LIMIT_REDIS_PREFIX": redis_prefix}
    first, second = limited_vault(vault_config, **settings), limited_vault(vault_config, **settings)
    apps += [first, second]
    caller = tokens.headers("user")
    statuses = [app.test_client().get(f"{V1}/secrets", headers=caller).status_code
                for app in (first, second, first, second, first, second)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}:reads:*"))
    assert len(keys) == 1 and redis.Redis.from_url(REDIS_URL).ttl(keys[0]) > 0  # the window's key expires


def test_redis_down_counts_per_process_and_keeps_answering(vault_config, tokens, apps):
    dead = f"redis://127.0.0.1:{support.free_port()}/0"
    app = limited_vault(vault_config, RATE_LIMIT_READS=2, REDIS_URL=dead, RATE_LIMIT_REDIS_PREFIX="unused")
    apps.append(app)
    client, caller = app.test_client(), tokens.headers("user")
    assert [client.get(f"{V1}/secrets", headers=caller).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.slow
def test_quota_holds_across_gunicorn_replicas(vault_config, tokens, redis_prefix):
    """Two gunicorn servers (two replicas, two workers each) on one Redis: requests alternate
    between them, so whichever worker takes each one, the count is the callers' across all four."""
    quota = 6
    env = {k: str(v) for k, v in vault_config.items()}
    env.update(RATE_LIMIT_READS=str(quota), RATE_LIMIT_WINDOW_SECONDS=str(LONG_WINDOW), REDIS_URL=REDIS_URL,
               RATE_LIMIT_REDIS_PREFIX=redis_prefix)
    with support.gunicorn("vault_service.wsgi:app", env, workers=2, health_path=f"{V1}/status") as first, \
            support.gunicorn("vault_service.wsgi:app", env, workers=2, health_path=f"{V1}/status") as second:
        caller = tokens.headers("user")
        statuses = [requests.get(f"{base}{V1}/secrets", headers=caller, timeout=10).status_code
                    for _ in range(quota * 2) for base in (first, second)]
        assert statuses == [200] * quota + [429] * (quota * 3), statuses


@pytest.mark.slow
def test_one_request_one_principal_one_count_through_gunicorn(vault_config, tokens):
    """Issue 18: X-Vault-Token with a junk bearer token was never counted, nor were reads of
    secrets named like an uncounted route. One worker: its process holds every count."""
    quota = 3
    env = {k: str(v) for k, v in vault_config.items()}
    env.update(RATE_LIMIT_READS=str(quota), RATE_LIMIT_WINDOW_SECONDS=str(LONG_WINDOW))
    with support.gunicorn("vault_service.wsgi:app", env, workers=1, health_path=f"{V1}/status",
                          conf="vault.conf.py") as base:
        def get(path, headers):
            return requests.get(base + path, headers=headers, timeout=10)

        # Under /v1/, X-Vault-Token wins: the junk bearer token beside it is ignored, and the
        # request is counted against the X-Vault-Token's caller, in Vault's shape when spent.
        admin = tokens("admin")
        both = {"X-Vault-Token": admin, "Authorization": "Bearer junk.junk.junk"}
        path = f"/v1/secret/metadata/{support.unique('count')}"
        assert [get(path, both).status_code for _ in range(quota)] == [404] * quota
        spent = get(path, both)
        assert spent.status_code == 429 and spent.json() == {"errors": [spent.json()["errors"][0]]}
        assert int(spent.headers["Retry-After"]) >= 1
        assert get(path, {"X-Vault-Token": admin}).status_code == 429  # the same caller, whatever it sends
        assert get(path, {"Authorization": f"Bearer {admin}"}).status_code == 429

        # Outside /v1/, Authorization alone authenticates and counts; X-Vault-Token is ignored.
        reader_role = support.new_role("reader")
        creator = {"Authorization": f"Bearer {tokens('admin')}"}
        names = ["team/status", "team/metrics", "team/openapi.json", "docs/team"]
        for name in names:
            created = requests.post(f"{base}{V1}/secrets", headers=creator, timeout=10, json={
                "name": f"{support.unique('n')}/{name}", "data": {"k": "v"}, "read_roles": [reader_role]})
            assert created.status_code == 201, created.text
            name_created = created.json()["name"]
            reader = tokens("user", roles=[reader_role])
            headers = {"Authorization": f"Bearer {reader}", "X-Vault-Token": tokens("user")}
            # A name like an uncounted route is counted like any other read.
            assert [get(f"{V1}/secrets/{name_created}", headers).status_code for _ in range(quota)] == [200] * quota
            expect(get(f"{V1}/secrets/{name_created}", headers), 429, "MAX_LOAD")
            assert get(f"{V1}/metadata/secrets/{name_created}", {"Authorization": f"Bearer {reader}"}).status_code == 429
        only_vault_token = get(f"{V1}/secrets", {"X-Vault-Token": tokens("user")})
        expect(only_vault_token, 401, "UNAUTHORIZED")  # not a header of this API

        # The routes that need no token are never counted, even with one.
        counted = {"Authorization": f"Bearer {reader}"}
        for path in (f"{V1}/status", "/metrics", f"{V1}/openapi.json", f"{V1}/docs"):
            assert [get(path, counted).status_code for _ in range(quota + 2)] == [200] * (quota + 2), path
