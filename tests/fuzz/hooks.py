"""What Schemathesis cannot read off the OpenAPI documents, given to its generator as hooks.

An OpenAPI 3.0 schema states each field on its own; the contract has a few rules it cannot
state, and a request that breaks one is rightly 400 however schema-valid it is:

- one field against another (`password_min_length <= password_max_length`, a host's
  `main_account` among its accounts, an AD endpoint over LDAPS or STARTTLS, ...);
- a body field against the path (`metadata.host_id` and `accounts[].host_id` equal the URL's);
- a password spec that can be met (a class on, length for each included class, included or
  excluded punctuation, distinct characters) and a pending period of 1h to 30 days (a duration's
  range has no JSON Schema keyword);
- a reference to an object that must exist (a host's password policy and script template, a
  domain's auto-onboarding policy): 400 by the contract, so the hooks use ids of objects
  created before the run (FUZZ_FIXTURES), as Schemathesis' own guide does for existing ids;
- a grammar that nests (LDAP filters, RFC 4515) and the contents of a PEM certificate;
- no NUL in a free-form object's keys (OpenAPI 3.0 has no `propertyNames`), the length of the
  versioned API's `custom_metadata` keys, and the length and printable characters of HashiCorp's
  (the values: Python's printable).

The hook maps a *positive* case (one Schemathesis says the server must accept) onto the
nearest request the contract accepts, keeping every field schema-valid; a negative case is
left exactly as drawn. No check is turned off or loosened: every response is still judged
by every check, and any failure fails the run.
"""
from __future__ import annotations

import json
import os
import re

import schemathesis

from common.durations import parse_seconds
from secrets_manager_service.target_domains.ldap_syntax import DN_PATTERN
from vault_service.acl.service import SPACE
from vault_service.versioned import schemas as versioned_schemas

FIXTURES: dict = json.loads(os.environ.get("FUZZ_FIXTURES") or "{}")
CLASS_FLAGS = ("use_lower_case", "use_upper_case", "use_numbers", "use_special_characters")
# Defaults of a policy's lengths when a body leaves them out (API.md, PasswordPolicy).
DEFAULT_MIN, DEFAULT_MAX = 16, 32
# Filters (RFC 4515) used where a positive case carries one: the grammar nests, so no pattern states it.
FILTERS = ("(objectClass=person)", "(&(objectClass=user)(!(cn=admin*)))", "(|(uid=a\\2a)(mail=*@example.com))")
_DN = re.compile(DN_PATTERN)
CLOSED_PORT = 9  # discard: nothing listens there on the test machines


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(context, case, kwargs):
    """Just before the request is sent, after the stateful phase has merged values from earlier
    responses into it (an id a link carried may name an account deleted since); Schemathesis
    revalidates the case after this hook, so an edit cannot pass an invalid case off as valid."""
    path = case.operation.path
    if path.startswith("/v1/"):
        # Every case, not only positive ones: a negative case whose drawn value the schema
        # accepts after all is judged as positive (Schemathesis revalidates what is sent).
        _acl_names(case)
    if not _is_positive(case):
        return
    if path.endswith("/managedaccounts") and case.method.upper() == "POST" and not isinstance(case.body, dict):
        case.body = {}  # username or source_id: one of the two (an object-level rule)
    if isinstance(case.body, (dict, list)):
        case.body = _without_nul_keys(case.body)
    body = case.body
    if not isinstance(body, dict):
        return
    directory_accounts = _DIRECTORY_ACCOUNTS.get(path.split("/targetdomains/{domain_id}", 1)[-1])
    if "{domain_id}" in path and FIXTURES.get("domain_id"):
        if directory_accounts:
            case.path_parameters["domain_id"] = FIXTURES["domain_id"]
        handle = body.get("target_domain")
        if isinstance(handle, dict) and isinstance(handle.get("id"), str) and handle["id"]:
            handle["id"] = case.path_parameters["domain_id"]  # a body's target_domain is the URL's
    if path.startswith("/v1/") and isinstance(body.get("custom_metadata"), dict):
        body["custom_metadata"] = _printable_labels(body["custom_metadata"])
    elif path.endswith("/secret/metadata/{path}") and isinstance(body.get("custom_metadata"), dict):
        # The versioned API's: keys of 1 to 128 characters (its description; no propertyNames in 3.0).
        body["custom_metadata"] = {(key or "k")[:128]: value for key, value in body["custom_metadata"].items()}
    if path.endswith("/sys/policies/acl/{policy}") or path.endswith("/sys/policy/{policy}"):
        _parsable_policy(body)
    elif path.endswith("/identity/group/name/{group}"):
        _possible_group(body)
    elif path.endswith("/sys/capabilities-self"):
        _possible_capabilities_query(body)
    elif path.endswith("/secret/data/{path}"):
        _possible_write(body)
    elif path.endswith("/secret/schedule-destroy/{path}"):
        _possible_schedule(body)
    elif "/password-policy" in path:
        _possible_policy(body)
    elif "/host-secret/" in path:
        _consistent_host(body, case.path_parameters.get("host_id"))
    elif path.endswith("/targetdomains") or path.endswith("/targetdomains/{domain_id}"):
        _consistent_domain(body)
    elif directory_accounts and FIXTURES.get("domain_id"):
        directory_accounts(body)
    elif path.endswith("/workflow-engine/api/v1/settings") or path.endswith("/workflow-engine/api/v1/testsmtp"):
        # The setting bounds every later workflow's steps: kept at its most (the schema's maxItems),
        # so a schema-valid workflow drawn after it stays one the contract accepts.
        body["request_role_max_approvers"] = 10
        # Mail goes to no drawn host: only to a closed port of this machine (refused at once).
        body["smtp_server"], body["smtp_server_port"] = "127.0.0.1", CLOSED_PORT


