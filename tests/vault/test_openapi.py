"""The Vault's served OpenAPI document: valid (openapi-spec-validator) and as precise as the contract."""
from __future__ import annotations

from tests.edges import check_openapi
from tests.vault.helpers import V1


def test_the_served_document_is_valid_and_states_the_contract(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    check_openapi(spec, prefix=V1)
    parameters = {p["name"]: p["schema"] for p in spec["paths"][f"{V1}/user/{{user_id}}/secrets/{{name}}"]["parameters"]}
    assert parameters["user_id"]["format"] == "uuid"
    assert parameters["name"]["pattern"].startswith("^") and parameters["name"]["maxLength"] == 256
    path = {p["name"]: p["schema"] for p in spec["paths"][f"{V1}/secret/data/{{path}}"]["parameters"]}["path"]
    assert path == parameters["name"]


def test_the_document_states_integer_ranges(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    offset = next(p for p in spec["paths"][f"{V1}/secrets"]["get"]["parameters"] if p["name"] == "offset")["schema"]
    assert (offset["minimum"], offset["maximum"]) == (0, 2**31 - 1)
    versions = spec["components"]["schemas"]["VersionsBody"]["properties"]["versions"]["items"]
    assert (versions["minimum"], versions["maximum"]) == (1, 2**31 - 1)


def test_the_documented_name_pattern_is_the_name_rule(client):
    """A name the document allows is one the Vault can create and reach again: no '.' or '..'
    segment (clients normalise them away from the URL), while '...' and dotted words are names."""
    import re

    from vault_service import names

    spec = client.get(f"{V1}/openapi.json").get_json()
    pattern = re.compile(spec["components"]["schemas"]["SecretCreate"]["properties"]["name"]["pattern"])
    parameter = {p["name"]: p["schema"] for p in spec["paths"][f"{V1}/secrets/{{name}}"]["parameters"]}["name"]
    assert parameter["pattern"] == pattern.pattern
    for name in [".", "..", "a/./b", "a/..", "../a", "a//b", "/a", "a/", "a;b", "a", "...", ".a", "a..", "a/.b/c", "x y+z=@"]:
        assert bool(pattern.search(name)) == (names.problem(name) is None), name


def test_the_hashicorp_routes_are_documented_for_the_mount(client, vault_config):
    """/v1/ (HashiCorp's KV v2 API) is in the document too, for the configured mount, with Vault's
    token header; none of it when VAULT_KV_MOUNT turns /v1 off."""
    from vault_service.app import create_app
    from vault_service.kv.openapi import TAG

    spec = client.get(f"{V1}/openapi.json").get_json()
    hashicorp = {path: operations for path, operations in spec["paths"].items() if path.startswith("/v1/")}
    assert {"/v1/secret/config", "/v1/secret/data/{path}", "/v1/secret/metadata/{path}", "/v1/secret/delete/{path}",
            "/v1/secret/undelete/{path}", "/v1/secret/destroy/{path}", "/v1/secret/subkeys/{path}", "/v1/sys/health",
            "/v1/sys/seal-status", "/v1/sys/mounts", "/v1/auth/token/lookup-self"} <= set(hashicorp)
    operations = [op for ops in hashicorp.values() for method, op in ops.items() if method != "parameters"]
    assert len(operations) >= 30 and all(op["tags"] == [TAG] for op in operations)
    data = hashicorp["/v1/secret/data/{path}"]
    assert set(data) >= {"get", "post", "put", "patch", "delete"}
    assert "application/merge-patch+json" in data["patch"]["requestBody"]["content"]
    assert data["get"]["security"] == [{"vaultToken": []}]  # (a bearer token is taken too)
    assert hashicorp["/v1/sys/health"]["get"]["security"] == []
    assert spec["components"]["securitySchemes"]["vaultToken"] == {"type": "apiKey", "in": "header",
                                                                     "name": "X-Vault-Token"}
    without = create_app({**vault_config, "VAULT_KV_MOUNT": ""})
    off = without.test_client().get(f"{V1}/openapi.json").get_json()
    without.extensions["db"].close()
    assert not [path for path in off["paths"] if path.startswith("/v1")]
    assert TAG not in [tag["name"] for tag in off["tags"]]
