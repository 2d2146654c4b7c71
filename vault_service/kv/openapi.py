"""The /v1/ routes (HashiCorp Vault's KV v2 API, docs/API-hashicorp-kv.md) in the Vault's OpenAPI
document, so that the docs page lists them and generated clients and Schemathesis see them.

They are not flask-smorest views (one catch-all rule dispatches them, vault_service.kv.views),
so their operations are written here, for the configured mount only. The request schemas state
what the endpoints accept, Vault's weak decoding included: a number may come as a numeric
string, a boolean as one of Go's ParseBool words, `versions` as one comma-separated string;
fields an endpoint does not know are ignored (answered with a warning), so bodies are open.
Answers are Vault's: an envelope, or `{"errors": [...]}` (`default`), never the suite's error
envelope.
"""
from __future__ import annotations

from werkzeug.routing import Rule

from common.durations import PATTERN as DURATION_PATTERN
from common.openapi import JSON_VALUE_REF, TEXT_PATTERN
from vault_service.acl import service as acl_service
from vault_service.kv.inputs import (COUNT_TEXT, FALSE_WORDS, MAX_INT, MERGE_PATCH, POSITIVE_TEXT, SIGNED_TEXT,
                                     TRUE_WORDS, VERSIONS_TEXT)
from vault_service.kv.views import PREFIX

TAG = "HashiCorp Vault KV v2 API (/v1)"
# The same token as every route, in Vault's header, as Vault's clients send it. (A bearer token
# is taken too, X-Vault-Token winning when both come; a missing or bad token is 403, as Vault
# answers it and hvac needs it, never 401: so the document states Vault's header alone.)
TOKEN_SCHEME = "vaultToken"
_TOKEN = [{TOKEN_SCHEME: []}]
_NONE = []

_OPEN_OBJECT = {"type": "object", "additionalProperties": JSON_VALUE_REF}
# A number as Vault decodes it: a JSON integer (never 2.0: Vault's json.Number refuses it), or its
# decimal text; the server checks the text against these same patterns (kv.inputs).
_COUNT_TEXT = {"type": "string", "pattern": COUNT_TEXT}
_POSITIVE_TEXT = {"type": "string", "pattern": POSITIVE_TEXT}


def _integer(minimum: int = 0) -> dict:
    text = _COUNT_TEXT if minimum == 0 else _POSITIVE_TEXT
    return {"anyOf": [{"type": "integer", "minimum": minimum, "maximum": MAX_INT}, text]}


# null: a field left unset (as if not sent); "" too, for durations (no time).
_NULL = {"type": "string", "enum": [None], "nullable": True}
_EMPTY = {"type": "string", "enum": [""]}
_EMPTY_VALUE = {"anyOf": [{"type": "array", "maxItems": 0, "items": JSON_VALUE_REF},
                          {"type": "object", "maxProperties": 0, "additionalProperties": JSON_VALUE_REF},
                          _EMPTY, {"type": "boolean", "enum": [False]}, {"type": "number", "enum": [0]}, _NULL]}


# ACL policies (vault_service.acl): names as Vault takes them (trimmed of Go's space, the class
# spelled out as `\s` means another set to each regex dialect, and lower-cased, then 1 to 128 of
# a-z 0-9 _ - .), a policy's text (not blank; its grammar is HCL's, which no pattern states), an
# external group's name (a role's id or name: printable, no '/').
_SPACE = f"[{acl_service.SPACE_CHARACTERS}]"
_POLICY_NAME = {"type": "string", "pattern": f"^{_SPACE}*{acl_service.POLICY_NAME_PATTERN}{_SPACE}*$"}
# (A part of only space is no name, as Vault's comma-separated lists drop it.)
_POLICY_NAMES_PART = f"{_SPACE}*(?:{acl_service.POLICY_NAME_PATTERN}{_SPACE}*)?"
_POLICY_NAMES_TEXT = f"^{_POLICY_NAMES_PART}(?:,{_POLICY_NAMES_PART})*$"
_POLICY_TEXT = {"type": "string", "minLength": 1, "maxLength": 64 * 1024, "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"}
# (Printable as Python says, which no pattern states: the pattern refuses controls and '/'.)
_GROUP_NAME = {"type": "string", "minLength": 1, "maxLength": acl_service.MAX_GROUP_NAME,
               "pattern": r"^[^/\x00-\x1f\x7f-\x9f]+$"}
# capabilities-self's paths: a list, or one comma-separated string, of at most 256.
_PATHS = {"anyOf": [{"type": "array", "minItems": 1, "maxItems": 256,
                     "items": {"type": "string", "minLength": 1, "pattern": TEXT_PATTERN}},
                    {"type": "string", "pattern": f"^[^\\x00]*[^{acl_service.SPACE_CHARACTERS},\\x00][^\\x00]*$"}]}


