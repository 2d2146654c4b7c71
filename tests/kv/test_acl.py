"""ACL policies bound to token roles (docs/API-hashicorp-kv.md, "Least privilege"), driven by
HashiCorp's own client: hvac writes the policies and groups with its own calls, then a `user`
token with the bound role does exactly what its policies allow and gets hvac's Forbidden
everywhere else. The Vault runs under gunicorn with one worker, so a change this test makes is
seen by its next request (the cross-process refresh has a test of its own, at the end)."""
from __future__ import annotations

import time
import uuid

import hvac
import pytest
import requests
from hvac import exceptions

from tests import support
from tests.kv.servers import vault_under_gunicorn
from tests.support import new_role, unique
from vault_service.acl import cache as acl_cache
from vault_service.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter")]
POLICY_DENIED = ["1 error occurred:\n\t* permission denied\n\n"]
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def acl_base(kv_env):
    with vault_under_gunicorn(kv_env, workers=1) as base:
        yield base


@pytest.fixture(scope="module")
def client_for(acl_base):
    made = []

    def make(token: str) -> hvac.Client:
        client = hvac.Client(url=acl_base, token=token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.adapter.close()


@pytest.fixture(scope="module")
def admin(client_for, tokens):
    return client_for(tokens("admin"))


@pytest.fixture(scope="module")
def service(client_for, tokens):
    return client_for(tokens("service"))


@pytest.fixture()
def raw(acl_base):
    session = requests.Session()

    def call(method, path, token, **kwargs):
        # /v1 reads X-Vault-Token, the versioned API the bearer token.
        headers = {"X-Vault-Token": token, "Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return session.request(method, acl_base + path, headers=headers, timeout=15, **kwargs)

    yield call
    session.close()


def bound_user(admin, tokens, client_for, policy_text: str | dict, *, by: str = "name"):
    """A `user` token whose one role's group (named by the role's `by`) carries one new policy."""
    role, policy = new_role("kv"), unique("pol").lower()
    admin.sys.create_or_update_acl_policy(name=policy, policy=policy_text)
    admin.secrets.identity.create_or_update_group_by_name(name=role[by], group_type="external", policies=[policy])
    token = tokens("user", roles=[role])
    return client_for(token), token, policy, role


def rules(prefix: str, **by_family: list[str]) -> str:
    return "\n".join(f'path "secret/{family}/{prefix}/*" {{\n  capabilities = {caps!r}\n}}'.replace("'", '"')
                     for family, caps in by_family.items())


# --- the policy API -----------------------------------------------------------------

def test_policies_with_hvacs_own_calls(admin, client_for, tokens):
    name = unique("app-read").lower()
    text = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'
    assert admin.sys.create_or_update_acl_policy(name=name, policy=text).status_code == 204
    assert admin.sys.read_acl_policy(name)["data"] == {"name": name, "policy": text}
    listed = admin.sys.list_acl_policies()["data"]["keys"]
    assert {name, "default", "root"} <= set(listed) and listed == sorted(listed)

    # The older API: JSON text (hvac dumps a dict), `rules` on read, answers at the top level too.
    legacy = unique("legacy").lower()
    admin.sys.create_or_update_policy(name=legacy, policy={"path": {"secret/data/x/*": {"capabilities": ["read"]}}})
    read = admin.sys.read_policy(legacy)
    assert read["name"] == legacy == read["data"]["name"] and '"secret/data/x/*"' in read["rules"]
    assert legacy in admin.sys.list_policies()["policies"]
    assert admin.sys.delete_policy(legacy).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        admin.sys.read_policy(legacy)

    # Vault's names: trimmed and lower-cased.
    admin.sys.create_or_update_acl_policy(name=name.upper(), policy=text)
    assert admin.sys.read_acl_policy(name)["data"]["policy"] == text
    assert admin.sys.delete_acl_policy(name).status_code == 204
    assert name not in admin.sys.list_acl_policies()["data"]["keys"]


@pytest.mark.parametrize("name, call, message", [
    ("root", "write", 'cannot update "root" policy'),
    ("root", "delete", 'cannot delete "root" policy'),
    ("default", "delete", 'cannot delete "default" policy'),
    ("bad name!", "write", "policy names are 1 to 128 characters"),
])
def test_root_and_default_are_protected(admin, name, call, message):
    with pytest.raises(exceptions.InvalidRequest) as refused:
        if call == "write":
            admin.sys.create_or_update_acl_policy(name=name, policy='path "a" { capabilities = ["read"] }')
        else:
            admin.sys.delete_acl_policy(name)
    assert message in refused.value.errors[0]


def test_policy_names_are_trimmed_of_gos_space_alone_as_the_document_states(raw, tokens):
    r"""`make fuzz` sent DELETE /v1/sys/policy/J%1E and got 204: the server trimmed the name with
    Python's str.strip(), which takes \x1c-\x1f for space, so it deleted the policy `j`, while the
    document's `\s` (ECMAScript's, as Schemathesis reads it; nor Go's, which Vault trims) refuses
    it. Names are trimmed of Go's space alone and checked before lower-casing, and the document
    spells that class out; each answer here is the one the served document's schema says."""
    from urllib.parse import quote

    import jsonschema_rs  # Schemathesis' validator: ECMAScript's regular expressions, not Python's

    admin = tokens("admin")
    document = raw("GET", "/vault/api/v1/openapi.json", admin).json()
    name_schema = next(parameter["schema"] for parameter in document["paths"]["/v1/sys/policy/{policy}"]["parameters"]
                       if parameter["name"] == "policy")
    policies_schema = document["components"]["schemas"]["KvGroup"]["properties"]["policies"]["anyOf"][1]
    policy = unique("space").lower()
    text = 'path "secret/data/space/*" { capabilities = ["read"] }'
    assert raw("PUT", f"/v1/sys/policy/{policy}", admin, json={"policy": text}).status_code == 204
    wrong = []
    for padded in (policy + "\x1e", "\x1c" + policy, policy + "\x1f", policy + "\ufeff", policy.replace("k", "\u212a"),
                   " " + policy, policy + "\u2003", "\x85" + policy, "\u3000" + policy.upper() + "\t"):
        documented = jsonschema_rs.Draft4Validator(name_schema).is_valid(padded)
        read = raw("GET", f"/v1/sys/policy/{quote(padded, safe='')}", admin)
        if read.status_code != (200 if documented else 400) or documented and read.json()["name"] != policy:
            wrong.append(("read", padded, documented, read.status_code))
        if not documented:  # a refused name deletes nothing
            deleted = raw("DELETE", f"/v1/sys/policy/{quote(padded, safe='')}", admin)
            still = raw("GET", f"/v1/sys/policy/{policy}", admin).status_code
            if deleted.status_code != 400 or still != 200:
                wrong.append(("delete", padded, deleted.status_code, still))
    group = unique("space-group")
    for policies in (f"{policy}, ,b", f"{policy},\x1e,b", f"\x1c{policy}", f"{policy}\u2003,\x85b"):
        documented = jsonschema_rs.Draft4Validator(policies_schema).is_valid(policies)
        answer = raw("PUT", f"/v1/identity/group/name/{group}", admin, json={"type": "external", "policies": policies})
        if answer.status_code not in ((200, 204) if documented else (400,)):
            wrong.append(("group", policies, documented, answer.status_code))
    assert not wrong, wrong
    assert raw("GET", f"/v1/identity/group/name/{group}", admin).json()["data"]["policies"] == [policy, "b"]
    # A path of capabilities-self is trimmed of the same space (`\x1e` is a path, not nothing).
    asked = raw("POST", "/v1/sys/capabilities-self", admin, json={"paths": "\x1e, secret/data/x\u2003"})
    assert asked.status_code == 200 and set(asked.json()["data"]) == {"\x1e", "secret/data/x"}, asked.text
    assert raw("DELETE", f"/v1/sys/policy/{policy}", admin).status_code == 204


@pytest.mark.parametrize("text, message", [
    ('path "secret/data/a/*" {\n  capabilities = ["read"\n}', "at line 3, column 1"),
    ('path "secret/data/a/*" { capabilities = ["fly"] }', "invalid capability 'fly'"),
    ('path "secret/data/a/*" {\n capabilities = ["read"]\n allowed_parameters = { "x" = [] }\n}',
     "allowed_parameters is not supported"),
    ('path "secret/data/a/*" { capabilities = ["update"]\n min_wrapping_ttl = "1h" }', "min_wrapping_ttl"),
    ('path "secret/data/a*b" { capabilities = ["read"] }', "'*' may only end a pattern"),
    ('path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read"] }', "templated policies"),
    ('flavour = "x"', "invalid key 'flavour'"),
    ("", "'policy' parameter not supplied or empty"),
    ('{"path": {"secret/data/a": {"capabilities": ["read"]}', "failed to parse policy"),
])
def test_a_bad_policy_is_400_and_nothing_is_stored(admin, text, message):
    name = unique("bad").lower()
    with pytest.raises(exceptions.InvalidRequest) as refused:
        admin.sys.create_or_update_acl_policy(name=name, policy=text)
    assert message in refused.value.errors[0], refused.value.errors
    assert name not in admin.sys.list_acl_policies()["data"]["keys"]


@pytest.mark.parametrize("pattern", [
    "secret/data/hosts/*", "secret/metadata/hosts", "/secret/data/targetdomains/x", "secret/+/hosts/*",
    "secret/destroy/hosts*", "secret/subkeys/targetdomains/+/x", "secret/undelete/hosts/", "secret/delete/hosts/a",
])
def test_a_policy_naming_the_reserved_secrets_is_refused(admin, pattern):
    with pytest.raises(exceptions.InvalidRequest) as refused:
        admin.sys.create_or_update_acl_policy(name=unique("reserved").lower(),
                                              policy=f'path "{pattern}" {{ capabilities = ["read"] }}')
    assert "reserved" in refused.value.errors[0]


def test_who_may_manage_policies_and_groups(client_for, tokens, admin):
    name = unique("who").lower()
    admin.sys.create_or_update_acl_policy(name=name, policy='path "secret/data/w/*" { capabilities = ["read"] }')
    group = unique("who-group")
    admin.secrets.identity.create_or_update_group_by_name(name=group, group_type="external", policies=[name])
    manager = client_for(tokens("vaultManage"))
    assert manager.sys.read_acl_policy(name)["data"]["name"] == name
    assert group in manager.secrets.identity.list_groups_by_name()["data"]["keys"]
    with pytest.raises(exceptions.Forbidden):
        manager.sys.create_or_update_acl_policy(name=name, policy='path "x" { capabilities = ["read"] }')
    with pytest.raises(exceptions.Forbidden):
        manager.secrets.identity.delete_group_by_name(group)
    for caller in ("user", "service", "hostsManage"):
        other = client_for(tokens(caller))
        with pytest.raises(exceptions.Forbidden):
            other.sys.read_acl_policy(name)
        with pytest.raises(exceptions.Forbidden):
            other.secrets.identity.read_group_by_name(group)


# --- groups ---------------------------------------------------------------------------

def test_external_groups_with_hvacs_own_calls(admin):
    name = unique("operators")
    created = admin.secrets.identity.create_or_update_group_by_name(
        name=name, group_type="external", policies=["a-policy", "B-Policy"], metadata={"team": "ops"})
    group_id = created["data"]["id"]
    assert uuid.UUID(group_id) and created["data"]["name"] == name
    read = admin.secrets.identity.read_group_by_name(name)["data"]
    assert read["id"] == group_id and read["type"] == "external" and read["policies"] == ["a-policy", "b-policy"]
    assert read["metadata"] == {"team": "ops"} and read["creation_time"].endswith("Z")
    assert name in admin.secrets.identity.list_groups_by_name()["data"]["keys"]

    # An update changes what it names and keeps the rest.
    assert admin.secrets.identity.create_or_update_group_by_name(
        name=name, group_type="external", policies=["c"]).status_code == 204
    read = admin.secrets.identity.read_group_by_name(name)["data"]
    assert read["policies"] == ["c"] and read["metadata"] == {"team": "ops"} and read["id"] == group_id

    with pytest.raises(exceptions.InvalidRequest) as internal:  # hvac's default type
        admin.secrets.identity.create_or_update_group_by_name(name=unique("internal"), policies=["c"])
    assert "only external groups" in internal.value.errors[0]
    assert admin.secrets.identity.delete_group_by_name(name).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        admin.secrets.identity.read_group_by_name(name)


# --- what a bound user may do --------------------------------------------------------------

@pytest.mark.parametrize("by", ["name", "id"])
def test_a_user_does_exactly_what_its_policy_allows(admin, service, tokens, client_for, by):
    prefix = unique("team")
    user, _, policy, _ = bound_user(admin, tokens, client_for, rules(
        prefix, data=["create", "read", "update", "patch", "delete"], metadata=["read", "list", "delete"],
        delete=["update"], undelete=["update"]), by=by)
    kv = user.secrets.kv.v2
    path = f"{prefix}/db"
    assert kv.create_or_update_secret(path=path, secret={"password": "one"})["data"]["version"] == 1
    assert kv.create_or_update_secret(path=path, secret={"password": "two"}, cas=1)["data"]["version"] == 2
    assert kv.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"] == {"password": "two"}
    assert kv.patch(path=path, secret={"user": "app"})["data"]["version"] == 3
    assert kv.read_secret_metadata(path=path)["data"]["current_version"] == 3
    assert kv.list_secrets(path=prefix)["data"]["keys"] == ["db"]
    assert kv.delete_latest_version_of_secret(path=path).status_code == 204
    assert kv.undelete_secret_versions(path=path, versions=[3]).status_code == 204
    assert kv.delete_secret_versions(path=path, versions=[1]).status_code == 204

    # Everything else: Forbidden, with Vault's words.
    with pytest.raises(exceptions.Forbidden) as refused:
        kv.destroy_secret_versions(path=path, versions=[1])
    assert refused.value.errors == POLICY_DENIED
    with pytest.raises(exceptions.Forbidden):
        kv.update_metadata(path=path, max_versions=3)
    with pytest.raises(exceptions.Forbidden):
        kv.list_secrets(path="")
    elsewhere = unique("elsewhere")
    service.secrets.kv.v2.create_or_update_secret(path=elsewhere, secret={"x": 1})
    for attempt in (lambda: kv.read_secret_version(path=elsewhere, raise_on_deleted_version=True),
                    lambda: kv.create_or_update_secret(path=elsewhere, secret={"x": 2}),
                    lambda: kv.create_or_update_secret(path=unique("new-elsewhere"), secret={"x": 2}),
                    lambda: kv.read_secret_metadata(path=elsewhere),
                    lambda: kv.delete_latest_version_of_secret(path=elsewhere),
                    lambda: kv.delete_metadata_and_all_versions(path=elsewhere),
                    lambda: kv.configure(max_versions=5),
                    lambda: kv.read_configuration()):
        with pytest.raises(exceptions.Forbidden):
            attempt()
    assert service.secrets.kv.v2.read_secret_version(path=elsewhere, raise_on_deleted_version=True)[
        "data"]["data"] == {"x": 1}

    assert kv.delete_metadata_and_all_versions(path=path).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        service.secrets.kv.v2.read_secret_metadata(path=path)
    # The binding goes, the rights go.
    admin.sys.delete_acl_policy(policy)
    with pytest.raises(exceptions.Forbidden):
        kv.create_or_update_secret(path=path, secret={"password": "three"})


def test_create_and_update_are_told_apart(admin, service, tokens, client_for):
    prefix = unique("cu")
    creator, *_ = bound_user(admin, tokens, client_for, rules(prefix, data=["create"]))
    updater, *_ = bound_user(admin, tokens, client_for, rules(prefix, data=["update"]))
    assert creator.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/a", secret={"v": 1})
    with pytest.raises(exceptions.Forbidden):  # exists: an update
        creator.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/a", secret={"v": 2})
    assert updater.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/a", secret={"v": 2})["data"]["version"] == 2
    with pytest.raises(exceptions.Forbidden):  # new: a create
        updater.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/b", secret={"v": 1})


def test_listing_shows_only_what_the_policy_reaches(admin, service, tokens, client_for):
    prefix = unique("lst")
    for name in ("open/a", "open/b", "shut/c", "top"):
        service.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/{name}", secret={"n": name})
    user, *_ = bound_user(admin, tokens, client_for, f'''
path "secret/metadata/{prefix}/" {{ capabilities = ["list"] }}
path "secret/metadata/{prefix}/open/*" {{ capabilities = ["list", "read"] }}
path "secret/data/{prefix}/top" {{ capabilities = ["read"] }}
''')
    assert user.secrets.kv.v2.list_secrets(path=prefix)["data"]["keys"] == ["open/", "top"]
    assert user.secrets.kv.v2.list_secrets(path=f"{prefix}/open")["data"]["keys"] == ["a", "b"]
    with pytest.raises(exceptions.Forbidden):
        user.secrets.kv.v2.list_secrets(path=f"{prefix}/shut")


# --- precedence, as Vault's acl.go decides -------------------------------------------------

def test_deny_wins_over_every_grant(admin, service, tokens, client_for):
    prefix = unique("deny")
    service.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/open", secret={"v": 1})
    service.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/vault", secret={"v": 2})
    role, grant, refuse = new_role("deny"), unique("grant").lower(), unique("refuse").lower()
    admin.sys.create_or_update_acl_policy(name=grant, policy=rules(prefix, data=["read"]) +
                                          f'\npath "secret/data/{prefix}/vault" {{ capabilities = ["read"] }}')
    admin.sys.create_or_update_acl_policy(name=refuse,
                                          policy=f'path "secret/data/{prefix}/vault" {{ capabilities = ["deny"] }}')
    admin.secrets.identity.create_or_update_group_by_name(name=role["name"], group_type="external",
                                                          policies=[grant, refuse])
    user = client_for(tokens("user", roles=[role]))
    assert user.secrets.kv.v2.read_secret_version(path=f"{prefix}/open", raise_on_deleted_version=True)
    with pytest.raises(exceptions.Forbidden):
        user.secrets.kv.v2.read_secret_version(path=f"{prefix}/vault", raise_on_deleted_version=True)
    assert user.sys.get_capabilities(paths=[f"secret/data/{prefix}/vault"])["capabilities"] == ["deny"]


@pytest.mark.parametrize("patterns, path, winner", [
    # A later first wildcard wins: foo/a* over foo/+ ...
    ({"{p}/a*": "read", "{p}/+": "deny"}, "{p}/ab", "read"),
    ({"{p}/a*": "deny", "{p}/+": "read"}, "{p}/ab", "deny"),
    # ... then no trailing '*': foo/+ over foo/*
    ({"{p}/*": "deny", "{p}/+": "read"}, "{p}/x", "read"),
    # ... then fewer '+': foo/bar/+/baz over foo/+/+/baz
    ({"{p}/+/+/baz": "deny", "{p}/bar/+/baz": "read"}, "{p}/bar/q/baz", "read"),
    # ... then the longer pattern: foo/+/bar/ba* over foo/+/bar/b*
    ({"{p}/+/bar/b*": "deny", "{p}/+/bar/ba*": "read"}, "{p}/q/bar/baz", "read"),
    # The longest prefix wins among plain globs; an exact rule wins over all.
    ({"{p}/*": "read", "{p}/sub/*": "deny"}, "{p}/sub/x", "deny"),
    ({"{p}/sub/*": "deny", "{p}/sub/x": "read"}, "{p}/sub/x", "read"),
    # '+' is exactly one segment.
    ({"{p}/+": "read"}, "{p}/a/b", "deny"),
])
def test_glob_and_segment_precedence(admin, service, tokens, client_for, patterns, path, winner):
    prefix = f"secret/data/{unique('prec')}"
    text = "\n".join(f'path "{pattern.format(p=prefix)}" {{ capabilities = ["{cap}"] }}'
                     for pattern, cap in patterns.items())
    user, *_ = bound_user(admin, tokens, client_for, text)
    name = path.format(p=prefix).removeprefix("secret/data/")
    service.secrets.kv.v2.create_or_update_secret(path=name, secret={"v": 1})
    assert user.sys.get_capabilities(paths=[f"secret/data/{name}"])["capabilities"] == [winner]
    if winner == "read":
        assert user.secrets.kv.v2.read_secret_version(path=name, raise_on_deleted_version=True)["data"]["data"] == {"v": 1}
    else:
        with pytest.raises(exceptions.Forbidden):
            user.secrets.kv.v2.read_secret_version(path=name, raise_on_deleted_version=True)


# --- the reserved secrets: no policy reaches them ------------------------------------------

EVERYTHING = '["create", "read", "update", "patch", "delete", "list", "sudo"]'
RESERVED_ROUTES = [  # (method, path under the Vault, body, headers): every route a KV path reaches
    ("GET", "/v1/secret/data/{p}", None, {}),
    ("PUT", "/v1/secret/data/{p}", {"data": {"stolen": True}}, {}),
    ("PATCH", "/v1/secret/data/{p}", {"data": {"stolen": True}}, MERGE),
    ("DELETE", "/v1/secret/data/{p}", None, {}),
    ("GET", "/v1/secret/subkeys/{p}", None, {}),
    ("PUT", "/v1/secret/delete/{p}", {"versions": [1]}, {}),
    ("PUT", "/v1/secret/undelete/{p}", {"versions": [1]}, {}),
    ("PUT", "/v1/secret/destroy/{p}", {"versions": [1]}, {}),
    ("GET", "/v1/secret/metadata/{p}", None, {}),
    ("PUT", "/v1/secret/metadata/{p}", {"max_versions": 1}, {}),
    ("PATCH", "/v1/secret/metadata/{p}", {"max_versions": 1}, MERGE),
    ("DELETE", "/v1/secret/metadata/{p}", None, {}),
    ("LIST", "/v1/secret/metadata/{folder}", None, {}),
    ("GET", "/vault/api/v1/secret/data/{p}", None, {}),
    ("POST", "/vault/api/v1/secret/data/{p}", {"data": {"stolen": True}}, {}),
    ("DELETE", "/vault/api/v1/secret/data/{p}", None, {}),
    ("POST", "/vault/api/v1/secret/delete/{p}", {"versions": [1]}, {}),
    ("POST", "/vault/api/v1/secret/undelete/{p}", {"versions": [1]}, {}),
    ("POST", "/vault/api/v1/secret/destroy/{p}", {"versions": [1]}, {}),
    ("GET", "/vault/api/v1/secret/metadata/{p}", None, {}),
    ("POST", "/vault/api/v1/secret/metadata/{p}", {"max_versions": 1}, {}),
    ("DELETE", "/vault/api/v1/secret/metadata/{p}", None, {}),
    ("GET", "/vault/api/v1/secret/keys/{folder}", None, {}),
    ("GET", "/vault/api/v1/secret/versions/{p}", None, {}),
]


@pytest.fixture(scope="module")
def everything_user(admin, tokens, client_for):
    """A user whose policy grants every capability on every path: `path "*"` and more."""
    _, token, *_ = bound_user(admin, tokens, client_for, f'path "*" {{ capabilities = {EVERYTHING} }}\n'
                                                         f'path "+/+/+/*" {{ capabilities = {EVERYTHING} }}')
    return token


@pytest.mark.parametrize("family", ["hosts", "targetdomains"])
@pytest.mark.parametrize("route", RESERVED_ROUTES, ids=[f"{r[0]} {r[1]}" for r in RESERVED_ROUTES])
def test_no_policy_reaches_the_reserved_secrets(raw, service, everything_user, family, route):
    folder = f"{family}/{uuid.uuid4()}"
    path = f"{folder}/account"
    service.secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "managed"})
    method, template, body, headers = route
    response = raw(method, template.format(p=path, folder=folder), everything_user, json=body, headers=headers)
    assert response.status_code in (403, 404), (response.status_code, response.text)
    after = service.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]
    assert after["data"] == {"password": "managed"} and after["metadata"]["version"] == 1
    assert service.secrets.kv.v2.read_secret_metadata(path=path)["data"]["max_versions"] != 1
    caps = raw("POST", "/v1/sys/capabilities-self", everything_user, json={"paths": [
        f"secret/data/{path}", f"secret/metadata/{path}", f"secret/destroy/{path}"]}).json()
    assert {tuple(caps[p]) for p in (f"secret/data/{path}", f"secret/metadata/{path}", f"secret/destroy/{path}")} == {
        ("deny",)}


