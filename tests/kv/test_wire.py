"""Raw HTTP for what hvac does not send: HTTP PATCH with merge-patch, 415, LIST and ?list=true,
weakly typed values, subkeys, the CLI's mount preflight, the sys/ and auth/token/ paths,
oversized input and the refusals, against the Vault under gunicorn."""
from __future__ import annotations

import json

import pytest

from tests.support import unique

pytestmark = pytest.mark.slow

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture()
def svc(service_token):
    return service_token


def _write(http, token, path, data, **options):
    response = http("PUT", f"/v1/secret/data/{path}", token=token, json={"data": data, "options": options})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _errors(response, status):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json"  # exactly: hvac compares the string
    body = response.json()
    assert set(body) == {"errors"}, body
    return body["errors"]


def test_http_patch_is_an_rfc7386_merge(http, svc):
    path = unique("wire/patch")
    _write(http, svc, path, {"user": "app", "nested": {"a": 1, "b": 2}, "drop": "me"})
    patched = http("PATCH", f"/v1/secret/data/{path}", token=svc, headers=MERGE_PATCH,
                   data=json.dumps({"data": {"nested": {"b": None, "c": 3}, "drop": None, "new": [1]}}))
    assert patched.status_code == 200 and patched.json()["data"]["version"] == 2
    read = http("GET", f"/v1/secret/data/{path}", token=svc).json()["data"]["data"]
    assert read == {"user": "app", "nested": {"a": 1, "c": 3}, "new": [1]}

    with_params = {"Content-Type": "application/merge-patch+json; charset=utf-8"}
    stale = http("PATCH", f"/v1/secret/data/{path}", token=svc, headers=with_params,
                 data=json.dumps({"data": {"x": 1}, "options": {"cas": 1}}))
    assert _errors(stale, 400) == ["check-and-set parameter did not match the current version"]
    assert _errors(http("PATCH", f"/v1/secret/data/{unique('wire/none')}", token=svc, headers=MERGE_PATCH,
                        data='{"data": {"x": 1}}'), 404) == []


def test_patch_of_a_deleted_current_version_is_404_with_its_metadata(http, svc):
    path = unique("wire/patch-deleted")
    _write(http, svc, path, {"v": 1})
    assert http("DELETE", f"/v1/secret/data/{path}", token=svc).status_code == 204
    response = http("PATCH", f"/v1/secret/data/{path}", token=svc, headers=MERGE_PATCH, data='{"data": {"v": 2}}')
    assert response.status_code == 404 and "errors" not in response.json()
    assert response.json()["data"]["version"] == 1 and response.json()["data"]["deletion_time"] != ""


@pytest.mark.parametrize("content_type, named", [("application/json", "application/json"), ("text/plain", "text/plain"),
                                                 ("Application/JSON; charset=utf-8", "application/json"), ("", "")])
def test_patch_needs_merge_patch_json(http, svc, content_type, named):
    path = unique("wire/415")
    _write(http, svc, path, {"v": 1})
    response = http("PATCH", f"/v1/secret/data/{path}", token=svc, headers={"Content-Type": content_type},
                    data='{"data": {"v": 2}}')
    assert _errors(response, 415) == [f"PATCH requires Content-Type of application/merge-patch+json, provided {named}"]
    metadata = http("PATCH", f"/v1/secret/metadata/{path}", token=svc, headers={"Content-Type": content_type},
                    data='{"max_versions": 2}')
    assert metadata.status_code == 415
    assert http("GET", f"/v1/secret/data/{path}", token=svc).json()["data"]["metadata"]["version"] == 1


