"""The contract's "Everywhere" edges on the Secrets Manager, through the real gunicorn stack
(deploy/gunicorn/secrets_manager.conf.py): integers out of range, text PostgreSQL cannot store,
lax JSON, authentication first, and the PrivX Go SDK's zero-valued models."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests import support
from tests.edges import INT64_OVERFLOW, expect, raw_json, served, with_headers
from tests.secrets_manager.helpers import AUTHORIZER, SM, host_body, policy_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(sm_config):
    with served("secrets_manager_service.wsgi:app", sm_config, conf="secrets_manager.conf.py",
                health_path=f"{SM}/status") as url:
        yield url


@pytest.fixture(scope="module")
def admin(tokens):
    return tokens.headers("admin")


@pytest.fixture(scope="module")
def policy_id(base, admin):
    response = requests.post(f"{base}{SM}/password-policy", headers=admin, json=policy_body())
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize("method, route", [
    ("get", f"{SM}/password-policies"), ("get", f"{SM}/script-templates"), ("get", f"{SM}/secrets"),
    ("get", f"{SM}/secrets/checkouts"), ("post", f"{SM}/secrets/search"), ("get", f"{AUTHORIZER}/secrets"),
    ("get", f"{SM}/audit-events"),
])
def test_offset_beyond_int64_in_the_query_is_400(base, admin, method, route):
    response = getattr(requests, method)(base + route, params={"offset": INT64_OVERFLOW}, headers=admin)
    expect(response, 400, "VALUE_OUT_OF_BOUNDS", "offset")


def test_offset_beyond_int64_in_the_search_body_is_400(base, admin):
    response = requests.post(f"{base}{SM}/secrets/search", headers=admin, json={"offset": INT64_OVERFLOW})
    expect(response, 400, "VALUE_OUT_OF_BOUNDS", "offset")


def test_integers_beyond_int32_in_a_body_are_400(base, admin):
    response = requests.post(f"{base}{SM}/password-policy", headers=admin, json=policy_body(number_of_retries=2**40))
    expect(response, 400, "VALUE_OUT_OF_BOUNDS", "number_of_retries")


@pytest.mark.parametrize("route, body, prop", [
    ("/password-policy", '{"name": "p\\u0000", "max_versions": 3}', "name"),
    ("/script-template", '{"name": "t", "operating_system": "LINUX", "script": "echo \\u0000"}', "script"),
    ("/script-template/compile", '{"operating_system": "LINUX", "script": "\\ud800"}', "script"),
    ("/host-secret/HOST", '{"metadata": {"address": "h\\u0000", "protocol": "NONE", "password_policy_id": "POLICY"}}',
     "metadata.address"),
    ("/host-secret/HOST", '{"metadata": {"address": "h", "protocol": "NONE", "password_policy_id": "POLICY", '
                          '"access_roles": [{"id": "\\u0000"}]}}', "metadata.access_roles.0.id"),
    ("/secrets/search", '{"keywords": "\\u0000"}', "keywords"),
    ("/secrets/checkouts", '{"path": "hosts/x/\\u0000"}', "path"),
    ("/targetdomains/resolve", '["a\\u0000b"]', "0"),  # a body that is no object: as strict
])
def test_unstorable_text_in_a_body_is_400(base, admin, policy_id, route, body, prop):
    route = route.replace("HOST", str(uuid.uuid4()))
    response = requests.post(f"{base}{SM}{route}", **with_headers(raw_json(body.replace("POLICY", policy_id)), admin))
    expect(response, 400, prop=prop)


@pytest.mark.parametrize("route, prop", [("/host-secret/a%00b", "host_id"), ("/rotate/x/a%00", "account")])
def test_nul_in_the_url_is_400(base, admin, route, prop):
    expect(requests.post(base + SM + route, headers=admin, json={}), 400, prop=prop)


def test_a_nul_in_a_query_parameters_name_is_not_echoed(base, admin):
    """`make fuzz` sent GET /audit-events with a query parameter whose name and value held a NUL
    and got 400 with the name in error_message and property, NUL and all (the envelope's schema
    says no NUL): the value was checked before the name and its message named it."""
    response = requests.get(base + SM + "/audit-events?%001=%00x", headers=admin)
    expect(response, 400, prop="query")
    assert "\x00" not in response.text and "\\u0000" not in response.text, response.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer x.y.z"}])
@pytest.mark.parametrize("route, body", [("/password-policy", b"{}"), ("/script-template", b"nope"),
                                         ("/host-secret/h", b'{"metadata": 1}'), ("/secrets/checkouts", b"[]")])
def test_no_or_bad_token_is_401_whatever_the_body(base, headers, route, body):
    response = requests.post(base + SM + route, data=body, headers={**headers, "Content-Type": "text/plain"})
    expect(response, 401, "UNAUTHORIZED")


def test_duplicate_keys_are_400(base, admin):
    body = '{"name": "a", "name": "b", "max_versions": 3}'
    expect(requests.post(f"{base}{SM}/password-policy", **with_headers(raw_json(body), admin)), 400,
           "VALUE_DUPLICATE", "name")
    resolve = '[{"a": 1, "a": 2}]'
    expect(requests.post(f"{base}{SM}/targetdomains/resolve", **with_headers(raw_json(resolve), admin)), 400,
           "VALUE_DUPLICATE", "a")


# --- the PrivX Go SDK's models, as encoding/json writes them --------------------------------

def go_password_policy(**fields) -> dict:
    """privx-sdk-go api/secretsmanager PasswordPolicy with Go's zero values."""
    return {"id": "", "name": "", "rotation_interval": "", "password_min_length": 0, "password_max_length": 0,
            "use_special_characters": False, "use_lower_case": False, "use_upper_case": False, "use_numbers": False,
            "max_versions": 0, "number_of_retries": 0, "retry_interval": "", "max_concurrent_checkouts": 0,
            "max_checkout_duration": "", "rotate_on_release": False, "verify_after_rotation": False,
            "created": None, "created_by": "", "updated": None, "updated_by": "", **fields}