def test_the_root_listing_hides_reserved_secrets_from_policies(raw, service, everything_user):
    service.secrets.kv.v2.create_or_update_secret(path=f"hosts/{uuid.uuid4()}/root", secret={"p": "x"})
    keys = raw("LIST", "/v1/secret/metadata", everything_user).json()["data"]["keys"]
    assert "hosts/" not in keys and "targetdomains/" not in keys


# --- sys/capabilities-self matches what the routes do --------------------------------------

def _route_for(capability: str, family: str, existing: str, fresh: str, folder: str):
    """(method, path, body, headers) of the route that needs `capability` on `family`, or None."""
    table = {
        ("data", "read"): ("GET", f"/v1/secret/data/{existing}", None, {}),
        ("data", "create"): ("PUT", f"/v1/secret/data/{fresh}", {"data": {"v": 1}}, {}),
        ("data", "update"): ("PUT", f"/v1/secret/data/{existing}", {"data": {"v": 2}}, {}),
        ("data", "patch"): ("PATCH", f"/v1/secret/data/{existing}", {"data": {"w": 3}}, MERGE),
        ("data", "delete"): ("DELETE", f"/v1/secret/data/{existing}", None, {}),
        ("subkeys", "read"): ("GET", f"/v1/secret/subkeys/{existing}", None, {}),
        ("delete", "update"): ("PUT", f"/v1/secret/delete/{existing}", {"versions": [1]}, {}),
        ("undelete", "update"): ("PUT", f"/v1/secret/undelete/{existing}", {"versions": [1]}, {}),
        ("destroy", "update"): ("PUT", f"/v1/secret/destroy/{existing}", {"versions": [1]}, {}),
        ("metadata", "read"): ("GET", f"/v1/secret/metadata/{existing}", None, {}),
        ("metadata", "create"): ("PUT", f"/v1/secret/metadata/{fresh}", {"max_versions": 4}, {}),
        ("metadata", "update"): ("PUT", f"/v1/secret/metadata/{existing}", {"max_versions": 5}, {}),
        ("metadata", "patch"): ("PATCH", f"/v1/secret/metadata/{existing}", {"max_versions": 6}, MERGE),
        ("metadata", "delete"): ("DELETE", f"/v1/secret/metadata/{existing}", None, {}),
        ("metadata", "list"): ("LIST", f"/v1/secret/metadata/{folder}", None, {}),
    }
    return table.get((family, capability))


