"""Helpers of the Secrets Manager tests: a thin API client over Flask's test client or a live
server, object factories with unique names, and direct reads of the Vault."""
from __future__ import annotations

import uuid

import requests

from tests import support

SM = "/secrets-manager/api/v1"
AUTHORIZER = "/authorizer/api/v1"
VAULT = "/vault/api/v1"


def policy_body(**overrides) -> dict:
    body = {
        "name": support.unique("policy"),
        "rotation_interval": "P30D",
        "password_min_length": 20,
        "password_max_length": 24,
        "use_special_characters": True,
        "use_lower_case": True,
        "use_upper_case": True,
        "use_numbers": True,
        "max_versions": 5,
        "number_of_retries": 2,
        "retry_interval": "PT0S",
        "max_concurrent_checkouts": 0,
        "max_checkout_duration": "PT1H",
        "rotate_on_release": False,
        "verify_after_rotation": False,
    }
    body.update(overrides)
    return body


def host_body(policy_id: str, *, accounts=None, roles=(), protocol: str = "NONE", **metadata) -> dict:
    accounts = {"root": "initial-" + uuid.uuid4().hex} if accounts is None else accounts
    return {
        "metadata": {
            "address": metadata.pop("address", "10.0.0.1"),
            "protocol": protocol,
            "password_policy_id": policy_id,
            "access_roles": list(roles),
            **metadata,
        },
        "accounts": [{"account": name, **({"initial_password": pw} if pw is not None else {})}
                     for name, pw in accounts.items()],
    }


class SmApi:
    """Calls the Secrets Manager as an admin unless `headers` says otherwise."""

    def __init__(self, client, tokens):
        self.client = client
        self.tokens = tokens
        self.admin = tokens.headers("admin")
        self.manager = tokens.headers("hostsManage")

    @property
    def app(self):
        return self.client.application

    def call(self, method: str, path: str, *, headers=None, json=None, query=None, prefix: str = SM):
        return self.client.open(prefix + path, method=method, headers=self.admin if headers is None else headers,
                                json=json, query_string=query)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def policy(self, **overrides) -> str:
        response = self.post("/password-policy", json=policy_body(**overrides))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def host(self, policy_id: str | None = None, *, host_id: str | None = None, **kw) -> str:
        host_id = host_id or str(uuid.uuid4())
        response = self.post(f"/host-secret/{host_id}", json=host_body(policy_id or self.policy(), **kw))
        assert response.status_code == 200, response.get_json()
        return host_id

    def checkout(self, path: str, headers) -> dict:
        response = self.post("/secrets/checkouts", headers=headers, json={"path": path})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"][0]

    def account(self, host_id: str, name: str) -> dict:
        accounts = self.get(f"/host-secret/{host_id}").get_json()["accounts"]
        return next(a for a in accounts if a["account"] == name)

    def run_worker(self):
        from secrets_manager_service.rotation.service import run_pass

        with self.app.app_context():
            return run_pass()


class LiveSmApi(SmApi):
    """The same calls against a server over HTTP (for gunicorn-run replicas)."""

    class _Client:
        def __init__(self, base: str):
            self.base = base

        def open(self, path, *, method, headers, json, query_string):
            return _Response(requests.request(method, self.base + path, headers=headers, json=json,
                                              params=query_string, timeout=30))

    def __init__(self, base: str, tokens):
        super().__init__(self._Client(base), tokens)


class _Response:
    """requests' response with the two names the tests use from Flask's."""

    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self._response = response

    def get_json(self):
        return self._response.json()


class VaultReader:
    """Reads what the Vault really holds, with a service token of its own."""

    def __init__(self, base: str, tokens):
        self.base = base + VAULT
        self._tokens = tokens

    @property
    def headers(self) -> dict:
        # A new token each time: the reader lives for the session, longer than a token's 10 minutes.
        return self._tokens.headers("service")

    def raw(self, path: str) -> dict | None:
        """The newest data of a Vault secret, read with a service token; None if there is none."""
        response = requests.get(f"{self.base}/secret/data/{path}", headers=self.headers, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["data"]

    def newest(self, path: str) -> str | None:
        data = self.raw(path)
        return None if data is None else data["password"]

    def versions(self, path: str) -> list[dict]:
        response = requests.get(f"{self.base}/secret/metadata/{path}", headers=self.headers, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return response.json()["versions"]

    def max_versions(self, path: str) -> int:
        response = requests.get(f"{self.base}/secret/metadata/{path}", headers=self.headers, timeout=10)
        response.raise_for_status()
        return response.json()["metadata"]["max_versions"]
