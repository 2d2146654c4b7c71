"""A stored password goes only where it was set for (issue 18), through the real stack: the
Secrets Manager under gunicorn on a database of its own, the real Vault, the worker as its own
process (`secrets-manager-worker run --once`), and hostile servers of the test's own on
127.0.0.1 that record whatever a client hands them (tests/secrets_manager/hostile.py).

- Credential binding: a re-pointed host, a changed directory endpoint (transport downgrade,
  TLS trust, a new endpoint) gets no stored password, account or bind, until a caller sends it
  again for the new endpoint; nothing even connects there, and the reason is on the account
  (`last_error_details`) or the domain (`scan_message`).
- No password in clear text: the PostgreSQL driver refuses cleartext and MD5 password
  requests, the SSH driver refuses a host key it was not given.
- The bind account is refused for onboarding whatever the spelling of its DN.
- An `ENTRA` endpoint gets the contract's `endpoints.N.type` message.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from common.devtools import slapd
from secrets_manager_service.drivers import binding
from tests import support
from tests.secrets_manager.helpers import SM, LiveSmApi
from tests.secrets_manager.hostile import BindRecordingLdap, PasswordPhishingPostgres
from tests.sm_rotation import pg_target

pytestmark = pytest.mark.slow

TD = "/targetdomains"
NOT_BOUND = "the password was not changed: the stored passwords are not bound to the target's endpoint"


@pytest.fixture(scope="module")
def stack(db_server, sm_config):
    """The Secrets Manager under gunicorn on a fresh database, and a way to run its worker once."""
    with support.fresh_database(db_server, "sm_binding") as url:
        env = {**{key: str(value) for key, value in sm_config.items()}, "DATABASE_URL": url}
        with support.gunicorn("secrets_manager_service.wsgi:app", env, health_path=SM + "/status") as base:
            yield {"base": base, "env": env, "db": url}


@pytest.fixture(scope="module")
def api(stack, tokens):
    return LiveSmApi(stack["base"], tokens)


def run_worker(stack) -> None:
    """One pass of the real worker process (rotations, scans, auto-onboarding)."""
    done = subprocess.run([sys.executable, "-m", "secrets_manager_service.worker", "run", "--once"],
                          env={**os.environ, **stack["env"]}, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def db_execute(stack, query: str, *params):
    with psycopg.connect(stack["db"], autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    reason = slapd.available()
    if reason:
        pytest.skip(reason)
    with slapd.Slapd(tmp_path_factory.mktemp("binding-slapd"), users=5) as server:
        yield server


# --- hosts ---------------------------------------------------------------------------


def _pg_host(api, policy, *, address, port, account, password=None, host_id=None, **metadata) -> str:
    return api.host(policy, host_id=host_id, protocol="POSTGRESQL", address=address, port=port,
                    accounts={account: password}, **metadata)


def _rotate(api, stack, host_id, account) -> dict:
    assert api.post(f"/rotate/{host_id}/{account}").status_code == 200
    run_worker(stack)
    return api.account(host_id, account)


def test_a_repointed_host_gets_no_stored_password(api, stack, target, vault_reader):
    initial = "initial-" + uuid.uuid4().hex
    role = target["new_role"](initial)
    policy = api.policy(number_of_retries=0)
    host_id = _pg_host(api, policy, address=target["host"], port=target["port"], account=role, password=initial)
    path = f"hosts/{host_id}/{role}"
    # Where it was set for, the password works: a rotation goes through.
    account = _rotate(api, stack, host_id, role)
    assert account["last_error_details"] is None, account
    current = vault_reader.newest(path)
    assert current != initial and pg_target.can_login(target["host"], target["port"], role, current)

    versions = len(vault_reader.versions(path))
    with PasswordPhishingPostgres() as hostile:
        # Seen 1: a caller with hostsManage points the host at its own server, without a password.
        _pg_host(api, policy, address=hostile.address, port=hostile.port, account=role, host_id=host_id)
        account = _rotate(api, stack, host_id, role)
        assert hostile.connections == 0  # nothing even connected there
        assert account["last_error_details"].startswith(NOT_BOUND), account
        assert str(hostile.port) in account["last_error_details"]
        assert vault_reader.newest(path) == current and len(vault_reader.versions(path)) == versions  # nor was anything written

        # The caller gives a password for the new endpoint: now it may be sent there, but never
        # in clear text (the server asks for it in clear; the driver refuses).
        assert api.post(f"/set-password/{host_id}/{role}", json={"password": "given-for-the-new-one"}).status_code == 200
        account = _rotate(api, stack, host_id, role)
        assert hostile.connections >= 1 and hostile.passwords == []
        assert "clear text or as MD5" in account["last_error_details"], account


@pytest.mark.parametrize("method", ["cleartext", "md5"])
def test_no_password_goes_in_clear_text_or_md5(api, stack, method):
    with PasswordPhishingPostgres(method) as hostile:
        host_id = _pg_host(api, api.policy(number_of_retries=0), address=hostile.address,
                           port=hostile.port, account="app", password="stored-" + uuid.uuid4().hex)
        account = _rotate(api, stack, host_id, "app")
        assert hostile.connections >= 1  # the endpoint is the one the password was set for...
        assert hostile.passwords == []  # ...yet nothing a password could be read from arrived
        assert "no password was sent" in account["last_error_details"], account


def test_an_ssh_host_key_or_known_hosts_change_sends_nothing(api, stack, tmp_path):
    import paramiko

    from tests.sm_rotation.ssh_server import fake_ssh_host

    template = api.post("/script-template", json={"name": support.unique("chpasswd"), "operating_system": "LINUX",
                                                  "script": "echo {{ .Username }}:{{ .Password }} | chpasswd\n"})
    wrong, right = tmp_path / "wrong_known_hosts", tmp_path / "known_hosts"
    with fake_ssh_host(tmp_path / "ssh", {"alice": "alice-old"}) as ssh:
        other = paramiko.ECDSAKey.generate()
        wrong.write_text(f"[{ssh.address}]:{ssh.port} {other.get_name()} {other.get_base64()}\n")
        right.write_text(ssh.known_hosts_line())
        policy = api.policy(number_of_retries=0)
        settings = dict(protocol="SSH", address=ssh.address, port=ssh.port,
                        script_template_id=template.get_json()["id"])
        # A host key other than the one it was given: no login is tried.
        host_id = api.host(policy, certificate_validation_options=str(wrong), accounts={"alice": "alice-old"},
                           **settings)
        account = _rotate(api, stack, host_id, "alice")
        assert ssh.auth_attempts == [] and "host key" in account["last_error_details"], account
        # Its host keys (TLS trust) changed: the stored password is not sent until given again.
        api.host(policy, host_id=host_id, certificate_validation_options=str(right), accounts={"alice": None},
                 **settings)
        account = _rotate(api, stack, host_id, "alice")
        assert ssh.auth_attempts == [] and account["last_error_details"].startswith(NOT_BOUND), account
        api.host(policy, host_id=host_id, certificate_validation_options=str(right), accounts={"alice": "alice-old"},
                 **settings)
        account = _rotate(api, stack, host_id, "alice")
        assert account["last_error_details"] is None and ssh.auth_attempts == ["alice"], account


# --- target domains ------------------------------------------------------------------


def _endpoint(address: str, port: int, **overrides) -> dict:
    body = {"type": "LDAP", "ldap_protocol": "LDAP", "ldap_address": address, "ldap_port": port,
            "ldap_base_dn": slapd.PEOPLE, "ldap_bind_dn": slapd.BIND_DN}
    body.update(overrides)
    return body


def _domain(api, endpoints: list[dict], **overrides) -> str:
    response = api.post(TD, json={"name": support.unique("domain"), "endpoints": endpoints, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _scan(api, stack, domain_id: str) -> dict:
    assert api.post(f"{TD}/{domain_id}/refresh").status_code == 200
    run_worker(stack)
    return api.get(f"{TD}/{domain_id}").get_json()


def _accounts(api, domain_id: str) -> dict:
    return {a["username"]: a for a in api.get(f"{TD}/{domain_id}/accounts").get_json()["items"]}


def test_an_added_endpoint_never_gets_an_accounts_password(api, stack, directory, vault_reader):
    real = _endpoint("127.0.0.1", directory.port, ldap_bind_password=directory.bind_password)
    domain_id = _domain(api, [real])
    assert _scan(api, stack, domain_id)["scan_status"] == "DONE"
    policy = api.policy(number_of_retries=0, verify_after_rotation=True)
    directory.set_password("user2", "Known-password-2!")
    created = api.post(f"{TD}/{domain_id}/managedaccounts",
                       json={"username": "user2", "password": "Known-password-2!", "password_policy": {"id": policy}})
    assert created.status_code == 201, created.get_json()
    managed_id = created.get_json()["id"]
    path = f"targetdomains/{domain_id}/{managed_id}"

    with BindRecordingLdap() as hostile:
        # Seen 1: the caller adds its own endpoint (its own bind DN and password), first in
        # rotation order, and keeps the real one without its password.
        evil = _endpoint(hostile.address, hostile.port, ldap_bind_dn="cn=evil,dc=example,dc=test",
                         ldap_bind_password="evil-bind-password", rotation_priority=0, scan_priority=9)
        kept = {**real, "rotation_priority": 1}
        kept.pop("ldap_bind_password")
        assert api.put(f"{TD}/{domain_id}", json={"endpoints": [evil, kept]}).status_code == 200
        assert api.post(f"{TD}/{domain_id}/managedaccounts/{managed_id}/rotate").status_code == 200
        run_worker(stack)
        # The account's password was set for the real endpoint: the rotation never went to the
        # added one, and took place on the real one.
        assert hostile.connections == 0
        account = api.get(f"{TD}/{domain_id}/managedaccounts/{managed_id}").get_json()
        assert account["state"] == "ACTIVE" and account["last_error_details"] is None, account
        new_password = vault_reader.newest(path)
        assert new_password != "Known-password-2!" and directory.binds("user2", new_password)


def test_a_transport_downgrade_keeps_no_bind_password(api, stack, tmp_path):
    bind_password = "bind-" + uuid.uuid4().hex
    with BindRecordingLdap() as hostile:
        endpoint = _endpoint(hostile.address, hostile.port, ldap_protocol="STARTTLS", ldap_bind_password=bind_password)
        domain_id = _domain(api, [endpoint])
        scanned = _scan(api, stack, domain_id)
        # StartTLS refused: the scan ends there, nothing falls back to plain LDAP.
        assert scanned["scan_status"] == "FAILED" and "StartTLS" in scanned["scan_message"], scanned
        assert hostile.binds == []
        # Seen 6: the same endpoint in plain LDAP, with strict checks off, or other root
        # certificates, without the password sent again: 400, and nothing changes.
        kept = {k: v for k, v in endpoint.items() if k != "ldap_bind_password"}
        (tmp_path / "ca").mkdir()
        ca_pem = slapd.CertificateAuthority(tmp_path / "ca").ca_pem
        for change in ({"ldap_protocol": "LDAP"}, {"ldap_skip_strict_cert_check": True},
                       {"ldap_root_certificates": ca_pem}, {"ldap_bind_dn": "cn=other,dc=example,dc=test"}):
            response = api.put(f"{TD}/{domain_id}", json={"endpoints": [{**kept, **change}]})
            assert response.status_code == 400, (change, response.get_json())
            assert response.get_json()["property"] == "endpoints.0.ldap_bind_password"
            assert response.get_json()["error_code"] == "REQUIRED_VALUE_MISSING"
        # Sent back unchanged, it keeps its password.
        assert api.put(f"{TD}/{domain_id}", json={"endpoints": [kept]}).status_code == 200

        # However the stored endpoint came to differ from the one the password was set for (an
        # older row, a change made around the API), the scan sends it nowhere, and says why.
        db_execute(stack, """UPDATE sm_target_domains SET endpoints = jsonb_set(endpoints, '{0,ldap_protocol}',
                             '"LDAP"') WHERE id = %s""", domain_id)
        connections = hostile.connections
        scanned = _scan(api, stack, domain_id)
        assert scanned["scan_status"] == "FAILED" and hostile.connections == connections and hostile.binds == []
        assert "no stored password is bound to ldap://" in scanned["scan_message"], scanned
        assert bind_password not in scanned["scan_message"]

        # Plain LDAP with the password given for it: the configuration asks for it, so it goes.
        plain = {**kept, "ldap_protocol": "LDAP", "ldap_bind_password": "plain-" + bind_password}
        assert api.put(f"{TD}/{domain_id}", json={"endpoints": [plain]}).status_code == 200
        assert _scan(api, stack, domain_id)["scan_status"] == "DONE"
        assert hostile.binds_with_password() == [(slapd.BIND_DN, "plain-" + bind_password)]


@pytest.mark.parametrize("spelling", [
    "commonName=binder,ou=service,dc=example,dc=test",
    "2.5.4.3=binder,ou=service,dc=example,dc=test",
    "CN=Binder, OU=Service, DC=example, DC=test",
    "cn=bin\\64er,ou=service,dc=example,dc=test",
])
def test_the_bind_account_is_never_onboarded_however_spelled(api, stack, directory, spelling):
    policy = api.policy()
    domain_id = _domain(api, [_endpoint("127.0.0.1", directory.port, ldap_bind_dn=spelling,
                                        ldap_bind_password=directory.bind_password, ldap_base_dn=slapd.SUFFIX,
                                        ldap_user_filter="(|(cn=binder)(uid=user1))",
                                        attribute_mapping={"username": "cn"})],
                        auto_onboarding=True, auto_onboarding_policy={"id": policy})
    assert _scan(api, stack, domain_id)["scan_status"] == "DONE"
    run_worker(stack)  # (auto-onboarding ran right after the scan)
    accounts = _accounts(api, domain_id)
    assert len(accounts) == 2 and accounts.pop("binder")["state"] == "UNMANAGED"
    assert [a["state"] for a in accounts.values()] == ["MANAGED"]  # user1: onboarding ran
    accounts = _accounts(api, domain_id)
    # What the directory said its bind account is (WhoAmI) is kept with the domain.
    said = db_execute(stack, "SELECT bind_account_dns FROM sm_target_domains WHERE id = %s", domain_id)[0][0]
    assert [dn.lower() for dn in said] == [slapd.BIND_DN]
    for body in ({"username": "binder"}, {"source_id": accounts["binder"]["source_id"]}):
        response = api.post(f"{TD}/{domain_id}/managedaccounts", json=body)
        assert response.status_code == 400 and "cut the domain off" in response.get_json()["error_message"]
    response = api.post(f"{TD}/{domain_id}/managedaccounts/batch/create",
                        json={"ids": [accounts["binder"]["id"]], "data": {}})
    assert response.status_code == 400 and "cut the domain off" in response.get_json()["error_message"]


def test_a_bind_account_managed_before_the_guards_is_never_reset(api, stack, directory):
    domain_id = _domain(api, [_endpoint("127.0.0.1", directory.port, ldap_bind_dn="2.5.4.3=binder,ou=service,"
                                        "dc=example,dc=test", ldap_bind_password=directory.bind_password,
                                        ldap_base_dn=slapd.SUFFIX, ldap_user_filter="(cn=binder)",
                                        attribute_mapping={"username": "cn"})])
    assert _scan(api, stack, domain_id)["scan_status"] == "DONE"
    binder = _accounts(api, domain_id)["binder"]
    # As an older version onboarded it (its DN spelled otherwise than the endpoint's bind DN).
    managed_id, policy = str(uuid.uuid4()), api.policy(number_of_retries=0)
    endpoints = api.get(f"{TD}/{domain_id}").get_json()["endpoints"]
    db_execute(stack, """INSERT INTO sm_td_managed_accounts (id, domain_id, account_id, password_policy_id, author,
                         updated_by, bound_endpoints) VALUES (%s, %s, %s, %s, 'older', 'older', %s)""",
               managed_id, domain_id, binder["id"], policy, [binding.saved_endpoint_fingerprint(e) for e in endpoints])
    assert api.post(f"{TD}/{domain_id}/managedaccounts/{managed_id}/rotate").status_code == 200
    run_worker(stack)
    account = api.get(f"{TD}/{domain_id}/managedaccounts/{managed_id}").get_json()
    assert "the endpoint's bind account" in account["last_error_details"], account
    assert _scan(api, stack, domain_id)["scan_status"] == "DONE"  # its bind password still works


def test_an_entra_endpoint_gets_the_contracts_message(api):
    endpoint = {"type": "ENTRA", "entra_tenant_id": str(uuid.uuid4()), "entra_client_id": str(uuid.uuid4()),
                "entra_client_secret": "s3cret", "entra_base_url": "https://graph.microsoft.com"}
    for extra in ({}, _endpoint("127.0.0.1", 389, ldap_bind_password="x")):
        response = api.post(TD, json={"name": support.unique("entra"), "endpoints": [{**extra, **endpoint}]})
        body = response.get_json()
        assert response.status_code == 400, body
        assert body["property"] == "endpoints.0.type", body
        assert body["error_message"] == "endpoint type ENTRA is not supported: use LDAP or AD", body
        assert body["error_code"] == "VALUE_INCORRECT_FORMAT"
        assert "s3cret" not in json.dumps(body)


def test_the_fingerprints_are_the_drivers(api, stack, directory):
    """What the services store is what the drivers check (a second spelling of the rule would drift)."""
    host_id = api.host(api.policy(), protocol="POSTGRESQL", address="db.example.test", port=6432,
                       certificate_validation_options="verify-full", accounts={"app": "pw"})
    (stored,), = db_execute(stack, "SELECT bound_endpoint FROM sm_accounts WHERE host_id = %s", host_id)
    assert stored == binding.host_fingerprint("POSTGRESQL", "db.example.test", 6432, "verify-full")


BINDER = "cn=binder,ou=service,dc=example,dc=test"


@pytest.mark.parametrize("spelling, same", [
    ("commonName=binder,ou=service,dc=example,dc=test", True),
    ("2.5.4.3=binder,organizationalUnitName=service,0.9.2342.19200300.100.1.25=example,domainComponent=test", True),
    ("CN=Binder , OU=Service,DC=Example,DC=TEST", True),
    ("cn=#0c0662696e646572,ou=service,dc=example,dc=test", True),  # BER UTF8String "binder"
    ("cn=#040662696e646572,ou=service,dc=example,dc=test", True),  # BER OCTET STRING
    ("cn=bin\\64er,ou=service,dc=example,dc=test", True),
    ("cn=\\62inder,ou=service,dc=example,dc=test", True),
    ("cn=binder2,ou=service,dc=example,dc=test", False),
    ("uid=binder,ou=service,dc=example,dc=test", False),
    ("cn=binder,ou=people,dc=example,dc=test", False),
    ("cn=binder+uid=x,ou=service,dc=example,dc=test", False),
])
def test_dns_compare_by_identity_not_spelling(spelling, same):
    from secrets_manager_service.drivers.dn import canonical_dn

    assert (canonical_dn(spelling) == canonical_dn(BINDER)) is same


def test_multi_valued_rdns_compare_in_any_order():
    from secrets_manager_service.drivers.dn import canonical_dn

    assert canonical_dn("cn=a+uid=b,dc=test") == canonical_dn("UID=b + commonName=A,dc=test")