FAMILIES = ("data", "metadata", "delete", "undelete", "destroy", "subkeys")
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list")


def test_capabilities_match_what_the_routes_do(raw, admin, service, tokens, client_for):
    """A generated table: caller x path x capability; for each, ask hvac's sys.get_capabilities,
    then do what needs that capability on a fresh copy of the path, and compare."""
    prefix = unique("caps")
    _, policy_token, *_ = bound_user(admin, tokens, client_for, f'''
path "secret/data/{prefix}/+/rw" {{ capabilities = ["create", "read", "update", "patch"] }}
path "secret/data/{prefix}/+/ro" {{ capabilities = ["read"] }}
path "secret/+/{prefix}/+/rw" {{ capabilities = ["update", "delete"] }}
path "secret/metadata/{prefix}/*" {{ capabilities = ["read", "list"] }}
path "secret/metadata/{prefix}/+/gone" {{ capabilities = ["deny"] }}
path "secret/subkeys/{prefix}/*" {{ capabilities = ["read"] }}
path "secret/destroy/{prefix}/+/ro" {{ capabilities = ["update"] }}
''')
    callers = {"policy": policy_token, "service": tokens("service"), "admin": tokens("admin"),
               "hostsManage": tokens("hostsManage"), "user": tokens("user")}
    leaves = ("rw", "ro", "gone")
    roots = (prefix, f"hosts/{uuid.uuid4()}")  # and the reserved secrets: `service` only
    mismatches, checked = [], 0
    for caller, token in callers.items():
        client = client_for(token)
        for root in roots:
            for family in FAMILIES:
                for leaf in leaves:
                    for capability in CAPABILITIES:
                        # A fresh folder per cell, so one cell's change never decides another's.
                        folder = f"{root}/{uuid.uuid4().hex[:10]}"
                        existing, fresh = f"{folder}/{leaf}", f"{folder}/{leaf}-new"
                        route = _route_for(capability, family, existing, fresh, folder)
                        if route is None:
                            continue
                        service.secrets.kv.v2.create_or_update_secret(path=existing, secret={"v": 0})
                        asked = folder if capability == "list" else fresh if capability == "create" else existing
                        path = f"secret/{family}/{asked}"
                        answer = client.sys.get_capabilities(paths=[path])
                        granted = capability in answer[path] and answer["capabilities"] == answer[path]
                        method, url, body, headers = route
                        response = raw(method, url, token, json=body, headers=headers)
                        # A LIST a policy allows but whose keys the caller may see none of is a 404,
                        # as an empty folder is (keys are filtered: docs/API-hashicorp-kv.md).
                        done = response.status_code < 400 or (
                            caller == "policy" and capability == "list" and response.status_code == 404)
                        checked += 1
                        if granted != done:
                            mismatches.append((caller, path, capability, answer[path], response.status_code))
    assert not mismatches, mismatches
    assert checked == len(callers) * len(roots) * len(leaves) * 15  # 15 (family, capability) routes


