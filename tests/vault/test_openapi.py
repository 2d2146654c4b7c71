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
