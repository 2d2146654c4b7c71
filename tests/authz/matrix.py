"""The authorization matrix: every route of both services x every kind of caller -> the status
the contract (docs/API.md) gives, in one table. test_authorization_matrix.py runs every cell.

Paths and bodies name the objects of a fresh "world" in braces (see World in the test):
  {S}  a shared secret with read_roles [R] and write_roles [W]   {P}  O's personal secret, same roles
  {O}  the owner of {P}     {S_parent} the folder {S} is in (for the keys)          {H}  a secret in the Secrets Manager's reserved part (hosts/...)
  {new} a name never used        {new_reserved} such a name in the reserved part
  {policy} a password policy in use   {spare_policy} one not in use   {template} a script template
  {host} a host (access_roles [R]) with account root   {new_host} a host id never used
  {checkout} the reader's live checkout of hosts/{host}/root

Caller kinds: no token; each scope alone (admin, user, service, vaultAdd, vaultManage,
hostsManage; `user` alone is the user without any role); and users (scope `user`) who hold R
(reader), W (writer), who are O (owner), or who hold an unrelated role (other).
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCOPE_KINDS = ("admin", "user", "service", "vaultAdd", "vaultManage", "hostsManage")
USER_KINDS = ("reader", "writer", "owner", "other")
KINDS = ("none", *SCOPE_KINDS, *USER_KINDS)


def scope_of(kind: str) -> str:
    return "user" if kind in USER_KINDS else kind


class Expected(dict):
    """kind -> status, and the kinds refused before the request is looked at (no token, or
    no scope): the contract's order of checks gives them that answer whatever they send."""

    def __init__(self, table: dict[str, int], refused_first: frozenset = frozenset()):
        super().__init__(table)
        self.refused_first = refused_first


def expect(ok: int, scopes, **special: int) -> Expected:
    """`ok` for a caller holding one of `scopes`, 403 for any other token, 401 without one;
    `special` gives the kinds whose answer depends on the object (roles, owner, reserved)."""
    table = {kind: 401 if kind == "none" else ok if scope_of(kind) in scopes else 403 for kind in KINDS}
    unknown = set(special) - set(KINDS)
    assert not unknown, unknown
    refused = frozenset(k for k in KINDS if (k == "none" or scope_of(k) not in scopes) and k not in special)
    table.update(special)
    return Expected(table, refused)


PUBLIC = Expected({kind: 200 for kind in KINDS})
NOBODY = frozenset()


@dataclass(frozen=True)
class Sees:
    """What a list or search reveals: for each world object, the kinds that find it in the items
    (everyone else must not), and the kinds whose item carries `data`."""

    key: str  # the item field naming the object: "name" (Vault), "path" (account secrets), "id"
    objects: dict[str, frozenset]
    with_data: frozenset = frozenset()


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: dict[str, int]
    body: object = None
    sees: Sees | None = None
    no_data_for: frozenset = field(default=frozenset())  # kinds whose 200 body must not carry `data`

    @property
    def id(self) -> str:
        tail = ""
        if isinstance(self.body, dict) and self.body:
            tail = " " + ",".join(sorted(self.body))
        return f"{self.method} {self.path}{tail}"


V = "/vault/api/v1"
SM = "/secrets-manager/api/v1"
AUTHORIZER = "/authorizer/api/v1"

V1_READ = {"user", "admin"}
V1_USERS = {"user", "admin", "vaultManage"}
V1_CREATE = {"admin", "vaultAdd", "vaultManage"}
V1_DELETE = {"admin", "vaultManage", "user"}
VERSIONED_DATA = {"service"}
VERSIONED_MANAGE = {"admin", "hostsManage", "service"}
VERSIONED_DESTROY = {"admin", "service"}
SM_READ = {"admin", "hostsManage", "service"}
SM_MANAGE = {"admin", "hostsManage"}
SM_USERS = {"admin", "user"}
ALL_USERS = frozenset(("user", *USER_KINDS))

# Who may see the shared secret {S} at all (and so find it in lists): its role holders and managers.
SEES_S = frozenset({"reader", "writer", "admin", "vaultManage"})
# A personal secret: its owner, and (without data) admin and vaultManage, whatever its roles say.
SEES_P = frozenset({"owner", "admin", "vaultManage"})

