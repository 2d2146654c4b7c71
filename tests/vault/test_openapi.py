"""The Vault's served OpenAPI document: valid (openapi-spec-validator) and as precise as the contract."""
from __future__ import annotations

import re

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


# Vault's operations and the HTTP methods that document them: POST and PUT are one write, LIST
# is GET with ?list=true (HEAD is GET's, and OpenAPI documents it with GET).
_DOCUMENTED_AS = {"GET": ("get",), "PUT": ("post", "put"), "PATCH": ("patch",), "DELETE": ("delete",), "LIST": ("get",)}


def _served_v1_routes(app) -> list[tuple[str, str]]:
    """(path template, Vault operation) for every route the app serves under /v1/. The routing map
    holds one catch-all there (vault_service.kv.views, so that every answer under /v1/ is in
    Vault's shape): a test of the rules alone sees that one and none of the routes behind it,
    which is how renew-self, revoke-self and the ACL routes went undocumented. Behind the
    catch-all, the routes are the dispatch tables': the mount's families and the sys, auth and
    identity paths. A "{}" stands for a path parameter."""
    from vault_service.kv import engine, system
    from vault_service.kv.views import PREFIX

    routes = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == PREFIX or rule.rule.startswith(PREFIX + "/")):
            continue
        if rule.endpoint != "vault_kv.dispatch":  # a route of its own: documented like any other
            template = re.sub(r"<[^>]*>", "{}", rule.rule)
            routes += [(template, method) for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}]
            continue
        mount = app.config["VAULT_KV_MOUNT"]
        for family, operations in engine.ENDPOINTS.items():
            base = f"{PREFIX}/{mount}/{family}"
            for operation in operations:
                if family == "config":
                    routes.append((base, operation))
                else:
                    # (M/metadata alone lists the root: the same LIST, with an empty path.)
                    routes.append((f"{base}/{{}}", operation))
        for key, operations in system.ENDPOINTS.items():
            for operation in operations:
                if key.endswith("/") and operation == "LIST":
                    routes.append((f"{PREFIX}/{key[:-1]}", operation))  # the listing, with a trailing '/'
                else:
                    routes.append((f"{PREFIX}/{key}{'{}' if key.endswith('/') else ''}", operation))
    return sorted(set(routes))


def test_every_served_v1_route_is_documented(client, vault_app):
    spec = client.get(f"{V1}/openapi.json").get_json()
    documented = {re.sub(r"\{[^}]*\}", "{}", path): operations for path, operations in spec["paths"].items()}
    served = _served_v1_routes(vault_app)
    assert len(served) > 30, served  # the catch-all was expanded
    missing = []
    for path, operation in served:
        operations = documented.get(path, {})
        for method in _DOCUMENTED_AS[operation]:
            documented_operation = operations.get(method)
            if documented_operation is None:
                missing.append(f"{method.upper()} {path} ({operation})")
            elif operation == "LIST":
                parameters = documented_operation.get("parameters", []) + operations.get("parameters", [])
                if not [p for p in parameters if p["name"] == "list" and p["in"] == "query"]:
                    missing.append(f"{method.upper()} {path}?list=true (LIST)")
    assert not missing, f"served under /v1/ but not in the OpenAPI document: {missing}"