def test_patch_metadata_merges_custom_metadata(http, svc):
    path = unique("wire/meta-patch")
    assert http("POST", f"/v1/secret/metadata/{path}", token=svc,
                json={"custom_metadata": {"a": "1", "b": "2"}, "max_versions": "4"}).status_code == 204
    patched = http("PATCH", f"/v1/secret/metadata/{path}", token=svc, headers=MERGE_PATCH,
                   data=json.dumps({"custom_metadata": {"b": None, "c": "3"}}))
    assert patched.status_code == 204 and patched.content == b""
    metadata = http("GET", f"/v1/secret/metadata/{path}", token=svc).json()["data"]
    assert metadata["custom_metadata"] == {"a": "1", "c": "3"} and metadata["max_versions"] == 4
    # A path created through metadata alone is an empty secret.
    assert metadata["current_version"] == 0 and metadata["versions"] == {}
    assert _errors(http("GET", f"/v1/secret/data/{path}", token=svc), 404) == []
    assert _errors(http("PATCH", f"/v1/secret/metadata/{unique('wire/none')}", token=svc, headers=MERGE_PATCH,
                        data='{"max_versions": 1}'), 404) == []


def test_list_verb_get_list_true_and_trailing_slashes(http, svc):
    root = unique("wire-list")
    for name in ("one", "sub/two"):
        _write(http, svc, f"{root}/{name}", {"n": name})
    expected = ["one", "sub/"]
    for method, suffix in (("LIST", ""), ("LIST", "/"), ("GET", "?list=true"), ("GET", "/?list=1"), ("GET", "?list=T")):
        response = http(method, f"/v1/secret/metadata/{root}{suffix}", token=svc)
        assert response.status_code == 200 and response.json()["data"]["keys"] == expected, (method, suffix)
    assert f"{root}/" in http("LIST", "/v1/secret/metadata", token=svc).json()["data"]["keys"]
    assert f"{root}/" in http("LIST", "/v1/secret/metadata/", token=svc).json()["data"]["keys"]
    assert _errors(http("GET", f"/v1/secret/metadata/{root}?list=maybe", token=svc), 400) == []
    assert http("GET", f"/v1/secret/metadata/{root}/one?list=false", token=svc).json()["data"]["current_version"] == 1
    assert _errors(http("LIST", f"/v1/secret/metadata/{unique('wire-none')}", token=svc), 404) == []


def test_versions_and_cas_as_strings(http, svc):
    path = unique("wire/strings")
    for value in range(1, 5):
        _write(http, svc, path, {"v": value})
    assert http("POST", f"/v1/secret/delete/{path}", token=svc, json={"versions": ["1", "2"]}).status_code == 204
    assert http("PUT", f"/v1/secret/destroy/{path}", token=svc, json={"versions": "3,4"}).status_code == 204
    versions = http("GET", f"/v1/secret/metadata/{path}", token=svc).json()["data"]["versions"]
    assert versions["1"]["deletion_time"] and versions["2"]["deletion_time"]
    assert versions["3"]["destroyed"] and versions["4"]["destroyed"]
    assert http("POST", f"/v1/secret/undelete/{path}", token=svc, json={"versions": [1]}).status_code == 204
    assert http("GET", f"/v1/secret/data/{path}?version=1", token=svc).json()["data"]["data"] == {"v": 1}

    written = http("POST", f"/v1/secret/data/{path}", token=svc, json={"data": {"v": 5}, "options": {"cas": "4"}})
    assert written.status_code == 200 and written.json()["data"]["version"] == 5
    assert _errors(http("POST", f"/v1/secret/delete/{path}", token=svc, json={"versions": []}), 400) == [
        "no version number provided"]
    assert _errors(http("POST", f"/v1/secret/delete/{path}", token=svc, json={"versions": ["x"]}), 400)
    assert _errors(http("GET", f"/v1/secret/data/{path}?version=99999999999", token=svc), 400)
    # ?version=0 is the current version
    assert http("GET", f"/v1/secret/data/{path}?version=0", token=svc).json()["data"]["metadata"]["version"] == 5


