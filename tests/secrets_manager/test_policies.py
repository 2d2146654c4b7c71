"""Password policies: CRUD, defaults, validation, paging, scopes, and 409 while in use."""
from __future__ import annotations

import uuid

import pytest

from tests.secrets_manager.helpers import policy_body


def test_create_read_replace_delete(sm):
    body = policy_body(rotation_interval="P7D", retry_interval="PT5M", max_checkout_duration="PT2H")
    created = sm.post("/password-policy", json=body)
    assert created.status_code == 201
    policy_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/secrets-manager/api/v1/password-policy/{policy_id}")

    policy = sm.get(f"/password-policy/{policy_id}").get_json()
    assert policy["name"] == body["name"]
    assert policy["rotation_interval"] == "P7D" and policy["retry_interval"] == "PT5M"
    assert policy["max_checkout_duration"] == "PT2H"
    assert policy["created"].endswith("Z") and policy["created_by"]

    # PrivX clients PUT back what they read, server-set fields included.
    changed = {**policy, "max_versions": 9, "rotate_on_release": True}
    assert sm.put(f"/password-policy/{policy_id}", json=changed).status_code == 200
    again = sm.get(f"/password-policy/{policy_id}").get_json()
    assert again["max_versions"] == 9 and again["rotate_on_release"] is True

    assert sm.delete(f"/password-policy/{policy_id}").status_code == 200
    missing = sm.get(f"/password-policy/{policy_id}")
    assert missing.status_code == 404 and missing.get_json()["error_code"] == "OBJECT_NOT_FOUND"


def test_defaults_for_omitted_settings(sm):
    created = sm.post("/password-policy", json={"name": f"min-{uuid.uuid4()}", "max_versions": 3})
    policy = sm.get(f"/password-policy/{created.get_json()['id']}").get_json()
    assert policy["rotation_interval"] == "P30D"
    assert policy["max_concurrent_checkouts"] == 0
    assert policy["max_checkout_duration"] == "PT1H"
    assert policy["use_numbers"] is True and policy["rotate_on_release"] is False


def test_duplicate_name_is_409(sm):
    body = policy_body()
    assert sm.post("/password-policy", json=body).status_code == 201
    again = sm.post("/password-policy", json=body)
    assert again.status_code == 409 and again.get_json()["property"] == "name"
    other = sm.policy()
    renamed = sm.put(f"/password-policy/{other}", json={**policy_body(), "name": body["name"]})
    assert renamed.status_code == 409


def test_delete_in_use_is_409(sm):
    policy_id = sm.policy()
    host_id = sm.host(policy_id)
    refused = sm.delete(f"/password-policy/{policy_id}")
    assert refused.status_code == 409 and refused.get_json()["error_code"] == "VALUE_DUPLICATE"
    assert sm.delete(f"/host-secret/{host_id}").status_code == 200
    assert sm.delete(f"/password-policy/{policy_id}").status_code == 200


def test_missing_objects_are_404(sm):
    unknown = uuid.uuid4()
    assert sm.get(f"/password-policy/{unknown}").status_code == 404
    assert sm.put(f"/password-policy/{unknown}", json=policy_body()).status_code == 404
    assert sm.delete(f"/password-policy/{unknown}").status_code == 404
    assert sm.get("/password-policy/not-a-uuid").status_code == 404


@pytest.mark.parametrize("change, prop, code", [
    ({"name": None}, "name", "VALUE_INCORRECT_TYPE"),
    ({"max_versions": "5"}, "max_versions", "VALUE_INCORRECT_TYPE"),
    ({"max_versions": 0}, "max_versions", "VALUE_OUT_OF_BOUNDS"),
    ({"use_numbers": "yes"}, "use_numbers", "VALUE_INCORRECT_TYPE"),
    ({"rotation_interval": "monthly"}, "rotation_interval", "VALUE_INCORRECT_FORMAT"),
    ({"rotation_interval": "P1M"}, "rotation_interval", "VALUE_INCORRECT_FORMAT"),
    ({"retry_interval": 300}, "retry_interval", "VALUE_INCORRECT_TYPE"),
    ({"max_checkout_duration": "5 minutes"}, "max_checkout_duration", "VALUE_INCORRECT_FORMAT"),
    ({"password_min_length": 30, "password_max_length": 20}, "password_min_length", "VALUE_OUT_OF_BOUNDS"),
    ({"use_special_characters": False, "use_lower_case": False, "use_upper_case": False, "use_numbers": False},
     "password_min_length", "VALUE_OUT_OF_BOUNDS"),
    ({"max_concurrent_checkouts": -1}, "max_concurrent_checkouts", "VALUE_OUT_OF_BOUNDS"),
    ({"colour": "blue"}, "colour", "INVALID_REQUEST_DATA"),
])
def test_bad_input_is_400_naming_the_field(sm, change, prop, code):
    body = {k: v for k, v in {**policy_body(), **change}.items()}
    response = sm.post("/password-policy", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["property"] == prop and error["error_code"] == code
    assert error["details"] and error["details"][0]["property"] == prop


def test_missing_required_fields(sm):
    response = sm.post("/password-policy", json={})
    assert response.status_code == 400
    assert {d["property"] for d in response.get_json()["details"]} == {"name", "max_versions"}
    assert all(d["error_code"] == "REQUIRED_VALUE_MISSING" for d in response.get_json()["details"])


def test_list_pages_and_limits(sm):
    for _ in range(3):
        sm.policy()
    page = sm.get("/password-policies", query={"limit": 2, "sortdir": "desc"}).get_json()
    assert page["count"] >= 3 and len(page["items"]) == 2
    names = [p["name"] for p in page["items"]]
    assert names == sorted(names, reverse=True)
    past_end = sm.get("/password-policies", query={"offset": 100000}).get_json()
    assert past_end["items"] == [] and past_end["count"] == page["count"]
    too_many = sm.get("/password-policies", query={"limit": 101})
    assert too_many.status_code == 400 and too_many.get_json()["property"] == "limit"
    assert sm.get("/password-policies", query={"sortdir": "sideways"}).status_code == 400


def test_scopes(sm, tokens):
    policy_id = sm.policy()
    service = tokens.headers("service")
    user = tokens.headers("user")
    assert sm.get("/password-policies", headers=service).status_code == 200
    assert sm.get(f"/password-policy/{policy_id}", headers=service).status_code == 200
    assert sm.get(f"/password-policy/{policy_id}", headers=sm.manager).status_code == 200
    assert sm.post("/password-policy", headers=service, json=policy_body()).status_code == 403
    assert sm.put(f"/password-policy/{policy_id}", headers=service, json=policy_body()).status_code == 403
    assert sm.delete(f"/password-policy/{policy_id}", headers=user).status_code == 403
    assert sm.get("/password-policies", headers=user).status_code == 403
    denied = sm.get("/password-policies", headers={})
    assert denied.status_code == 401 and denied.get_json()["error_code"] == "UNAUTHORIZED"
    assert sm.post("/password-policy", headers=sm.manager, json=policy_body()).status_code == 201


def test_a_zero_checkout_duration_means_not_set(sm):
    # 0 is out of range for it, so a zero (as a Go client's zero value) takes the default, like "".
    for zero in ("PT0S", "0s", "0"):
        created = sm.post("/password-policy", json={"name": f"zero-{uuid.uuid4()}", "max_versions": 3,
                                                    "max_checkout_duration": zero})
        assert created.status_code == 201, created.get_json()
        policy = sm.get(f"/password-policy/{created.get_json()['id']}").get_json()
        assert policy["max_checkout_duration"] == "PT1H"