def _or_unset(schema: dict, *unset: dict) -> dict:
    return {"anyOf": [*(schema["anyOf"] if set(schema) == {"anyOf"} else [schema]), *unset]}


_BOOLEAN = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": [*TRUE_WORDS, *FALSE_WORDS]}]}
# Seconds (an integer or its text), or a Go or ISO 8601 duration; the mount's may be negative.
_DURATION = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_INT}, _COUNT_TEXT,
                       {"type": "string", "pattern": DURATION_PATTERN}]}
_SIGNED_DURATION = {"anyOf": [{"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT},
                              {"type": "string", "pattern": SIGNED_TEXT},
                              {"type": "string", "pattern": "^-?" + DURATION_PATTERN.removeprefix("^")}]}
# Keys 1 to 128 and values 1 to 512 printable characters (what OpenAPI 3.0 can say of keys is
# in the description: it has no propertyNames).
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"
_LABEL = {"type": "string", "minLength": 1, "maxLength": 512, "pattern": _PRINTABLE}
_CUSTOM_METADATA = {"type": "object", "maxProperties": 64, "additionalProperties": _LABEL,
                    "description": "at most 64 keys of 1 to 128 printable characters"}
# A merge-patch's: null removes a key.
_CUSTOM_METADATA_PATCH = {**_CUSTOM_METADATA, "additionalProperties": {**_LABEL, "nullable": True}}


def _metadata(custom_metadata: dict) -> dict:
    return {"type": "object", "additionalProperties": JSON_VALUE_REF, "properties": {
        "max_versions": _or_unset(_integer(), _NULL), "cas_required": _or_unset(_BOOLEAN, _NULL),
        "delete_version_after": _or_unset(_DURATION, _NULL, _EMPTY),
        "custom_metadata": _or_unset(custom_metadata, _NULL)}}


SCHEMAS = {
    "KvEnvelope": {**_OPEN_OBJECT, "description": "Vault's envelope: request_id, lease_id, renewable, lease_duration, "
                                                 "data, wrap_info, warnings, auth, mount_type"},
    "KvAnswer": {**_OPEN_OBJECT, "description": "Vault's errors, `{\"errors\": [...]}`, or for a deleted or destroyed "
                                               "version the envelope with that version's metadata"},
    "KvConfig": {"type": "object", "additionalProperties": JSON_VALUE_REF, "properties": {
        "max_versions": _or_unset(_integer(), _NULL), "cas_required": _or_unset(_BOOLEAN, _NULL),
        "delete_version_after": _or_unset(_SIGNED_DURATION, _NULL, _EMPTY)}},
    "KvWrite": {"type": "object", "required": ["data"], "additionalProperties": JSON_VALUE_REF, "properties": {
        "data": {"type": "object", "additionalProperties": JSON_VALUE_REF},
        "options": {"type": "object", "additionalProperties": JSON_VALUE_REF, "nullable": True,
                    "properties": {"cas": _or_unset(_integer(), _NULL)}}}},
    "KvMetadata": _metadata(_CUSTOM_METADATA),
    "KvMetadataPatch": _metadata(_CUSTOM_METADATA_PATCH),
    "KvVersions": {"type": "object", "required": ["versions"], "additionalProperties": JSON_VALUE_REF, "properties": {
        "versions": {"anyOf": [{"type": "array", "minItems": 1, "items": _integer(1)},
                               {"type": "string", "pattern": VERSIONS_TEXT}]}}},
    "KvToken": {"type": "object", "additionalProperties": JSON_VALUE_REF, "properties": {
        "token": {"type": "string", "pattern": TEXT_PATTERN}}},
    "KvPolicy": {"type": "object", "required": ["policy"], "additionalProperties": JSON_VALUE_REF, "properties": {
        "policy": _POLICY_TEXT}},
    # The older sys/policy takes the text as `policy` or, when that is null or "", as `rules`
    # (which of the two holds it is a rule between fields: the description says it).
    "KvLegacyPolicy": {"type": "object", "additionalProperties": JSON_VALUE_REF,
                       "anyOf": [{"required": ["policy"]}, {"required": ["rules"]}],
                       "description": "the policy's text as `policy`, or (when that is null or \"\") as `rules`",
                       "properties": {"policy": {"anyOf": [_POLICY_TEXT, _NULL, _EMPTY]}, "rules": JSON_VALUE_REF}},
    "KvGroup": {"type": "object", "additionalProperties": JSON_VALUE_REF, "properties": {
        "policies": {"anyOf": [{"type": "array", "items": _POLICY_NAME},
                               {"type": "string", "pattern": _POLICY_NAMES_TEXT}, _NULL],
                     "description": f"policy names, at most {acl_service.MAX_GROUP_POLICIES} different ones "
                                    "(a list, or one comma-separated string)"},
        "type": {"anyOf": [{"type": "string", "enum": [*acl_service.GROUP_TYPES]}, _NULL]},
        "metadata": {"anyOf": [{"type": "object", "maxProperties": 64, "additionalProperties": {
            "type": "string", "maxLength": 512, "pattern": TEXT_PATTERN}}, _NULL],
                     "description": "at most 64 keys of at most 128 characters"},
        # Internal groups' members: refused unless empty (an external group's members are the
        # tokens whose roles name it); any empty value is taken as none.
        "member_entity_ids": _EMPTY_VALUE, "member_group_ids": _EMPTY_VALUE}},
    # `paths`, or when that is null, `path`.
    "KvCapabilitiesQuery": {"type": "object", "additionalProperties": JSON_VALUE_REF, "anyOf": [
        {"required": ["paths"], "properties": {"paths": _PATHS}},
        {"required": ["path"], "properties": {"paths": _NULL, "path": _PATHS}}]},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict:
    return {"application/json": {"schema": _ref(name)}}


def _answers(status: int = 200, *, description: str = "done") -> dict:
    ok = {"description": description}
    if status != 204:
        ok["content"] = _json("KvEnvelope")
    return {str(status): ok, "default": {"description": "an error, in Vault's shape", "content": _json("KvAnswer")}}


def _operation(summary: str, *, security=_TOKEN, status: int = 200, body: str | None = None,
               content_type: str = "application/json", query: tuple[dict, ...] = ()) -> dict:
    operation = {"tags": [TAG], "summary": summary, "security": security, "responses": _answers(status)}
    if body:
        # Required when something in it is (an empty body is {} to these endpoints), and for a
        # merge-patch, whose media type must come (a PATCH without it is 415).
        schema = SCHEMAS[body]
        operation["requestBody"] = {"required": bool(schema.get("required") or schema.get("anyOf"))
                                    or content_type == MERGE_PATCH,
                                    "content": {content_type: {"schema": _ref(body)}}}
    if query:
        operation["parameters"] = list(query)
    return operation


def _write(summary: str, body: str, status: int = 204) -> dict:
    """POST and PUT are one write in Vault."""
    return {method: _operation(summary, status=status, body=body) for method in ("post", "put")}


_VERSION = {"name": "version", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0,
                                                                              "maximum": MAX_INT},
            "description": "a version (0 or none: the current one)"}
_DEPTH = {"name": "depth", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0,
                                                                          "maximum": MAX_INT},
          "description": "levels of the data to show (0: all)"}