def test_no_fallback_to_an_older_live_version(http, svc):
    path = unique("wire/no-fallback")
    _write(http, svc, path, {"v": 1})
    _write(http, svc, path, {"v": 2})
    http("DELETE", f"/v1/secret/data/{path}", token=svc)
    deleted = http("GET", f"/v1/secret/data/{path}", token=svc)
    assert deleted.status_code == 404 and deleted.json()["data"]["data"] is None
    assert deleted.json()["data"]["metadata"]["version"] == 2
    assert http("DELETE", f"/v1/secret/data/{path}", token=svc).status_code == 204  # already deleted: still 204
    assert _errors(http("GET", f"/v1/secret/data/{path}?version=7", token=svc), 404) == []


def test_subkeys(http, svc):
    path = unique("wire/subkeys")
    _write(http, svc, path, {"user": "u", "db": {"host": "h", "creds": {"pw": "p"}, "empty": {}}, "list": [1, {"a": 1}]})
    full = http("GET", f"/v1/secret/subkeys/{path}", token=svc).json()["data"]
    assert full["subkeys"] == {"user": None, "db": {"host": None, "creds": {"pw": None}, "empty": None}, "list": None}
    assert full["metadata"]["version"] == 1
    one = http("GET", f"/v1/secret/subkeys/{path}?depth=1", token=svc).json()["data"]["subkeys"]
    assert one == {"user": None, "db": None, "list": None}
    two = http("GET", f"/v1/secret/subkeys/{path}?depth=2&version=1", token=svc).json()["data"]["subkeys"]
    assert two == {"user": None, "db": {"host": None, "creds": None, "empty": None}, "list": None}
    assert _errors(http("GET", f"/v1/secret/subkeys/{unique('wire/none')}", token=svc), 404) == []
    assert http("GET", f"/v1/secret/subkeys/{path}", token=None).status_code == 403


def test_cli_preflight_and_mount_listings(http, svc, tokens):
    preflight = http("GET", "/v1/sys/internal/ui/mounts/secret/some/app", token=tokens("user"))
    assert preflight.status_code == 200
    body = preflight.json()
    assert body["mount_type"] == "system"
    assert body["data"]["path"] == "secret/" and body["data"]["type"] == "kv"
    assert body["data"]["options"] == {"version": "2"}  # a string, as Vault sends it
    assert http("GET", "/v1/sys/mounts-all/secret/x", token=svc).json()["data"]["path"] == "secret/"
    assert _errors(http("GET", "/v1/sys/internal/ui/mounts/kv/x", token=svc), 403) == [
        'preflight capability check returned 403, please ensure client\'s policies grant access to path "kv/"']
    assert _errors(http("GET", "/v1/sys/internal/ui/mounts/secret/x"), 403) == ["permission denied"]

    listing = http("GET", "/v1/sys/internal/ui/mounts").json()["data"]  # no token needed
    assert listing["secret"]["secret/"]["options"] == {"version": "2"}
    assert listing["auth"]["token/"]["type"] == "token"
    mounts = http("GET", "/v1/sys/mounts", token=svc).json()
    assert mounts["data"]["secret/"]["options"]["version"] == "2" and mounts["secret/"] == mounts["data"]["secret/"]
    assert http("GET", "/v1/sys/mounts").status_code == 403


def test_sys_and_token_paths(http, svc):
    seal = http("GET", "/v1/sys/seal-status").json()
    assert seal["sealed"] is False and seal["type"] == "keyring" and seal["storage_type"] == "postgresql"
    health = http("GET", "/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=599")
    assert health.status_code == 200 and health.json()["version"]
    assert http("HEAD", "/v1/sys/health?activecode=204").status_code == 204
    assert _errors(http("GET", "/v1/sys/health?activecode=abc"), 400) == []
    assert http("POST", "/v1/auth/token/lookup-self", token=svc).json()["data"]["policies"] == ["service"]
    assert _errors(http("POST", "/v1/auth/token/lookup", token=svc, json={"token": svc}), 403) == ["permission denied"]
    assert _errors(http("POST", "/v1/auth/token/renew-self", token=svc), 400) == ["lease is not renewable"]
    assert _errors(http("POST", "/v1/auth/token/revoke-self", token=svc), 400) == [
        "this server's tokens are JWTs and cannot be revoked; they expire at exp"]
    for out_of_scope in ("sys/auth", "sys/mounts/other", "auth/approle/login", "sys/leases/lookup", "kv/data/x"):
        assert _errors(http("POST", f"/v1/{out_of_scope}", token=svc, json={}), 404) == [
            f'no handler for route "{out_of_scope}". route entry not found.']