SHARED_LIST = Sees("name", {"S": SEES_S, "P": NOBODY, "H": NOBODY}, with_data=frozenset({"reader"}))
SEARCH_ALL = Sees("name", {"S": SEES_S, "P": SEES_P, "H": NOBODY})
SEARCH_PERSONAL = Sees("name", {"S": NOBODY, "P": SEES_P, "H": NOBODY})
OWNER_LIST = Sees("name", {"P": frozenset({"owner", "vaultManage"})}, with_data=frozenset({"owner"}))
ACCOUNTS = Sees("path", {"account": frozenset({"reader", "admin"})})
MY_CHECKOUTS = Sees("id", {"checkout": frozenset({"reader"})})
KEYS_ROOT = Sees("keys", {"reserved_root": frozenset({"service"})})  # the reserved part: the service's alone

SECRET_BODY = {"name": "{new}", "data": {"password": "pw"}, "read_roles": [], "write_roles": []}
NEW_DATA = {"data": {"password": "new-pw"}}
ROLES = {"read_roles": [{"id": "{R}"}], "write_roles": [{"id": "{W}"}]}
VERSIONS = {"versions": [1]}
POLICY = "policy_body"  # a fresh valid PasswordPolicy, made by the test
HOST = "host_body"  # a fresh valid HostSecret with the world's policy
TEMPLATE = {"name": "{new}", "operating_system": "LINUX", "script": "echo {{ .Username }}"}
COMPILE = {"operating_system": "LINUX", "script": "echo {{ .Username }}"}
CHECKOUT = {"path": "hosts/{host}/root"}