_LIST = {"name": "list", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "true: the keys under this path (Vault's LIST)"}
# A path that only lists: GET with list=true is Vault's LIST (a GET without it is 405).
_LIST_ONLY = {"name": "list", "in": "query", "required": True, "schema": {"type": "boolean", "enum": [True]},
              "description": "true: Vault's LIST, the only operation of this path"}


def _listing(summary: str) -> dict:
    return {"get": _operation(summary, query=(_LIST_ONLY,))}


def _refused(summary: str) -> dict:
    """An operation served so that clients get Vault's answer, which is always a refusal."""
    operation = _operation(summary)
    operation["responses"] = {"400": {"description": "always", "content": _json("KvAnswer")},
                              "default": operation["responses"]["default"]}
    return {method: operation for method in ("post", "put")}


def paths(mount: str) -> dict:
    """path -> operations, for the mount `mount`."""
    m = f"{PREFIX}/{mount}"
    return {
        f"{m}/config": {
            "get": _operation("Read the mount's settings (max_versions, cas_required, delete_version_after)"),
            **_write("Change the mount's settings", "KvConfig"),
        },
        f"{m}/data/{{path}}": {
            "get": _operation("Read a version of a secret's data", query=(_VERSION,)),
            **_write("Write a new version (cas: check-and-set)", "KvWrite", status=200),
            "patch": _operation("Merge a patch (RFC 7386) into a new version", body="KvWrite", content_type=MERGE_PATCH),
            "delete": _operation("Soft-delete the current version", status=204),
        },
        f"{m}/metadata/{{path}}": {
            # (The root's keys: GET .../metadata?list=true, the same listing with an empty path. Not
            # a path of its own here: its other methods are 404 by the contract, where a path of
            # the document would have to answer 405.)
            "get": _operation("Read a secret's settings and versions (list=true: the keys under the path, as LIST)",
                              query=(_LIST,)),
            **_write("Change a secret's settings (creates it if new)", "KvMetadata"),
            "patch": _operation("Merge settings into a secret's", status=204, body="KvMetadataPatch",
                                content_type=MERGE_PATCH),
            "delete": _operation("Delete a secret and every version", status=204),
        },
        **{f"{m}/{action}/{{path}}": _write(summary, "KvVersions") for action, summary in (
            ("delete", "Soft-delete versions"), ("undelete", "Restore soft-deleted versions"),
            ("destroy", "Destroy versions for good"))},
        f"{m}/subkeys/{{path}}": {"get": _operation("A version's keys, every value null", query=(_VERSION, _DEPTH))},
        f"{PREFIX}/sys/health": {"get": _operation("Health (no token)", security=_NONE)},
        f"{PREFIX}/sys/seal-status": {"get": _operation("Seal status (no token): `vault status`", security=_NONE)},
        f"{PREFIX}/sys/internal/ui/mounts": {"get": _operation("The mounts (no token)", security=_NONE)},
        f"{PREFIX}/sys/internal/ui/mounts/{{path}}": {
            "get": _operation("The mount of a path: the KV version preflight of the vault CLI")},
        f"{PREFIX}/sys/mounts-all/{{path}}": {"get": _operation("The same preflight, as other CLI versions ask it")},
        f"{PREFIX}/sys/mounts": {"get": _operation("The mounts")},
        f"{PREFIX}/auth/token/lookup-self": {
            "get": _operation("The calling token's details"), "post": _operation("The calling token's details"),
            "put": _operation("The calling token's details")},
        f"{PREFIX}/auth/token/lookup": {method: _operation("A token's details (only the caller's own)", body="KvToken")
                                        for method in ("post", "put")},
        # Served because clients call them; the suite's tokens are JWTs, neither renewable nor revocable.
        f"{PREFIX}/auth/token/renew-self": _refused("Renew the calling token: refused, it is not renewable "
                                                    "(a JWT lives until its exp)"),
        f"{PREFIX}/auth/token/revoke-self": _refused("Revoke the calling token: refused, a JWT cannot be revoked "
                                                     "(it expires at exp)"),
        # ACL policies and the external groups that bind them to token roles (vault_service.acl).
        f"{PREFIX}/sys/policies/acl": _listing("The ACL policies' names (root included)"),
        f"{PREFIX}/sys/policies/acl/{{policy}}": {
            "get": _operation("Read an ACL policy"),
            **_write("Create or replace an ACL policy (HCL or JSON text)", "KvPolicy"),
            "delete": _operation("Delete an ACL policy (not root or default)", status=204),
        },
        f"{PREFIX}/sys/policy": {"get": _operation("The policies' names (the older API)")},
        f"{PREFIX}/sys/policy/{{policy}}": {
            "get": _operation("Read a policy (the older API: its text as `rules`)"),
            **_write("Create or replace a policy (the older API: `policy` or `rules`)", "KvLegacyPolicy"),
            "delete": _operation("Delete a policy (the older API)", status=204),
        },
        f"{PREFIX}/identity/group/name": _listing("The external groups' names"),
        f"{PREFIX}/identity/group/name/{{group}}": {
            "get": _operation("Read an external group"),
            # 200 with the new group's id and name when it was created, 204 when it was changed.
            **{method: {**operation, "responses": {"204": {"description": "changed"}, **operation["responses"]}}
               for method, operation in _write("Create or change an external group: its policies reach the tokens "
                                               "with a role whose id or name is the group's name", "KvGroup",
                                               status=200).items()},
            "delete": _operation("Delete an external group", status=204),
        },
        f"{PREFIX}/sys/capabilities-self": _write("The calling token's capabilities on paths", "KvCapabilitiesQuery",
                                                  status=200),
    }