def test_capabilities_self_shape_and_other_paths(raw, tokens):
    token = tokens("service")
    one = raw("POST", "/v1/sys/capabilities-self", token, json={"path": "secret/data/x"}).json()
    assert one["capabilities"] == one["secret/data/x"] == one["data"]["secret/data/x"]
    assert one["capabilities"] == ["create", "delete", "patch", "read", "update"]
    many = raw("POST", "/v1/sys/capabilities-self", token, json={"paths": ["secret/metadata/x", "sys/policy/x"]}).json()
    assert "capabilities" not in many and many["sys/policy/x"] == ["deny"]
    assert many["secret/metadata/x"] == ["create", "delete", "list", "patch", "read", "update"]
    admin = raw("POST", "/v1/sys/capabilities-self", tokens("admin"), json={"paths": "sys/policies/acl/x"}).json()
    assert admin["capabilities"] == ["create", "delete", "list", "read", "update"]
    assert raw("POST", "/v1/sys/capabilities-self", token, json={}).status_code == 400
    assert raw("POST", "/v1/sys/capabilities-self", "not-a-token", json={"paths": ["x"]}).status_code == 403


# --- token lookup, the versioned API, audit ------------------------------------------------

def test_lookup_self_reports_the_identity_policies(admin, tokens, client_for):
    user, _, policy, _ = bound_user(admin, tokens, client_for, 'path "secret/data/l/*" { capabilities = ["read"] }')
    data = user.auth.token.lookup_self()["data"]
    assert data["policies"] == ["user", *sorted(["default", policy])]
    assert data["identity_policies"] == sorted(["default", policy])
    alone = client_for(tokens("user", roles=[new_role("nogroup")])).auth.token.lookup_self()["data"]
    assert alone["policies"] == ["user"] and "identity_policies" not in alone