def test_bearer_token_and_which_header_wins(http, svc, tokens):
    path = unique("wire/bearer")
    _write(http, svc, path, {"v": 1})
    bearer = http("GET", f"/v1/secret/data/{path}", headers={"Authorization": f"Bearer {svc}"})
    assert bearer.status_code == 200
    both = http("GET", f"/v1/secret/data/{path}", headers={"X-Vault-Token": tokens("admin"), "Authorization": f"Bearer {svc}"})
    assert _errors(both, 403) == ["permission denied"]  # X-Vault-Token (admin: no data) wins


@pytest.mark.parametrize("route", ["secret/data/{p}", "secret/metadata/{p}", "secret/subkeys/{p}", "secret/config",
                                   "sys/health", "sys/internal/ui/mounts/secret/{p}", "auth/token/lookup-self"])
def test_help_is_400_on_every_path_and_never_the_operation(http, svc, route):
    """Vault answers `?help=1` with the path's help text; a server that ignored the parameter
    returned the secret itself (issue 18)."""
    path = unique("wire/help")
    _write(http, svc, path, {"password": "help-must-not-show-this"})
    url = "/v1/" + route.format(p=path)
    for method in ("GET", "LIST", "POST", "DELETE"):
        refused = http(method, url, token=svc, params={"help": "1"}, json={} if method == "POST" else None)
        assert _errors(refused, 400) == ["help is not supported"], (method, refused.text)
        assert "help-must-not-show-this" not in refused.text
        assert _errors(http(method, url, params={"help": "1"}), 403) == ["permission denied"]  # the token first
    assert http("GET", url, token=svc, params={"help": ""}).status_code != 400  # Vault: an empty value is no help
    assert http("GET", f"/v1/secret/data/{path}", token=svc).json()["data"]["data"] == {"password": "help-must-not-show-this"}


def test_empty_answers_warnings_and_unknown_fields(http, svc):
    path = unique("wire/warnings")
    plain = http("POST", f"/v1/secret/metadata/{path}", token=svc, json={"max_versions": 3})
    assert plain.status_code == 204 and plain.content == b""
    warned = http("POST", f"/v1/secret/metadata/{path}", token=svc, json={"max_versions": 3, "zeta": 1, "alpha": 2})
    assert warned.status_code == 200 and warned.json()["data"] is None
    assert warned.json()["warnings"] == ["Endpoint ignored these unrecognized parameters: [alpha zeta]"]
    written = http("POST", f"/v1/secret/data/{path}", token=svc, json={"data": {"v": 1}, "extra": True})
    assert written.json()["data"]["version"] == 1 and written.json()["warnings"]
    head = http("HEAD", f"/v1/secret/data/{path}", token=svc)
    assert head.status_code == 200 and head.content == b""


def test_mount_defaults_for_max_versions(http, svc, tokens, mount_defaults):
    path = unique("wire/max")
    assert http("POST", f"/v1/secret/metadata/{path}", token=svc, json={"max_versions": 0}).status_code == 204
    assert http("GET", f"/v1/secret/metadata/{path}", token=svc).json()["data"]["max_versions"] == 10
    assert http("POST", "/v1/secret/config", token=tokens("admin"), json={"max_versions": "4"}).status_code == 204
    http("POST", f"/v1/secret/metadata/{path}", token=svc, json={"max_versions": 0})
    assert http("GET", f"/v1/secret/metadata/{path}", token=svc).json()["data"]["max_versions"] == 4
    assert _errors(http("DELETE", "/v1/secret/config", token=svc), 405) == ["unsupported operation"]