VAULT_ROWS = [
    Row("GET", V + "/status", PUBLIC),
    Row("GET", V + "/openapi.json", PUBLIC),
    Row("GET", V + "/docs", PUBLIC),
    Row("GET", V + "/docs/assets/swagger-ui-bundle.js", PUBLIC),
    Row("GET", "/metrics", PUBLIC),
    Row("GET", V + "/audit-events", expect(200, {"admin"})),
    Row("POST", V + "/audit/hash", expect(200, {"admin"}), body={"input": "secret:{S}"}),
    Row("POST", V + "/secrets", expect(201, V1_CREATE), body=SECRET_BODY),
    Row("POST", V + "/secrets", expect(403, V1_CREATE), body={**SECRET_BODY, "name": "{new_reserved}"}),
    Row("GET", V + "/secrets?sortkey=created&sortdir=DESC", expect(200, V1_USERS), sees=SHARED_LIST),
    Row("GET", V + "/secrets/{S}", expect(404, V1_READ, reader=200, writer=403, admin=403)),
    Row("GET", V + "/secrets/{H}", expect(404, V1_READ)),
    Row("PUT", V + "/secrets/{S}", expect(404, V1_USERS, writer=200, reader=403, admin=403, vaultManage=403),
        body=NEW_DATA),
    Row("PUT", V + "/secrets/{S}", expect(404, V1_USERS, writer=200, reader=403, admin=200, vaultManage=200),
        body=ROLES),
    Row("PUT", V + "/secrets/{H}", expect(403, V1_USERS), body=NEW_DATA),
    Row("DELETE", V + "/secrets/{S}", expect(404, V1_DELETE, writer=200, reader=403, admin=200, vaultManage=200)),
    Row("DELETE", V + "/secrets/{H}", expect(403, V1_DELETE)),
    Row("GET", V + "/metadata/secrets/{S}", expect(404, V1_USERS, **{k: 200 for k in SEES_S}),
        no_data_for=frozenset(KINDS)),
    Row("GET", V + "/metadata/secrets/{H}", expect(404, V1_USERS)),
    Row("GET", V + "/user/{O}/secrets", expect(403, {"vaultManage"}, vaultManage=200, owner=200), sees=OWNER_LIST),
    Row("POST", V + "/user/{O}/secrets", expect(201, V1_CREATE, owner=201), body=SECRET_BODY),
    Row("GET", V + "/user/{O}/secrets/{P}", expect(403, {"admin"}, admin=200, owner=200),
        no_data_for=frozenset({"admin"})),
    Row("PUT", V + "/user/{O}/secrets/{P}", expect(403, NOBODY, owner=200), body=NEW_DATA),
    Row("DELETE", V + "/user/{O}/secrets/{P}", expect(200, {"admin", "vaultManage"}, owner=200)),
    Row("GET", V + "/user/{O}/metadata/secrets/{P}", expect(200, {"admin", "vaultManage"}, owner=200),
        no_data_for=frozenset(KINDS)),
    Row("POST", V + "/search/secrets", expect(200, V1_USERS), body={"keywords": "{world}"}, sees=SEARCH_ALL),
    Row("POST", V + "/search/secrets", expect(200, V1_USERS), body={"keywords": "{world}", "filter": "personal"},
        sees=SEARCH_PERSONAL),
    Row("POST", V + "/search/secrets", expect(200, V1_USERS), body={"keywords": "{world}", "owner_id": ["{O}"]},
        sees=SEARCH_PERSONAL),
    Row("GET", V + "/schemas", expect(200, V1_READ)),
    Row("GET", V + "/roles?keywords=a", expect(200, V1_USERS)),
    # The workflow engine's grants: the Secrets Manager's service identity alone tells the Vault.
    Row("GET", V + "/grants/00000000-0000-4000-8000-00000000f0f1", expect(404, {"service"})),
    Row("PUT", V + "/grants/00000000-0000-4000-8000-00000000f0f1", expect(200, {"service"}),
        body={"user_id": "matrix-nobody", "role": {"id": "matrix-granted"}, "grant_type": "PERMANENT",
              "sequence": 1, "ended": True}),
    # The versioned API on the same shared secret: scopes alone decide, roles do not.
    Row("GET", V + "/secret/data/{S}", expect(200, VERSIONED_DATA)),
    Row("GET", V + "/secret/live/{S}", expect(200, VERSIONED_DATA)),
    Row("POST", V + "/secret/data/{S}", expect(200, VERSIONED_DATA), body=NEW_DATA),
    Row("DELETE", V + "/secret/data/{S}", expect(200, VERSIONED_MANAGE)),
    Row("POST", V + "/secret/delete/{S}", expect(200, VERSIONED_MANAGE), body=VERSIONS),
    Row("POST", V + "/secret/undelete/{S}", expect(200, VERSIONED_MANAGE), body=VERSIONS),
    Row("POST", V + "/secret/destroy/{S}", expect(200, VERSIONED_DESTROY), body=VERSIONS),
    Row("POST", V + "/secret/schedule-destroy/{S}", expect(200, VERSIONED_DESTROY), body=VERSIONS),
    Row("POST", V + "/secret/cancel-destroy/{S}", expect(200, VERSIONED_DESTROY), body=VERSIONS),
    Row("GET", V + "/secret/metadata/{S}", expect(200, VERSIONED_MANAGE)),
    Row("POST", V + "/secret/metadata/{S}", expect(200, VERSIONED_MANAGE), body={"max_versions": 5}),
    Row("DELETE", V + "/secret/metadata/{S}", expect(200, VERSIONED_MANAGE)),
    Row("GET", V + "/secret/keys", expect(200, VERSIONED_MANAGE), sees=KEYS_ROOT),
    Row("GET", V + "/secret/keys/{S_parent}", expect(200, VERSIONED_MANAGE)),
    Row("GET", V + "/secret/versions/{S}", expect(200, VERSIONED_MANAGE)),
    # The reserved part: the service scope alone; to anyone else it does not exist (404), and
    # changing it is 403.
    Row("GET", V + "/secret/data/{H}", expect(200, VERSIONED_DATA)),
    Row("GET", V + "/secret/live/{H}", expect(200, VERSIONED_DATA)),
    Row("POST", V + "/secret/data/{H}", expect(200, VERSIONED_DATA), body=NEW_DATA),
    Row("GET", V + "/secret/metadata/{H}", expect(404, VERSIONED_MANAGE, service=200)),
    Row("GET", V + "/secret/versions/{H}", expect(404, VERSIONED_MANAGE, service=200)),
    Row("POST", V + "/secret/delete/{H}", expect(403, VERSIONED_MANAGE, service=200), body=VERSIONS),
    Row("POST", V + "/secret/destroy/{H}", expect(403, VERSIONED_DESTROY, service=200), body=VERSIONS),
    Row("POST", V + "/secret/schedule-destroy/{H}", expect(403, VERSIONED_DESTROY, service=200), body=VERSIONS),
    Row("DELETE", V + "/secret/metadata/{H}", expect(403, VERSIONED_MANAGE, service=200)),
]


