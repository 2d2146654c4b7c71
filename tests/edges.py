"""Shared checks of the contract's "Everywhere" edges, for tests against live servers."""
from __future__ import annotations

import json

import requests

from tests import support

INT64_OVERFLOW = 2**63
INT32_OVERFLOW = 2**31


def expect(response: requests.Response, status: int, code: str | None = None, prop: str | None = None) -> dict:
    """The response is the contract's JSON envelope with this status (and code, property)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body["error_code"], str) and isinstance(body["error_message"], str), body
    assert isinstance(body["details"], list), body
    if code is not None:
        assert body["error_code"] == code, body
    if prop is not None:
        assert body.get("property") == prop, body
    return body


def raw_json(text: str) -> dict:
    """Keyword arguments to send `text` byte for byte as a JSON body (requests would re-encode)."""
    return {"data": text.encode("utf-8", "surrogatepass"), "headers": {"Content-Type": "application/json"}}


def with_headers(kwargs: dict, headers: dict) -> dict:
    return {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}


def chunked(body: bytes, piece: int = 64 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    def pieces():
        for start in range(0, len(body), piece):
            yield body[start:start + piece]
    return pieces()


def dumps(value) -> str:
    return json.dumps(value)


def served(app: str, config: dict, *, conf: str, health_path: str):
    """`app` under gunicorn with its deploy/gunicorn config (two workers), as production runs it."""
    env = {key: str(value) for key, value in config.items()}
    return support.gunicorn(app, env, workers=2, health_path=health_path, conf=conf)


def check_openapi(spec: dict, *, prefix: str) -> None:
    """The served document is valid OpenAPI 3.0 and states what the contract says everywhere."""
    from openapi_spec_validator import validate

    validate(spec)
    assert spec["paths"][f"{prefix}/status"]["get"]["security"] == []  # no token needed
    assert spec["security"] == [{"bearer": []}]  # every other operation needs one
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put") and "requestBody" in operation:
                # Required exactly when something in it is: a body of optional fields may be left out.
                body = operation["requestBody"]
                schema = body["content"]["application/json"]["schema"]
                if "$ref" in schema:
                    schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                expected = bool(schema.get("required") or schema.get("anyOf")) or schema.get("type", "object") != "object"
                assert body.get("required", False) is expected, (method, path)
    _no_text_holds_nul(spec)
    _opens_for_a_newcomer(spec)


def _opens_for_a_newcomer(spec: dict) -> None:
    """The docs page opens with how to get a token, and groups routes under names for users
    (not blueprint names such as `vault_audit`), the service's own first, the audit trail last."""
    introduction = spec["info"]["description"]
    assert "/auth/api/v1/oauth/token" in introduction and "make run" in introduction and "Authorize" in introduction
    tags = [tag["name"] for tag in spec["tags"]]
    assert tags[0] == "Service status" and tags[-1] == "Audit trail", tags
    assert not [tag for tag in tags if "_" in tag or tag.islower()], tags
    used = {tag for operations in spec["paths"].values() for operation in operations.values()
            if isinstance(operation, dict) for tag in operation.get("tags", [])}
    assert used == set(tags), (used, tags)


def _no_text_holds_nul(spec: dict) -> None:
    """Every string the document allows excludes NUL (strict_json refuses it everywhere): a
    pattern, a format or an enum on each string, and free-form JSON only through the JsonValue
    schema, whose strings exclude it too. Object keys stay free: OpenAPI 3.0 cannot constrain them."""
    import re

    def walk(node, where):
        if isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}/{index}")
        if not isinstance(node, dict):
            return
        if node.get("type") == "string":
            assert {"pattern", "format", "enum"} & node.keys(), where
            if "pattern" in node:
                assert not re.search(node["pattern"], "a\x00b"), where
        # ({"type": "object", "nullable": true} is apispec's null beside a nested schema's $ref.)
        if node.get("type") == "object" and not node.get("properties") and node != {"type": "object", "nullable": True}:
            assert isinstance(node.get("additionalProperties"), dict), where  # never "any JSON"
        for key, child in node.items():
            if key != "example":
                walk(child, f"{where}/{key}")

    walk(spec["paths"], "paths")
    walk(spec["components"]["schemas"], "components")