def test_bad_input_changes_nothing(http, svc, tokens):
    path = unique("wire/bad")
    _write(http, svc, path, {"v": 1})
    url = f"/v1/secret/data/{path}"
    assert _errors(http("POST", url, token=svc, data="{not json"), 400) == ["error parsing JSON"]
    assert _errors(http("POST", url, token=svc, data='{"data": {"a": 1, "a": 2}}'), 400)[0] == "error parsing JSON"
    assert _errors(http("POST", url, token=svc, data='{"data": {"a": NaN}}'), 400)[0] == "error parsing JSON"
    assert _errors(http("POST", url, token=svc, data='{"data": {"a": 1e400}}'), 400)[0] == "error parsing JSON"
    assert _errors(http("POST", url, token=svc, data='{"data": {"a": "\\u0000"}}'), 400)[0] == "error parsing JSON"
    assert _errors(http("POST", url, token=svc, data='["data"]'), 400) == ["error parsing JSON"]
    # Whitespace to bytes.strip() but not to JSON (`make fuzz` found the config route taking it as no body)
    for not_json in ("\x0c", " \x0b ", "\x1c"):
        assert _errors(http("POST", "/v1/secret/config", token=tokens("admin"), data=not_json), 400) == ["error parsing JSON"]
    assert _errors(http("POST", url, token=svc, json={"options": {}}), 400) == ["no data provided"]
    assert _errors(http("POST", url, token=svc, json={"data": "text"}), 400)
    assert _errors(http("POST", url, token=svc, json={"data": {"k": "x" * 70000}}), 400)
    deep = {}
    node = deep
    for _ in range(40):
        node["d"] = {}
        node = node["d"]
    assert _errors(http("POST", url, token=svc, json={"data": deep}), 400)
    # The token comes first: a bad token with a bad body is a 403.
    assert _errors(http("POST", url, token="bad", data="{not json"), 403) == ["permission denied"]
    assert _errors(http("POST", url, token=tokens("admin"), data="{not json"), 403) == ["permission denied"]
    assert _errors(http("POST", "/v1/secret/data/bad!name", token=svc, json={"data": {}}), 400)[0].startswith(
        "invalid path: ")
    big = http("POST", url, token=svc, data=b'{"data": {"k": "' + b"x" * (1024 * 1024) + b'"}}')
    assert _errors(big, 413) == ["request body too large"]
    assert http("GET", url, token=svc).json()["data"]["metadata"]["version"] == 1


def test_refusals_and_unknown_paths(http, svc):
    assert _errors(http("GET", "/v1/secret/data/x", token=svc, headers={"X-Vault-Wrap-TTL": "60s"}), 400) == [
        "response wrapping is not supported"]
    assert _errors(http("GET", "/v1/secret/data/x", token=svc, headers={"X-Vault-Namespace": "team"}), 400) == [
        "namespaces are not supported"]
    assert _errors(http("GET", "/v1/secret/data/x", token=svc, headers={"X-Vault-Namespace": "root"}), 404) == []
    unknown = http("GET", "/v1/secret/nothing/here", token=svc)
    assert unknown.status_code == 404 and unknown.json()["data"] is None
    assert unknown.json()["warnings"][0].endswith("use 'vault kv get' for this operation.")
    root = http("PUT", "/v1/secret/data", token=svc, json={"data": {}})
    assert root.status_code == 404 and root.json()["warnings"] == [
        "Non-listing operations on the root of a K/V v2 mount are not supported."]
    assert _errors(http("PATCH", "/v1/secret/delete/x", token=svc, headers=MERGE_PATCH, data="{}"), 405) == [
        "unsupported operation"]
    assert _errors(http("BREW", "/v1/secret/data/x", token=svc), 405) == []
    # A 405 says what the path takes (RFC 9110's Allow).
    assert http("PATCH", "/v1/secret/delete/x", token=svc, headers=MERGE_PATCH, data="{}").headers["Allow"] == "POST, PUT"
    assert http("BREW", "/v1/secret/data/x", token=svc).headers["Allow"] == "DELETE, GET, HEAD, PATCH, POST, PUT"
    assert http("TRACE", "/v1/sys/health").headers["Allow"] == "GET, HEAD"
    assert http("TRACE", "/v1/secret/metadata/x").headers["Allow"] == "DELETE, GET, HEAD, PATCH, POST, PUT"  # LIST: GET ?list=true
    # A method Vault does not know is 405 on a mount root too (a known one is the 404 above), and
    # a path that only lists takes GET (?list=true).
    for path in ("/v1/secret/metadata", "/v1/sys/policies/acl", "/v1/identity/group/name"):
        answer = http("TRACE", path, token=svc)
        assert (answer.status_code, answer.headers["Allow"], answer.json()) == (405, "GET", {"errors": []}), path


