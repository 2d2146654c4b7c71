"""Every cell of tests/authz/matrix.py: each route x each caller kind, on a fresh world of objects.

Each cell checks the status, the envelope of a refusal, and for lists and searches exactly which
of the world's objects the caller finds (and whether with `data`). A route of either app without
a row fails test_every_route_has_a_row.
"""
from __future__ import annotations

import re
import uuid
from functools import cached_property

import pytest

from tests import support
from tests.authz.matrix import KINDS, SM_ROWS, VAULT_ROWS, Row, scope_of
from tests.secrets_manager.helpers import SmApi, host_body, policy_body

ERROR_CODES = {401: "UNAUTHORIZED", 403: "PERMISSION_DENIED", 404: "OBJECT_NOT_FOUND"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class World:
    """The objects one cell acts on, each made on first use, and a token for every caller kind."""

    def __init__(self, client, tokens):
        self.client, self.tokens = client, tokens
        self.world = support.unique("authz")
        self.R, self.W, self.X = (support.new_role(name) for name in ("reader", "writer", "other"))
        self.O = str(uuid.uuid4())
        self._headers = {}

    def headers(self, kind: str) -> dict:
        if kind == "none":
            return {}
        if kind not in self._headers:
            roles = {"reader": [self.R], "writer": [self.W], "other": [self.X]}.get(kind, [])
            sub = self.O if kind == "owner" else None
            self._headers[kind] = self.tokens.headers(scope_of(kind), sub=sub, roles=roles)
        return self._headers[kind]

    def __getitem__(self, key: str) -> str:
        if key in ("R", "W", "X"):
            return getattr(self, key)["id"]
        return str(getattr(self, key))

    def fill(self, value):
        """`value` with every {placeholder} replaced by the world's object."""
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda m: self[m.group(1)], value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def call(self, method, path, *, kind="admin", json=None):
        return self.client.open(path, method=method, headers=self.headers(kind), json=json)

    def ok(self, method, path, *, kind="admin", json=None, status=(200, 201)) -> dict:
        response = self.call(method, path, kind=kind, json=json)
        assert response.status_code in status, (method, path, response.status_code, response.get_json())
        return response.get_json(silent=True) or {}


class VaultWorld(World):
    V = "/vault/api/v1"

    @property
    def new(self):
        return support.unique(f"{self.world}/new")

    @property
    def new_reserved(self):
        return f"hosts/{uuid.uuid4()}/root"

    @cached_property
    def S(self):
        name = f"{self.world}/shared"
        self.ok("POST", f"{self.V}/secrets", json={"name": name, "data": {"password": "s"},
                                                    "read_roles": [self.R], "write_roles": [self.W]})
        return name

    @cached_property
    def P(self):
        name = f"{self.world}/personal"
        self.ok("POST", f"{self.V}/user/{self.O}/secrets", kind="owner",
                json={"name": name, "data": {"password": "p"}, "read_roles": [self.R], "write_roles": [self.W]})
        return name

    @cached_property
    def H(self):
        name = f"hosts/{uuid.uuid4()}/root"
        self.ok("POST", f"{self.V}/secret/data/{name}", kind="service", json={"data": {"password": "h"}})
        return name

    @property
    def S_parent(self):
        return self.S.rsplit("/", 1)[0]

    @property
    def reserved_root(self):
        self.H  # noqa: B018  (it must exist for its absence from the keys to mean anything)
        return "hosts/"


class SmWorld(World):
    SM = "/secrets-manager/api/v1"

    @cached_property
    def _sm(self):
        return SmApi(self.client, self.tokens)

    @property
    def new(self):
        return support.unique("authz")

    @cached_property
    def policy(self):
        return self._sm.policy()

    @cached_property
    def spare_policy(self):
        return self._sm.policy()

    @cached_property
    def template(self):
        return self.ok("POST", f"{self.SM}/script-template",
                       json={"name": support.unique("tpl"), "operating_system": "LINUX", "script": "true"})["id"]

    @cached_property
    def host(self):
        return self._sm.host(self.policy, roles=[self.R])

    @property
    def new_host(self):
        return str(uuid.uuid4())

    @cached_property
    def account(self):
        return f"hosts/{self.host}/root"

    @cached_property
    def checkout(self):
        return self._sm.checkout(self.account, self.headers("reader"))["id"]

    @cached_property
    def domain(self):
        from tests.authz.matrix import DOMAIN

        return self.ok("POST", f"{self.SM}/targetdomains", json={**DOMAIN, "name": self.new})["id"]

    @cached_property
    def scanned(self):
        """A scanned account of {domain}, written as a scan would (no directory runs here)."""
        from tests.secrets_manager.target_domains.helpers import insert_scanned_account

        return insert_scanned_account(self.client.application, self.domain, support.unique("user"))

    @cached_property
    def scanned_username(self):
        """The username of a scanned account of {domain} that is not managed yet."""
        from tests.secrets_manager.target_domains.helpers import insert_scanned_account

        username = support.unique("user")
        insert_scanned_account(self.client.application, self.domain, username)
        return username

    @cached_property
    def managed(self):
        from tests.secrets_manager.target_domains.helpers import insert_scanned_account

        username = support.unique("managed")
        insert_scanned_account(self.client.application, self.domain, username)
        return self.ok("POST", f"{self.SM}/targetdomains/{self.domain}/managedaccounts",
                       json={"username": username, "password_policy": {"id": self.policy}})["id"]


def _body(world: World, row: Row):
    if row.body == "policy_body":
        return policy_body()
    if row.body == "host_body":
        return host_body(world.policy, roles=[world.R])
    return world.fill(row.body)


def _check_cell(world: World, row: Row, kind: str):
    for name in (row.sees.objects if row.sees else ()):
        world[name]  # made before the request, so the list can show (or hide) it
    path = world.fill(row.path)
    response = world.client.open(path, method=row.method, headers=world.headers(kind), json=_body(world, row))
    expected = row.expected[kind]
    assert response.status_code == expected, (kind, row.id, response.status_code, response.get_data(as_text=True)[:500])
    if expected >= 400:
        body = response.get_json()
        assert body["error_code"] == ERROR_CODES[expected] and body["error_message"], body
        if kind in row.expected.refused_first:
            _check_refused_whatever_sent(world, row, kind, path, expected)
        return
    body = response.get_json(silent=True)
    if kind in row.no_data_for:
        assert "data" not in body, body
    if row.sees is not None:
        _check_reveals(world, row, kind, body)


def _check_refused_whatever_sent(world: World, row: Row, kind: str, path: str, expected: int):
    """401 (no token) and 403 (no scope) come before the request's shape: a malformed query or
    body gets the same answer, and so tells nothing about the schema."""
    bad_query = path + ("&" if "?" in path else "?") + "limit=-1&offset=x&sortdir=sideways&version=x&page_size=x"
    for body in ({"no_such_field": "\u0000", "name": 7, "data": "x", "versions": "x"}, ["not", "an", "object"]):
        response = world.client.open(bad_query, method=row.method, headers=world.headers(kind), json=body)
        assert response.status_code == expected, (kind, row.id, "malformed request", response.status_code,
                                                  response.get_data(as_text=True)[:300])


def _check_reveals(world: World, row: Row, kind: str, body: dict):
    sees = row.sees
    if sees.key == "keys":
        found = {key: key for key in body["keys"]}
    else:
        found = {item[sees.key]: item for item in body["items"]}
    for name, seers in sees.objects.items():
        value = world[name]
        if kind in seers:
            assert value in found, (kind, row.id, name, "should be listed", sorted(found))
            if sees.key == "name":
                assert ("data" in found[value]) == (kind in sees.with_data), (kind, row.id, name, found[value])
        else:
            assert value not in found, (kind, row.id, name, "must not be listed", found[value])


def _cells(rows):
    return [pytest.param(row, kind, id=f"{row.id} [{kind}]") for row in rows for kind in KINDS]


@pytest.mark.parametrize("row,kind", _cells(VAULT_ROWS))
def test_vault(vault_app, tokens, row, kind):
    _check_cell(VaultWorld(vault_app.test_client(), tokens), row, kind)


@pytest.mark.parametrize("row,kind", _cells(SM_ROWS))
def test_secrets_manager(sm_app, tokens, row, kind):
    _check_cell(SmWorld(sm_app.test_client(), tokens), row, kind)


@pytest.mark.parametrize("app_fixture,rows", [("vault_app", VAULT_ROWS), ("sm_app", SM_ROWS)])
def test_every_route_has_a_row(request, app_fixture, rows):
    app = request.getfixturevalue(app_fixture)
    adapter = app.url_map.bind("localhost")
    covered = set()
    for row in rows:
        # Placeholders by shape only: no object is made to find out which route a row means.
        path = PLACEHOLDER.sub(lambda m: str(uuid.uuid4()) if m.group(1) in _ID_PLACEHOLDERS else "x", row.path)
        endpoint, _ = adapter.match(path.split("?")[0], method=row.method)
        covered.add((endpoint, row.method))
    # A rule without methods is the /v1 catch-all (vault_service/kv): every method reaches it, and
    # tests/kv/test_access.py holds its matrix, after the KV page's own access table.
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"} if rule.endpoint != "static"}
    missing = sorted(routes - covered)
    assert not missing, f"routes without a row in tests/authz/matrix.py (add them from docs/API.md): {missing}"


_ID_PLACEHOLDERS = {"policy", "spare_policy", "template", "checkout", "host", "new_host", "O", "domain", "scanned", "managed"}