def _account_rows(prefix: str) -> list[Row]:
    """The six account-secret routes, served under both prefixes."""
    return [
        Row("GET", prefix + "/secrets?sortkey=created&sortdir=DESC", expect(200, SM_USERS), sees=ACCOUNTS),
        Row("POST", prefix + "/secrets/search", expect(200, SM_USERS), body={"host_id": "{host}"}, sees=ACCOUNTS),
        Row("GET", prefix + "/secrets/checkouts", expect(200, SM_USERS), sees=MY_CHECKOUTS),
        Row("POST", prefix + "/secrets/checkouts", expect(404, SM_USERS, admin=200, reader=200), body=CHECKOUT),
        Row("GET", prefix + "/secrets/checkouts/{checkout}", expect(404, SM_USERS, admin=200, reader=200)),
        Row("POST", prefix + "/secrets/checkouts/{checkout}/release", expect(404, SM_USERS, admin=200, reader=200)),
    ]


# Target domains ({domain}: a directory never reached; {scanned}: one of its scanned accounts).
TD = SM + "/targetdomains"
DOMAIN = {"name": "{new}", "endpoints": [{"ldap_protocol": "LDAP", "ldap_address": "127.0.0.1", "ldap_port": 9,
                                          "ldap_base_dn": "dc=example,dc=test", "ldap_bind_dn": "cn=binder,dc=example,dc=test",
                                          "ldap_bind_password": "bind-pw"}]}
TARGET_DOMAIN_ROWS = [
    Row("GET", TD, expect(200, SM_READ)),
    Row("POST", TD, expect(201, SM_MANAGE), body=DOMAIN),
    Row("POST", TD + "/search", expect(200, SM_READ), body={"keywords": "{new}"}),
    Row("POST", TD + "/resolve", expect(200, SM_READ), body=["{new}"]),
    Row("GET", TD + "/{domain}", expect(200, SM_READ)),
    Row("PUT", TD + "/{domain}", expect(200, SM_MANAGE), body={"comment": "changed"}),
    Row("DELETE", TD + "/{domain}", expect(200, SM_MANAGE)),
    Row("POST", TD + "/{domain}", expect(200, SM_MANAGE)),
    Row("POST", TD + "/{domain}/refresh", expect(200, SM_MANAGE)),
    Row("GET", TD + "/{domain}/accounts", expect(200, SM_READ)),
    Row("POST", TD + "/{domain}/accounts/search", expect(200, SM_READ), body={"keywords": "x"}),
    Row("GET", TD + "/{domain}/accounts/{scanned}", expect(200, SM_READ)),
    Row("PUT", TD + "/{domain}/accounts/{scanned}", expect(200, SM_MANAGE), body={"ignored": True}),
    Row("PUT", TD + "/{domain}/accounts/batch/edit", expect(200, SM_MANAGE),
        body={"ids": ["{scanned}"], "changes": {"comment": "x"}}),
    Row("POST", TD + "/{domain}/accounts/batch/edit", expect(200, SM_MANAGE),
        body={"ids": ["{scanned}"], "changes": {"comment": "x"}}),
    Row("GET", TD + "/{domain}/managedaccounts", expect(200, SM_READ)),
    Row("POST", TD + "/{domain}/managedaccounts", expect(201, SM_MANAGE),
        body={"username": "{scanned_username}", "password_policy": {"id": "{policy}"}}),
    Row("POST", TD + "/{domain}/managedaccounts/search", expect(200, SM_READ), body={"keywords": "x"}),
    Row("GET", TD + "/{domain}/managedaccounts/{managed}", expect(200, SM_READ)),
    Row("PUT", TD + "/{domain}/managedaccounts/{managed}", expect(200, SM_MANAGE), body={"comment": "x"}),
    Row("DELETE", TD + "/{domain}/managedaccounts/{managed}", expect(200, SM_MANAGE)),
    Row("POST", TD + "/{domain}/managedaccounts/{managed}/rotate", expect(200, SM_READ)),
    Row("POST", TD + "/{domain}/managedaccounts/{managed}/password", expect(200, SM_READ),
        body={"password": "Set-by-test-1"}),
    Row("POST", TD + "/{domain}/managedaccounts/batch/create", expect(201, SM_MANAGE),
        body={"ids": ["{scanned}"], "data": {"password_policy": {"id": "{policy}"}}}),
    Row("POST", TD + "/{domain}/managedaccounts/batch/edit", expect(200, SM_MANAGE),
        body={"ids": ["{managed}"], "changes": {"comment": "x"}}),
    Row("POST", TD + "/{domain}/managedaccounts/batch/delete", expect(200, SM_MANAGE), body={"ids": ["{managed}"]}),
    Row("POST", TD + "/{domain}/managedaccounts/batch/rotate", expect(200, SM_READ), body={"ids": ["{managed}"]}),
]