def test_the_versioned_api_obeys_the_same_policies(raw, admin, service, tokens, client_for):
    prefix = unique("v2")
    _, token, *_ = bound_user(admin, tokens, client_for, rules(prefix, data=["read", "create", "update"],
                                                               metadata=["list"]))
    service.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/a", secret={"v": 1})
    bearer = {"Authorization": f"Bearer {token}"}

    def v2(method, path, **kwargs):
        return raw(method, f"/vault/api/v1{path}", "", headers=bearer, **kwargs)

    assert v2("GET", f"/secret/data/{prefix}/a").json()["data"] == {"v": 1}
    assert v2("POST", f"/secret/data/{prefix}/b", json={"data": {"v": 2}}).status_code == 200
    assert v2("GET", f"/secret/keys/{prefix}").json()["keys"] == ["a", "b"]
    refused = v2("GET", f"/secret/metadata/{prefix}/a")
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert v2("GET", f"/secret/data/{unique('other')}").status_code == 403
    assert v2("POST", f"/secret/destroy/{prefix}/a", json={"versions": [1]}).status_code == 403


def test_refusals_and_changes_are_audited(raw, admin, tokens, client_for):
    prefix = unique("aud")
    user, _, policy, role = bound_user(admin, tokens, client_for, rules(prefix, data=["read"]))
    with pytest.raises(exceptions.Forbidden):
        user.secrets.kv.v2.create_or_update_secret(path=f"{prefix}/x", secret={"v": 1})
    audit = raw("GET", "/vault/api/v1/audit-events", "", headers={"Authorization": f"Bearer {tokens('admin')}"},
                params={"target": f"secret:{prefix}/x", "limit": 10}).json()["items"]
    (denied,) = audit
    assert denied["outcome"] == "denied" and denied["action"] == "secret.write"
    assert denied["details"] == {"reason": "policy", "path": f"secret/data/{prefix}/x", "capability": "create",
                                 "policies": sorted(["default", policy])}
    changes = raw("GET", "/vault/api/v1/audit-events", "", headers={"Authorization": f"Bearer {tokens('admin')}"},
                  params={"target": f"policy:{policy}"}).json()["items"]
    assert [event["action"] for event in changes] == ["policy.write"]
    groups = raw("GET", "/vault/api/v1/audit-events", "", headers={"Authorization": f"Bearer {tokens('admin')}"},
                 params={"target": f"group:{role['name']}"}).json()["items"]
    assert [event["action"] for event in groups] == ["group.write"]