def _without_nul_keys(value):
    if isinstance(value, dict):
        return {key.replace("\x00", "_"): _without_nul_keys(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_without_nul_keys(child) for child in value]
    return value


def _printable(text: str, limit: int) -> str:
    return ("".join(c if c.isprintable() else "_" for c in text) or "k")[:limit]


def _printable_labels(labels: dict) -> dict:
    """HashiCorp's custom_metadata: keys 1 to 128 printable characters (no propertyNames in
    OpenAPI 3.0 to say so), values 1 to 512 (Python's printable is wider than a pattern can say)."""
    return {_printable(key, 128): _printable(value, 512) if isinstance(value, str) else value
            for key, value in labels.items()}


# --- HashiCorp's ACL routes (/v1/sys/policies/acl, sys/policy, identity/group/name, capabilities-self)

# A policy in HashiCorp's language, about a path no reserved secret is under (the grammar nests:
# no pattern states it). The drawn text, schema-valid but not HCL, is replaced in positive cases.
FUZZ_POLICY = 'path "secret/data/fuzz/*" {\n  capabilities = ["read", "list"]\n}\n'


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    """The same as _acl_names, as the values are drawn (before_call may not see every drawn path
    parameter: Schemathesis 4.32 sent some group names past both hooks, so those routes are not
    fuzzed; tests/fuzz/run.py)."""
    if path_parameters and context.operation is not None and context.operation.path.startswith("/v1/"):
        _fix_acl_names(path_parameters)
    return path_parameters


def _acl_names(case) -> None:
    """`root` cannot be written or deleted, nor `default` deleted (Vault's rule, a 400 the name's
    pattern cannot state); a group's name is printable, and Python's printable is narrower than
    the pattern's "no control character" (private-use and unassigned characters, separators):
    those become '_'. What the pattern refuses (controls, '/') is left for negative cases."""
    if case.path_parameters:
        _fix_acl_names(case.path_parameters)


def _fix_acl_names(parameters: dict) -> None:
    if isinstance(parameters.get("policy"), str) and parameters["policy"].strip(SPACE).lower() in ("root", "default"):
        parameters["policy"] = "fuzz-" + parameters["policy"].strip(SPACE).lower()
    if isinstance(parameters.get("group"), str):
        parameters["group"] = "".join(c if c.isprintable() or _CONTROL.match(c) else "_" for c in parameters["group"])
    for name in ("policy", "group"):
        if parameters.get(name) in (".", ".."):  # a dot segment: the client drops it from the URL
            parameters[name] = "fuzz" + parameters[name]


def _parsable_policy(body: dict) -> None:
    """The text in `policy` (sys/policy also takes it as `rules` when `policy` is null or "": a
    rule between two fields)."""
    body["policy"] = FUZZ_POLICY


def _distinct_names(value, limit: int):
    """At most `limit` different policy names (duplicates count once), as a list or a comma string."""
    if isinstance(value, str):
        return ",".join(list(dict.fromkeys(part.strip(SPACE).lower() for part in value.split(",") if part.strip(SPACE)))[:limit])
    if isinstance(value, list):
        return list(dict.fromkeys(item.strip(SPACE).lower() for item in value if isinstance(item, str)))[:limit]
    return value


def _possible_group(body: dict) -> None:
    body["policies"] = _distinct_names(body.get("policies"), 64)
    if isinstance(body.get("metadata"), dict):  # keys of at most 128 characters (no propertyNames in 3.0)
        body["metadata"] = {key[:128]: value for key, value in body["metadata"].items()}


def _possible_capabilities_query(body: dict) -> None:
    """At most 256 paths in a comma-separated string too (a list's maxItems says it for a list)."""
    key = "paths" if body.get("paths") is not None else "path"
    if isinstance(body.get(key), str):
        parts = [part for part in body[key].split(",") if part.strip(SPACE)]
        body[key] = ",".join(parts[:256])


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _possible_policy(body: dict) -> None:
    """min <= max, at least one character class, and min >= the number of classes (at most 4).

    Both lengths are written out, as a PUT keeps what it leaves out and the stored values are
    not known here."""
    low = _int(body.get("password_min_length"))
    high = _int(body.get("password_max_length"))
    low = DEFAULT_MIN if low is None else low
    high = DEFAULT_MAX if high is None else high
    low, high = sorted((max(low, len(CLASS_FLAGS)), max(high, len(CLASS_FLAGS))))
    body["password_min_length"], body["password_max_length"] = low, high
    if not any(body.get(flag) is True for flag in CLASS_FLAGS):
        body["use_lower_case"] = True


SPEC_CLASSES = ("include_uppercase", "include_lowercase", "include_digits", "include_punctuation")


def _possible_write(body: dict) -> None:
    """A password spec the server can meet (API.md: every class off, included with excluded,
    punctuation lists without include_punctuation, or fewer characters than included classes are
    400), and data that does not hold its password_key."""
    spec = body.get("password_payload_specification")
    if not isinstance(spec, dict):
        return
    if all(spec.get(flag) is False for flag in SPEC_CLASSES):  # null or absent means the default, true
        spec["include_lowercase"] = True
    for key in ("included_punctuation", "excluded_punctuation"):
        if isinstance(spec.get(key), str):
            spec[key] = "".join(dict.fromkeys(spec[key]))  # distinct characters
    if spec.get("included_punctuation") and spec.get("excluded_punctuation"):
        spec["excluded_punctuation"] = ""
    if (spec.get("included_punctuation") or spec.get("excluded_punctuation")) and spec.get("include_punctuation") is False:
        spec["include_punctuation"] = True
    classes = sum(spec.get(flag) is not False for flag in SPEC_CLASSES)
    if isinstance(_int(spec.get("length")), int) and 0 < spec["length"] < classes:
        spec["length"] = classes
    if isinstance(body.get("data"), dict) and isinstance(spec.get("password_key"), str):
        body["data"].pop(spec["password_key"], None)


def _possible_schedule(body: dict) -> None:
    """A pending period of 1h to 30 days (a zero duration means the default)."""
    period = body.get("pending_period")
    if not isinstance(period, str) or not period:
        return
    try:
        seconds = parse_seconds(period)
    except ValueError:
        return  # the pattern rules those out: not a positive case
    if seconds and not versioned_schemas.MIN_PENDING_PERIOD <= seconds <= versioned_schemas.MAX_PENDING_PERIOD:
        body["pending_period"] = "P7D"


def _consistent_host(body: dict, host_id) -> None:
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return
    if isinstance(metadata.get("host_id"), str) and metadata["host_id"]:
        metadata["host_id"] = host_id
    for key in ("password_policy_id", "policy_id"):
        if isinstance(metadata.get(key), str) and metadata[key]:
            metadata[key] = FIXTURES["password_policy_id"]
    has_template = isinstance(metadata.get("script_template_id"), str) and metadata["script_template_id"]
    if has_template or str(metadata.get("protocol", "")).upper() == "SSH":  # SSH hosts need one
        metadata["script_template_id"] = FIXTURES["script_template_id"]
    accounts = body.get("accounts")
    names = []
    if isinstance(accounts, list):
        unique = []
        for account in accounts:
            if isinstance(account, dict) and account.get("account") in names:
                continue  # an account listed twice is 400
            if isinstance(account, dict):
                names.append(account.get("account"))
                if isinstance(account.get("host_id"), str) and account["host_id"]:
                    account["host_id"] = host_id
            unique.append(account)
        body["accounts"] = unique
    if metadata.get("use_main_account") is True:
        if names:
            metadata["main_account"] = names[0]
        else:
            metadata["use_main_account"] = False


def _consistent_domain(body: dict) -> None:
    policy = body.get("auto_onboarding_policy")
    if isinstance(policy, dict) and isinstance(policy.get("id"), str) and policy["id"]:
        policy["id"] = FIXTURES["password_policy_id"]
    elif body.get("auto_onboarding") is True:
        body["auto_onboarding_policy"] = {"id": FIXTURES["password_policy_id"]}
    endpoints = body.get("endpoints")
    for index, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        if not isinstance(endpoint, dict):
            continue
        kind = str(endpoint.get("type") or "LDAP").upper()
        if kind == "AD" and str(endpoint.get("ldap_protocol", "")).upper() == "LDAP":
            endpoint["ldap_protocol"] = "LDAPS"  # AD changes passwords only over encryption
        bind = endpoint.get("ldap_bind_dn")
        if kind != "AD" and isinstance(bind, str) and not _DN.fullmatch(bind):
            endpoint["ldap_bind_dn"] = "cn=fuzz,dc=example,dc=com"  # user@domain and DOMAIN\\user are AD's
        if not endpoint.get("ldap_bind_password"):
            endpoint["ldap_bind_password"] = "fuzz-bind-password"  # a new endpoint needs one
        if isinstance(endpoint.get("ldap_user_filter"), str) and endpoint["ldap_user_filter"]:
            endpoint["ldap_user_filter"] = FILTERS[index % len(FILTERS)]
        if isinstance(endpoint.get("ldap_root_certificates"), str) and endpoint["ldap_root_certificates"].strip():
            endpoint["ldap_root_certificates"] = FIXTURES["certificate"]
        mapping = endpoint.get("attribute_mapping")
        if isinstance(mapping, dict):
            # Keys are 1 to 64 characters (no propertyNames in OpenAPI 3.0); password attributes
            # cannot be mapped.
            endpoint["attribute_mapping"] = {
                (key or "field")[:64]: "cn" if isinstance(attribute, str) and attribute.lower() in ("userpassword", "unicodepwd")
                else attribute for key, attribute in mapping.items()}


# --- accounts of a directory: a body must name accounts the domain has (API.md: else 400), so
# positive cases go to the fixture domain (a real slapd, scanned before the run) and name its
# accounts; managed accounts are looked up (or made) when the case is drawn, as earlier cases
# of the run may have deleted them.

def _scanned_ids(count: int) -> list[str]:
    return list(FIXTURES["accounts"].values())[:max(count, 0)]


def _policy_ref(holder: dict, key: str = "password_policy") -> None:
    if isinstance(holder, dict) and isinstance(holder.get(key), dict) and holder[key].get("id"):
        holder[key]["id"] = FIXTURES["password_policy_id"]


def _managed_ids(count: int) -> list[str]:
    import requests

    url = f"{FIXTURES['sm_url']}/targetdomains/{FIXTURES['domain_id']}/managedaccounts"
    headers = {"Authorization": f"Bearer {FIXTURES['admin_token']}"}
    ids = [m["id"] for m in requests.get(url, params={"limit": 100}, headers=headers, timeout=30).json()["items"]]
    if not ids:
        created = requests.post(url, json={"username": next(iter(FIXTURES["accounts"]))}, headers=headers, timeout=30)
        created.raise_for_status()
        ids = [created.json()["id"]]
    return ids[:max(count, 1)]


def _unique_count(ids) -> int:
    return len(set(map(str, ids))) if isinstance(ids, list) else 0


def _managed_create(body: dict) -> None:
    names = list(FIXTURES["accounts"])
    body["username"] = names[len(str(body.get("username", ""))) % len(names)]
    if body.get("source_id"):
        body["source_id"] = ""  # not set: found by username
    _policy_ref(body)


def _managed_batch_create(body: dict) -> None:
    if _unique_count(body.get("ids")):
        body["ids"] = _scanned_ids(_unique_count(body["ids"]))
    _policy_ref(body.get("data"))


def _managed_batch(body: dict) -> None:
    if _unique_count(body.get("ids")):
        body["ids"] = _managed_ids(_unique_count(body["ids"]))
    _policy_ref(body.get("changes"))


def _scanned_batch(body: dict) -> None:
    if _unique_count(body.get("ids")):
        body["ids"] = _scanned_ids(_unique_count(body["ids"]))


_DIRECTORY_ACCOUNTS = {
    "/managedaccounts": _managed_create,
    "/managedaccounts/batch/create": _managed_batch_create,
    "/managedaccounts/batch/edit": _managed_batch,
    "/managedaccounts/batch/rotate": _managed_batch,
    "/managedaccounts/batch/delete": _managed_batch,
    "/accounts/batch/edit": _scanned_batch,
}