WF = "/workflow-engine/api/v1"
NO_SUCH = "00000000-0000-4000-8000-00000000f0f0"  # no workflow or request has this id
WORKFLOW = {"name": "matrix-workflow", "grant_types": ["PERMANENT"], "target_roles": [{"id": "matrix-target"}],
            "requester_roles": [{"id": "matrix-requester"}],
            "steps": [{"match": "ANY", "approvers": [{"role": {"id": "matrix-approver"}}]}]}
WORKFLOW_ROWS = [
    Row("GET", WF + "/status", PUBLIC),
    Row("GET", WF + "/workflows", expect(200, SM_USERS)),
    Row("POST", WF + "/workflows", expect(201, {"admin"}), body=WORKFLOW),
    Row("GET", WF + f"/workflows/{NO_SUCH}", expect(404, SM_USERS)),
    Row("PUT", WF + f"/workflows/{NO_SUCH}", expect(404, {"admin"}), body=WORKFLOW),
    Row("DELETE", WF + f"/workflows/{NO_SUCH}", expect(404, {"admin"})),
    Row("GET", WF + "/requests?filter=requests", expect(200, SM_USERS)),
    Row("POST", WF + "/requests", expect(403, SM_USERS),  # no workflow offers the role
        body={"requested_role": {"id": "no-such-role"}, "grant_type": "PERMANENT"}),
    Row("GET", WF + f"/requests/{NO_SUCH}", expect(404, SM_USERS)),
    Row("DELETE", WF + f"/requests/{NO_SUCH}", expect(404, SM_USERS)),
    Row("POST", WF + f"/requests/{NO_SUCH}/decision", expect(404, SM_USERS), body={"step": 0, "decision": "APPROVED"}),
    Row("POST", WF + f"/requests/{NO_SUCH}/role/revoke", expect(404, SM_USERS)),
    Row("POST", WF + "/requests/search", expect(200, SM_USERS), body={}),
    Row("GET", WF + "/settings", expect(200, {"admin"})),
    Row("PUT", WF + "/settings", expect(200, {"admin"}), body={}),
    Row("POST", WF + "/testsmtp", expect(200, {"admin"}), body={}),  # no server set: status ERROR
]

SM_ROWS = WORKFLOW_ROWS + [
    Row("GET", SM + "/status", PUBLIC),
    Row("GET", SM + "/openapi.json", PUBLIC),
    Row("GET", SM + "/docs", PUBLIC),
    Row("GET", SM + "/docs/assets/swagger-ui-bundle.js", PUBLIC),
    Row("GET", "/metrics", PUBLIC),
    Row("GET", SM + "/audit-events", expect(200, {"admin"})),
    Row("POST", SM + "/audit/hash", expect(200, {"admin"}), body={"input": "hosts/{host}/root"}),
    Row("GET", SM + "/password-policies", expect(200, SM_READ)),
    Row("POST", SM + "/password-policy", expect(201, SM_MANAGE), body=POLICY),
    Row("GET", SM + "/password-policy/{policy}", expect(200, SM_READ)),
    Row("PUT", SM + "/password-policy/{policy}", expect(200, SM_MANAGE), body=POLICY),
    Row("DELETE", SM + "/password-policy/{spare_policy}", expect(200, SM_MANAGE)),
    Row("GET", SM + "/script-templates", expect(200, SM_MANAGE)),
    Row("POST", SM + "/script-template", expect(201, SM_MANAGE), body=TEMPLATE),
    Row("POST", SM + "/script-template/compile", expect(200, SM_MANAGE), body=COMPILE),
    Row("GET", SM + "/script-template/{template}", expect(200, SM_MANAGE)),
    Row("PUT", SM + "/script-template/{template}", expect(200, SM_MANAGE), body=TEMPLATE),
    Row("DELETE", SM + "/script-template/{template}", expect(200, SM_MANAGE)),
    Row("GET", SM + "/host-secret/{host}", expect(200, SM_READ)),
    Row("POST", SM + "/host-secret/{new_host}", expect(200, SM_READ), body=HOST),
    Row("DELETE", SM + "/host-secret/{host}", expect(200, SM_READ)),
    Row("POST", SM + "/rotate/{host}/root", expect(200, SM_READ)),
    Row("POST", SM + "/set-password/{host}/root", expect(200, SM_READ), body={"password": "Set-by-test-1"}),
    *_account_rows(SM),
    *_account_rows(AUTHORIZER),
    *TARGET_DOMAIN_ROWS,
]
