"""A target domain's saved LDAP endpoints as the directory driver connects to them."""
from __future__ import annotations

from secrets_manager_service.drivers import ldap as ldap_driver
from secrets_manager_service.target_domains import bind_passwords


def endpoints_in_order(domain: dict, priority: str) -> list[dict]:
    return [e for _, e in sorted(enumerate(domain["endpoints"]), key=lambda pair: (pair[1][priority], pair[0]))]


def endpoint_of(saved: dict, passwords: dict[str, str]) -> ldap_driver.Endpoint:
    """The driver's endpoint, with the bind password stored under its fingerprint (bind_passwords.read)."""
    key = bind_passwords.key(saved)
    return ldap_driver.Endpoint(
        type=saved["type"], protocol=saved["ldap_protocol"], address=saved["ldap_address"], port=saved["ldap_port"],
        bind_dn=saved["ldap_bind_dn"], bind_password=passwords.get(key, ""),
        root_certificates=saved["ldap_root_certificates"], skip_strict_cert_check=saved["ldap_skip_strict_cert_check"],
        bound_to=key if key in passwords else None)
