"""The Secrets Manager's served OpenAPI document: valid (openapi-spec-validator) and as precise as the contract."""
from __future__ import annotations

from tests.edges import check_openapi
from tests.secrets_manager.helpers import SM


def test_the_served_document_is_valid_and_states_the_contract(sm):
    spec = sm.client.get(f"{SM}/openapi.json").get_json()
    check_openapi(spec, prefix=SM)
    for route in ("/host-secret/{host_id}", "/rotate/{host_id}/{account}", "/password-policy/{policy_id}"):
        parameters = {p["name"]: p["schema"] for p in spec["paths"][SM + route]["parameters"]}
        assert parameters[route.split("{")[1].split("}")[0]]["format"] == "uuid", route
