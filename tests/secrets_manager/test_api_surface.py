"""What every route shares: the OpenAPI document, the error envelope, status without a token."""
from __future__ import annotations

from tests.secrets_manager.helpers import SM


def test_openapi_document_lists_both_prefixes(sm):
    spec = sm.get("/openapi.json", headers={}).get_json()
    paths = set(spec["paths"])
    for route in ("/password-policies", "/password-policy/{policy_id}", "/script-template/compile",
                  "/host-secret/{host_id}", "/rotate/{host_id}/{account}", "/set-password/{host_id}/{account}",
                  "/secrets", "/secrets/search", "/secrets/checkouts/{checkout_id}/release"):
        assert SM + route in paths, route
    for route in ("/secrets", "/secrets/search", "/secrets/checkouts", "/secrets/checkouts/{checkout_id}",
                  "/secrets/checkouts/{checkout_id}/release"):
        assert "/authorizer/api/v1" + route in paths, route
    assert spec["paths"][SM + "/password-policy"]["post"]["summary"] == "Create a password policy"


def test_status_needs_no_token(sm):
    response = sm.get("/status", headers={})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "RUNNING" and body["api_version"] == "v1"
    assert body["app_id"].startswith("secrets-manager-")
    assert {d["k"]: d["v"] for d in body["status_details"]} == {"database": "ok", "vault": "ok"}


def test_router_and_body_errors_use_the_envelope(sm):
    missing = sm.get("/no-such-route")
    assert missing.status_code == 404 and missing.get_json()["error_code"] == "OBJECT_NOT_FOUND"
    wrong_method = sm.call("PATCH", "/password-policies")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error_code"] == "BAD_REQUEST"
    not_json = sm.client.post(SM + "/password-policy", data="{nope", headers={**sm.admin, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.get_json()["error_code"] == "BAD_REQUEST"
    too_big = sm.client.post(SM + "/password-policy", data="x" * (1024 * 1024 + 1),
                             headers={**sm.admin, "Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.get_json()["error_code"] == "OUT_OF_RESOURCES"
    not_an_object = sm.post("/secrets/checkouts", json=["hosts/x/y"])
    assert not_an_object.status_code == 400 and "error_code" in not_an_object.get_json()
