"""Script templates: CRUD, compile with placeholder values, template errors with their position."""
from __future__ import annotations

import uuid

import pytest

from tests import support

SCRIPT = "echo {{ .Username }}:{{ .Password }} | chpasswd"


def template_body(**overrides) -> dict:
    return {"name": support.unique("template"), "operating_system": "LINUX", "script": SCRIPT, **overrides}


def test_create_read_replace_delete(sm):
    created = sm.post("/script-template", json=template_body(operating_system="linux"))
    assert created.status_code == 201
    template_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/script-template/{template_id}")
    template = sm.get(f"/script-template/{template_id}").get_json()
    assert template["operating_system"] == "LINUX" and template["script"] == SCRIPT

    changed = {**template, "operating_system": "WINDOWS", "script": "net user {{.Username}} {{.Password}}"}
    assert sm.put(f"/script-template/{template_id}", json=changed).status_code == 200
    assert sm.get(f"/script-template/{template_id}").get_json()["operating_system"] == "WINDOWS"

    listed = sm.get("/script-templates", query={"limit": 100}).get_json()
    assert listed["count"] >= 1
    assert sm.delete(f"/script-template/{template_id}").status_code == 200
    assert sm.get(f"/script-template/{template_id}").status_code == 404


def test_compile_renders_placeholders_quoted(sm):
    response = sm.post("/script-template/compile", json={"operating_system": "LINUX", "script": SCRIPT})
    assert response.status_code == 200
    assert response.get_json() == {"script": "echo example-user:example-password | chpasswd"}
    windows = sm.post("/script-template/compile", json={"operating_system": "windows", "script": "x {{.Password}}"})
    assert windows.get_json() == {"script": "x 'example-password'"}


@pytest.mark.parametrize("path", ["/script-template/compile", "/script-template"])
def test_template_error_names_its_position(sm, path):
    script = "echo ok; {{ .Secret }}"
    response = sm.post(path, json=template_body(script=script) if path.endswith("template") else
                       {"operating_system": "LINUX", "script": script})
    assert response.status_code == 400
    error = response.get_json()
    assert error["property"] == "script" and error["error_code"] == "VALUE_INCORRECT_FORMAT"
    assert "position 9" in error["error_message"]


def test_in_use_template_cannot_be_deleted(sm):
    template_id = sm.post("/script-template", json=template_body()).get_json()["id"]
    host_id = sm.host(protocol="SSH", script_template_id=template_id)
    assert sm.delete(f"/script-template/{template_id}").status_code == 409
    sm.delete(f"/host-secret/{host_id}")
    assert sm.delete(f"/script-template/{template_id}").status_code == 200


def test_bad_input_and_scopes(sm, tokens):
    assert sm.post("/script-template", json=template_body(operating_system="BSD")).get_json()["property"] == "operating_system"
    assert sm.post("/script-template", json=template_body(script=5)).status_code == 400
    name = support.unique("template")
    assert sm.post("/script-template", json=template_body(name=name)).status_code == 201
    assert sm.post("/script-template", json=template_body(name=name)).status_code == 409
    assert sm.get(f"/script-template/{uuid.uuid4()}").status_code == 404
    for scope in ("service", "user"):
        assert sm.get("/script-templates", headers=tokens.headers(scope)).status_code == 403
        assert sm.post("/script-template/compile", headers=tokens.headers(scope),
                       json={"operating_system": "LINUX", "script": "x"}).status_code == 403
    assert sm.get("/script-templates", headers={}).status_code == 401
    assert sm.get("/script-templates", headers=sm.manager).status_code == 200