def go_script_template(**fields) -> dict:
    return {"id": "", "name": "", "operating_system": "", "script": "", "created": None, "created_by": "",
            "updated": None, "updated_by": "", **fields}


def go_host_secret(policy_id: str, accounts: list[dict], **fields) -> dict:
    """HostSecretMetadata: HostSecret and AccountSecret with Go's zero values."""
    metadata = {"host_id": "", "access_group_id": "", "address": "", "port": 0, "operating_system": "",
                "protocol": "", "certificate_validation_options": "", "winrm_host_certificate_trust_anchors": "",
                "use_main_account": False, "main_account": "", "policy_id": policy_id, "script_template_id": "",
                "created_by": "", "updated_by": "", **fields}
    return {"metadata": metadata, "accounts": [{"account": "", "host_id": "", "last_error_details": "",
                                                "created_by": "", **account} for account in accounts]}


def test_a_go_zero_valued_password_policy_gets_the_defaults(base, admin):
    body = go_password_policy(name=support.unique("policy"), max_versions=3, use_lower_case=True)
    response = requests.post(f"{base}{SM}/password-policy", headers=admin, json=body)
    assert response.status_code == 201, response.text
    policy = requests.get(f"{base}{SM}/password-policy/{response.json()['id']}", headers=admin).json()
    assert (policy["rotation_interval"], policy["retry_interval"], policy["max_checkout_duration"]) == ("P30D", "PT5M", "PT1H")
    assert (policy["password_min_length"], policy["password_max_length"]) == (16, 32)
    assert (policy["number_of_retries"], policy["max_concurrent_checkouts"], policy["use_numbers"]) == (0, 0, False)
    # A GET-modify-PUT (the Go SDK's update) works, and "" keeps meaning "the default".
    policy.update(name=support.unique("policy"), rotation_interval="")
    assert requests.put(f"{base}{SM}/password-policy/{policy['id']}", headers=admin, json=policy).status_code == 200
    assert requests.get(f"{base}{SM}/password-policy/{policy['id']}", headers=admin).json()["rotation_interval"] == "P30D"


def test_a_go_zero_valued_script_template_is_accepted(base, admin):
    body = go_script_template(name=support.unique("tpl"), operating_system="LINUX", script="echo {{ .Username }}")
    response = requests.post(f"{base}{SM}/script-template", headers=admin, json=body)
    assert response.status_code == 201, response.text
    compiled = requests.post(f"{base}{SM}/script-template/compile", headers=admin,
                             json={"operating_system": "LINUX", "script": "echo {{ .Username }}"})
    assert compiled.status_code == 200, compiled.text


def test_a_go_zero_valued_host_secret_registers(base, admin, policy_id):
    host_id = str(uuid.uuid4())
    body = go_host_secret(policy_id, [{"account": "root"}], address="10.0.0.7", protocol="POSTGRESQL")
    response = requests.post(f"{base}{SM}/host-secret/{host_id}", headers=admin, json=body)
    assert response.status_code == 200, response.text
    metadata = response.json()["metadata"]
    # port 0 (a port no host has) means "the protocol's default", as if it were left out.
    assert (metadata["port"], metadata["main_account"], metadata["script_template_id"]) == (5432, None, None)
    assert [a["account"] for a in response.json()["accounts"]] == ["root"]

    # What a GET returned, posted back with the path's host id everywhere, is accepted too.
    read = requests.get(f"{base}{SM}/host-secret/{host_id}", headers=admin).json()
    for account in read["accounts"]:
        account["host_id"] = host_id
    assert requests.post(f"{base}{SM}/host-secret/{host_id}", headers=admin, json=read).status_code == 200

    other = go_host_secret(policy_id, [{"account": "root", "host_id": str(uuid.uuid4())}], address="h", protocol="NONE")
    expect(requests.post(f"{base}{SM}/host-secret/{host_id}", headers=admin, json=other), 400,
           "INVALID_REQUEST_DATA", "accounts.0.host_id")
    unknown = host_body(policy_id)
    unknown["metadata"]["colour"] = "red"
    expect(requests.post(f"{base}{SM}/host-secret/{host_id}", headers=admin, json=unknown), 400,
           "INVALID_REQUEST_DATA", "metadata.colour")


def test_405_names_the_allowed_methods(base, admin):
    response = requests.delete(f"{base}{SM}/password-policies", headers=admin)
    expect(response, 405)
    assert "GET" in response.headers["Allow"]


def test_a_huge_token_is_401_in_the_envelope(base):
    response = requests.get(f"{base}{SM}/secrets", headers={"Authorization": "Bearer " + "A" * (1024 * 1024)})
    expect(response, 401, "UNAUTHORIZED")