# --- the cache: another process sees a change within its refresh time ----------------------

def test_another_process_sees_a_change_after_its_refresh(kv_env, tokens):
    """Two apps on one database stand for two gunicorn workers: once the writer changed a
    policy, the other's next decision after REFRESH_SECONDS (the contract allows 5 s) uses it."""
    writer, reader = create_app(dict(kv_env)), create_app(dict(kv_env))
    try:
        writer_client, reader_client = writer.test_client(), reader.test_client()
        admin, role = {"X-Vault-Token": tokens("admin")}, new_role("proc")
        policy, prefix = unique("proc").lower(), unique("proc")
        user = {"X-Vault-Token": tokens("user", roles=[role])}
        caps = {"paths": [f"secret/data/{prefix}/x"]}
        assert writer_client.put(f"/v1/identity/group/name/{role['name']}", headers=admin,
                                 json={"type": "external", "policies": [policy]}).status_code == 200
        assert writer_client.put(f"/v1/sys/policies/acl/{policy}", headers=admin,
                                 json={"policy": rules(prefix, data=["read"])}).status_code == 204
        assert reader_client.post("/v1/sys/capabilities-self", headers=user, json=caps).get_json()["capabilities"] == ["read"]
        started = time.monotonic()  # the reader has loaded the policies by now
        assert writer_client.put(f"/v1/sys/policies/acl/{policy}", headers=admin,
                                 json={"policy": rules(prefix, data=["update"])}).status_code == 204
        # The writer itself: at once.
        assert writer_client.post("/v1/sys/capabilities-self", headers=user, json=caps).get_json()["capabilities"] == ["update"]
        time.sleep(max(0.0, acl_cache.REFRESH_SECONDS + 0.1 - (time.monotonic() - started)))
        assert reader_client.post("/v1/sys/capabilities-self", headers=user, json=caps).get_json()["capabilities"] == ["update"]
    finally:
        writer.extensions["db"].close()
        reader.extensions["db"].close()