# A path's parameters: the werkzeug converter that takes it, and its schema (`path`, a secret's
# name, is the app's name schema, given to document()).
_PARAMETERS = {
    "policy": ("<policy>", _POLICY_NAME, "a policy's name"),
    "group": ("<group>", _GROUP_NAME, "an external group's name: a role's id or name"),
}


def document(api, mount: str, name_schema: dict) -> None:
    """Add the /v1/ operations of `mount` (none when it is "", /v1 being off) to `api`'s document."""
    if not mount:
        return
    spec = api.spec
    spec.components.security_scheme(TOKEN_SCHEME, {"type": "apiKey", "in": "header", "name": "X-Vault-Token"})
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    converters = {"path": ("<path:path>", name_schema,
                           "a shared secret's name (for the preflight: the mount, then any path)"), **_PARAMETERS}
    for path, operations in paths(mount).items():
        # flask-smorest's apispec plugin documents a path from a werkzeug rule: one like the
        # catch-all's, bound to the app's converters but never added to its routing map.
        template, parameters = path, []
        for name, (converter, schema, description) in converters.items():
            if f"{{{name}}}" in path:
                template = template.replace(f"{{{name}}}", converter)
                parameters.append({"name": name, "in": "path", "required": True, "schema": dict(schema),
                                   "description": description})
        rule = Rule(template, defaults={})
        rule.bind(api._app.url_map)
        spec.path(rule=rule, operations=operations, parameters=parameters)
    api.add_tag(TAG)