def test_the_secrets_managers_reserved_part(http, svc, tokens):
    """Only `service` reaches hosts/... and targetdomains/...; to anyone else they do not exist."""
    path = f"hosts/{unique('host')}/root"
    _write(http, svc, path, {"password": "managed"})
    _write(http, svc, unique("wire-shared"), {"v": 1})  # so that the root lists something for everyone
    assert http("GET", f"/v1/secret/data/{path}", token=svc).json()["data"]["data"] == {"password": "managed"}
    assert "hosts/" in http("LIST", "/v1/secret/metadata", token=svc).json()["data"]["keys"]

    for scopes in ("admin", "hostsManage"):
        other = tokens(scopes)
        assert _errors(http("GET", f"/v1/secret/metadata/{path}", token=other), 404) == []
        assert _errors(http("LIST", "/v1/secret/metadata/hosts", token=other), 404) == []
        assert "hosts/" not in http("LIST", "/v1/secret/metadata", token=other).json()["data"]["keys"]
        for method, family, body in (("POST", "metadata", {"max_versions": 1}), ("DELETE", "metadata", None),
                                     ("DELETE", "data", None), ("POST", "delete", {"versions": [1]})):
            refused = http(method, f"/v1/secret/{family}/{path}", token=other, json=body)
            assert _errors(refused, 403) == ["reserved for the Secrets Manager"], (scopes, method, family)
        assert _errors(http("GET", f"/v1/secret/data/{path}", token=other), 403) == ["permission denied"]  # no data scope
    assert http("GET", f"/v1/secret/metadata/{path}", token=svc).json()["data"]["current_version"] == 1


def test_oversized_tokens_and_urls_through_gunicorn(http, tokens, svc):
    token = tokens("service", padding="x" * 9000)
    assert 8192 < len(token) < 16 * 1024  # over the contract's cap, under gunicorn's header limit
    assert _errors(http("GET", "/v1/auth/token/lookup-self", token=token), 403) == ["permission denied"]
    # gunicorn refuses a request line over 8190 bytes itself; its answer carries Vault's `errors` too.
    too_long = http("GET", f"/v1/secret/data/{'a' * 8200}", token=svc)
    assert too_long.status_code == 414 and too_long.json()["errors"] == ["URI too long"]
    assert too_long.headers["Content-Type"] == "application/json"