def test_a_database_outage_keeps_the_loaded_policies_for_token_questions(kv_db, kv_env, tokens):
    """lookup-self and capabilities-self need no database once a process has loaded the policies;
    the KV routes answer 503 as they always do."""
    link, through_link = support.cuttable_database(kv_db)
    app = create_app({**kv_env, "DATABASE_URL": through_link})
    try:
        client, role, policy = app.test_client(), new_role("outage"), unique("outage").lower()
        admin, prefix = {"X-Vault-Token": tokens("admin")}, unique("outage")
        assert client.put(f"/v1/sys/policies/acl/{policy}", headers=admin,
                          json={"policy": rules(prefix, data=["read"])}).status_code == 204
        assert client.put(f"/v1/identity/group/name/{role['name']}", headers=admin,
                          json={"type": "external", "policies": [policy]}).status_code == 200
        user = {"X-Vault-Token": tokens("user", roles=[role])}
        caps = {"paths": [f"secret/data/{prefix}/x"]}
        assert client.post("/v1/sys/capabilities-self", headers=user, json=caps).get_json()["capabilities"] == ["read"]
        link.cut()
        time.sleep(acl_cache.REFRESH_SECONDS + 0.1)  # the next decision tries to re-read the counter
        assert client.post("/v1/sys/capabilities-self", headers=user, json=caps).get_json()["capabilities"] == ["read"]
        assert client.get("/v1/auth/token/lookup-self", headers=user).get_json()["data"]["identity_policies"] == [
            "default", policy]
        read = client.get(f"/v1/secret/data/{prefix}/x", headers=user)
        assert read.status_code == 503 and read.get_json() == {"errors": ["storage unavailable"]}
    finally:
        link.restore()
        app.extensions["db"].close()
