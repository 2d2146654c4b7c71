"""The LDAP driver against a real slapd: binds, TLS checks, paged reads, Password Modify."""
from __future__ import annotations

import dataclasses

import pytest

from secrets_manager_service.drivers import ldap as driver
from common.devtools import slapd
from common.devtools.slapd import CertificateAuthority


def endpoint(directory, *, protocol="LDAP", address="127.0.0.1", password=None, ca=None, skip=False, type="LDAP"):
    port = directory.tls_port if protocol == "LDAPS" else directory.port
    unbound = driver.Endpoint(type=type, protocol=protocol, address=address, port=port, bind_dn=slapd.BIND_DN,
                              bind_password=directory.bind_password if password is None else password,
                              root_certificates=directory.ca.ca_pem if ca is None else ca,
                              skip_strict_cert_check=skip)
    return dataclasses.replace(unbound, bound_to=unbound.fingerprint)  # its password was set for it


def test_binds_and_reads_in_pages(directory):
    with driver.connect(endpoint(directory)) as conn:
        pages = list(conn.pages(slapd.PEOPLE, "(objectClass=inetOrgPerson)", ["uid"], page_size=7))
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    uids = {attrs["uid"][0].decode() for page in pages for _, attrs in page}
    assert uids == {f"user{i}" for i in range(1, 31)}


def test_a_wrong_bind_password_is_a_clear_error_without_the_password(directory):
    with pytest.raises(driver.BindRefused) as caught:
        with driver.connect(endpoint(directory, password="not-the-password")):
            pass
    assert str(caught.value) == f"bind failed: invalid credentials (49) on ldap://127.0.0.1:{directory.port}"


@pytest.mark.parametrize("protocol", ["LDAPS", "STARTTLS"])
def test_tls_with_the_test_ca(directory, protocol):
    with driver.connect(endpoint(directory, protocol=protocol)) as conn:
        assert conn.supports_password_modify()


@pytest.mark.parametrize("protocol", ["LDAPS", "STARTTLS"])
def test_a_certificate_of_another_ca_is_rejected(directory, tmp_path, protocol):
    other = CertificateAuthority(tmp_path / "other", common_name="another CA")
    with pytest.raises(driver.DirectoryError) as caught:
        with driver.connect(endpoint(directory, protocol=protocol, ca=other.ca_pem)):
            pass
    assert str(caught.value).startswith("TLS: ")
    if protocol == "LDAPS":
        assert "certificate verify failed" in str(caught.value)


def test_a_certificate_for_another_name_is_rejected(directory):
    # 127.0.0.2 is the same slapd, but the certificate names only 127.0.0.1 and localhost.
    with pytest.raises(driver.DirectoryError) as caught:
        with driver.connect(endpoint(directory, protocol="LDAPS", address="127.0.0.2")):
            pass
    assert "certificate verify failed" in str(caught.value)
    # ... which the (tests-only) skip switch turns off, chain check included.
    with driver.connect(endpoint(directory, protocol="LDAPS", address="127.0.0.2", ca="", skip=True)):
        pass


def test_the_system_trust_store_does_not_trust_the_test_ca(directory):
    with pytest.raises(driver.DirectoryError, match="certificate verify failed"):
        with driver.connect(endpoint(directory, protocol="LDAPS", ca="")):
            pass


def test_password_modify_resets_a_password(own_directory):
    old = own_directory.password_of("user2")
    with driver.connect(endpoint(own_directory)) as conn:
        conn.set_password(own_directory.user_dn("user2"), "Brand-new-1!")
    assert own_directory.binds("user2", "Brand-new-1!")
    assert not own_directory.binds("user2", old)
    ep = endpoint(own_directory)
    assert driver.check_password(ep, own_directory.user_dn("user2"), "Brand-new-1!", {ep.fingerprint})
    assert not driver.check_password(ep, own_directory.user_dn("user2"), old, {ep.fingerprint})


def test_an_unreachable_directory(own_directory):
    own_directory.stop()
    with pytest.raises(driver.DirectoryError) as caught:
        with driver.connect(endpoint(own_directory)):
            pass
    assert str(caught.value) == f"cannot connect to ldap://127.0.0.1:{own_directory.port}: Connection refused"


def test_ad_needs_encryption(directory):
    with pytest.raises(driver.DirectoryError, match="LDAPS or STARTTLS"):
        with driver.connect(endpoint(directory, type="AD")):
            pass


def test_guid_and_sid_forms():
    import uuid

    guid = uuid.uuid4()
    assert driver.guid_text(guid.bytes_le) == str(guid)
    # S-1-5-21-1-2-3-500
    raw = bytes([1, 5]) + (5).to_bytes(6, "big") + b"".join(n.to_bytes(4, "little") for n in (21, 1, 2, 3, 500))
    assert driver.sid_text(raw) == "S-1-5-21-1-2-3-500"