def test_delete_version_after_of_the_mount_and_the_secret(http, svc, tokens, mount_defaults):
    from datetime import datetime, timedelta

    def written(path):
        meta = http("POST", f"/v1/secret/data/{path}", token=svc, json={"data": {"v": 1}}).json()["data"]
        return meta, (datetime.fromisoformat(meta["deletion_time"]) - datetime.fromisoformat(meta["created_time"])
                      if meta["deletion_time"] else None)

    admin = tokens("admin")
    path = unique("wire/dva")
    http("POST", f"/v1/secret/metadata/{path}", token=svc, json={"delete_version_after": "1h"})
    assert http("POST", "/v1/secret/config", token=admin, json={"delete_version_after": "2h"}).status_code == 204
    meta, after = written(path)
    assert after == timedelta(hours=1)  # the shorter non-zero one of the mount's and the secret's
    assert written(unique("wire/dva-mount"))[1] == timedelta(hours=2)  # a secret without one: the mount's

    # Undelete starts the time again from now.
    http("DELETE", f"/v1/secret/data/{path}", token=svc)
    http("POST", f"/v1/secret/undelete/{path}", token=svc, json={"versions": [meta["version"]]})
    restored = http("GET", f"/v1/secret/data/{path}", token=svc).json()["data"]["metadata"]
    assert datetime.fromisoformat(restored["deletion_time"]) > datetime.fromisoformat(meta["deletion_time"])

    # A negative mount setting turns it off for every secret.
    assert http("POST", "/v1/secret/config", token=admin, json={"delete_version_after": "-1s"}).status_code == 204
    assert http("GET", "/v1/secret/config", token=admin).json()["data"]["delete_version_after"] == "-1s"
    assert written(path)[1] is None


def _draft4(schema):
    """An OpenAPI 3.0 schema as the JSON Schema (draft 4) Schemathesis validates with: nullable
    is a null type more."""
    if isinstance(schema, list):
        return [_draft4(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _draft4(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


# (route, field, value): numbers and durations on the edge of what the document states. A float
# with an integer value is what `make fuzz` sent (POST /v1/secret/config {"max_versions": <float>}:
# 200 and the mount changed, where the document says integer, as Vault's json.Number does).
NUMBERS = [
    *(("config", "max_versions", value) for value in (
        2.0, 0.0, 1e1, 7, "7", "", " 5", "5 ", "+5", "1_0", "\u0663", "0x1", "0123456789", "1234567890", True)),
    *(("config", "delete_version_after", value) for value in (
        3600.0, 3600, -5, "3600", "-5", "-1h", "--5", " 1h", "1h ", "\u0663h", "1.5h", "P1D", "-PT1M", "", "-", "0")),
    *(("metadata", "delete_version_after", value) for value in (
        60.0, 60, "60", "-60", "-1h", " 1h", "\u0663m", "1h30m", "PT5M", "")),
    *(("metadata", "max_versions", value) for value in (3.0, 3, "3", "03", " 3", "1_0")),
    *(("delete", "versions", value) for value in (
        "1,2", "1,,2", "1, 2", ",1", "1,", "01", "1", [1.0], [1], ["1"], ["01"], [" 1"], ["\u0661"], [0], ["0"])),
]


def test_numbers_and_durations_are_taken_as_the_document_states_them(http, svc, tokens, mount_defaults):
    import jsonschema_rs  # Schemathesis' validator

    document = http("GET", "/vault/api/v1/openapi.json").json()
    schemas = {name: document["components"]["schemas"][name] for name in ("KvConfig", "KvMetadata", "KvVersions")}
    admin = tokens("admin")
    path = unique("wire/numbers")
    _write(http, svc, path, {"v": 1})
    _write(http, svc, path, {"v": 2})
    routes = {"config": ("/v1/secret/config", admin, "KvConfig"),
              "metadata": (f"/v1/secret/metadata/{path}", svc, "KvMetadata"),
              "delete": (f"/v1/secret/delete/{path}", svc, "KvVersions")}
    cases = [(route, field, value, jsonschema_rs.Draft4Validator(_draft4(schemas[routes[route][2]]["properties"][field]))
              .is_valid(value)) for route, field, value in NUMBERS]
    wrong = []
    for route, field, value, documented in sorted(cases, key=lambda case: case[3]):  # refusals first: all is live
        url, token, _ = routes[route]
        before = http("GET", url.replace("/delete/", "/metadata/"), token=token).json()["data"]
        answer = http("POST", url, token=token, json={field: value})
        after = http("GET", url.replace("/delete/", "/metadata/"), token=token).json()["data"]
        if answer.status_code != (204 if documented else 400) or not documented and before != after:
            wrong.append((route, field, value, documented, answer.status_code, answer.text[:200]))
    assert not wrong, wrong
