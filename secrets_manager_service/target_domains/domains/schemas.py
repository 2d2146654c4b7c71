"""Request and response shapes of target domains and their endpoints.

Bodies load with `partial` on PUT (fields left out are kept), so no field here has a
load default: the service fills the create defaults. Bodies build on RequestBody: `null`,
`""`, the Go SDK's zero time and zero integers of fields that cannot be 0 mean "not set",
exactly as if left out, and the server-filled fields of a read are ignored.
"""
from __future__ import annotations

import ssl

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from common.schemas import (CaseInsensitiveChoice, PagingInBody, RequestBody, SERVER_FILLED, body_sortkey, keywords_field,
                            sorted_page_args, split_keywords)
from common.timefmt import Rfc3339
from secrets_manager_service.fields import StrictBoolean, StrictInteger, listing_of
from secrets_manager_service.target_domains import ldap_syntax

ENDPOINT_TYPES = ("LDAP", "AD")
PROTOCOLS = ("LDAP", "LDAPS", "STARTTLS")
MAPPED_FIELDS = ("username", "email", "full_name", "source_id", "security_id", "sam_account_name")
SECRET_ATTRIBUTES = {"userpassword", "unicodepwd"}
MAX_ENDPOINTS = 8
# Server-filled fields: ignored in bodies, so a client may send back what it read.
DOMAIN_READ_ONLY = ("id", "scan_status", "scan_message", "last_scanned", *SERVER_FILLED)
ENTRA_REFUSED = "VALUE_INCORRECT_FORMAT: endpoint type ENTRA is not supported: use LDAP or AD"
ENTRA_FIELDS = ("entra_base_url", "entra_tenant_id", "entra_client_id", "entra_client_secret", "entra_batch_size",
                "entra_page_size", "entra_group_filter")


def _validate_host(value: str) -> None:
    if not ldap_syntax.is_host(value):
        raise ValidationError("VALUE_INCORRECT_FORMAT: must be a host name or an IP address")


def _validate_dn(value: str) -> None:
    if not ldap_syntax.is_dn(value):
        raise ValidationError("VALUE_INCORRECT_FORMAT: must be a distinguished name (RFC 4514)")


def _validate_filter(value: str) -> None:
    if not ldap_syntax.is_filter(value):
        raise ValidationError("VALUE_INCORRECT_FORMAT: must be an LDAP filter (RFC 4515), e.g. (objectClass=person)")


def _validate_mapping(mapping: dict) -> None:
    for key, attribute in mapping.items():
        if not ldap_syntax.is_attribute(attribute):
            raise ValidationError(f"VALUE_INCORRECT_FORMAT: {key}: {attribute!r} is not an attribute name")
        if attribute.lower() in SECRET_ATTRIBUTES:
            raise ValidationError(f"INVALID_REQUEST_DATA: {key}: password attributes cannot be mapped")


def _validate_certificates(pem: str) -> None:
    if not pem.strip():
        return
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError, TypeError):  # TypeError: text that is not ASCII
        raise ValidationError("VALUE_INCORRECT_FORMAT: no PEM certificate could be read") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValidationError("VALUE_INCORRECT_FORMAT: no PEM certificate could be read")


class EndpointBody(RequestBody):
    type = CaseInsensitiveChoice(ENDPOINT_TYPES)
    scan_priority = StrictInteger(validate=validate.Range(min=0, max=1_000_000))
    rotation_priority = StrictInteger(validate=validate.Range(min=0, max=1_000_000))
    attribute_mapping = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                                    values=fields.String(validate=validate.Length(min=1, max=128),
                                                         metadata={"pattern": ldap_syntax.ATTRIBUTE_PATTERN}),
                                    validate=[validate.Length(max=64), _validate_mapping])
    ldap_protocol = CaseInsensitiveChoice(PROTOCOLS, required=True)
    ldap_address = fields.String(required=True, validate=[validate.Length(min=1, max=ldap_syntax.MAX_HOST_LENGTH), _validate_host],
                                 metadata={"pattern": ldap_syntax.HOST_PATTERN})
    ldap_port = StrictInteger(validate=validate.Range(min=1, max=65535))
    ldap_base_dn = fields.String(required=True, validate=[validate.Length(min=1, max=1024), _validate_dn],
                                 metadata={"pattern": ldap_syntax.DN_PATTERN})
    ldap_bind_dn = fields.String(required=True, validate=validate.Length(min=1, max=1024),
                                 metadata={"pattern": ldap_syntax.BIND_NAME_PATTERN})
    ldap_bind_password = fields.String(validate=validate.Length(max=1024), load_only=True)
    ldap_user_filter = fields.String(validate=[validate.Length(max=4096), _validate_filter])
    ldap_root_certificates = fields.String(validate=[validate.Length(max=256 * 1024), _validate_certificates])
    ldap_skip_strict_cert_check = StrictBoolean()

    @pre_load
    def _no_entra(self, data, **kwargs):
        # ENTRA's settings must be empty: the Go SDK sends them as zero values. An endpoint of
        # type ENTRA is refused by its `type` (the contract's message), whatever else it carries.
        if isinstance(data, dict):
            if isinstance(data.get("type"), str) and data["type"].upper() == "ENTRA":
                raise ValidationError({"type": [ENTRA_REFUSED]})
            for key in ENTRA_FIELDS:
                if key in data and data[key] not in (None, "", 0, [], {}):
                    raise ValidationError({key: ["INVALID_REQUEST_DATA: Entra ID endpoints are not supported"]})
            data = {k: v for k, v in data.items() if k not in ENTRA_FIELDS}
        return data


class PolicyHandleBody(RequestBody):
    id = fields.String(validate=validate.Length(max=64))
    name = fields.String()  # echoed back from a read; ignored
    deleted = fields.Boolean()  # likewise


class TargetDomainBody(RequestBody):
    IGNORED = DOMAIN_READ_ONLY

    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    domain_name = fields.String(validate=validate.Length(max=256))
    enabled = StrictBoolean()
    periodic_scan = StrictBoolean()
    periodic_scan_interval = StrictInteger(validate=validate.Range(min=1, max=43200))
    auto_onboarding = StrictBoolean()
    auto_onboarding_policy = fields.Nested(PolicyHandleBody)
    endpoints = fields.List(fields.Nested(EndpointBody), required=True,
                            validate=validate.Length(min=1, max=MAX_ENDPOINTS))
    comment = fields.String(validate=validate.Length(max=1024))


class TargetDomainChanges(TargetDomainBody):
    """A PUT's body: loaded with partial=True, so what it leaves out stays."""


class PolicyHandle(Schema):
    id = fields.String()
    name = fields.String()
    deleted = fields.Boolean()


class TargetDomainHandleBody(RequestBody):
    """`target_domain` as a client echoes it: checked against the URL's domain by the service."""

    id = fields.String()
    name = fields.String()
    deleted = fields.Boolean()


class TargetDomainHandle(Schema):
    id = fields.UUID()
    name = fields.String()
    deleted = fields.Boolean()


class Endpoint(Schema):
    type = fields.String()
    scan_priority = fields.Integer()
    rotation_priority = fields.Integer()
    attribute_mapping = fields.Dict(keys=fields.String(), values=fields.String())
    ldap_protocol = fields.String()
    ldap_address = fields.String()
    ldap_port = fields.Integer()
    ldap_base_dn = fields.String()
    ldap_bind_dn = fields.String()
    ldap_user_filter = fields.String()
    ldap_root_certificates = fields.String()
    ldap_skip_strict_cert_check = fields.Boolean()


class TargetDomain(Schema):
    id = fields.UUID()
    name = fields.String()
    domain_name = fields.String()
    enabled = fields.Boolean()
    periodic_scan = fields.Boolean()
    periodic_scan_interval = fields.Integer()
    scan_status = fields.String(metadata={"enum": ["NOT_SCANNED", "PENDING", "SCANNING", "DONE", "FAILED"]})
    scan_message = fields.String()
    last_scanned = Rfc3339()
    auto_onboarding = fields.Boolean()
    auto_onboarding_policy = fields.Nested(PolicyHandle, allow_none=True)
    endpoints = fields.List(fields.Nested(Endpoint))
    comment = fields.String()
    created = Rfc3339()
    author = fields.String()
    updated = Rfc3339()
    updated_by = fields.String()


TargetDomainList = listing_of(TargetDomain, "TargetDomainList")
DomainPageArgs = sorted_page_args(("name", "domain_name", "created", "updated"), "name")


class DomainSearchBody(PagingInBody):
    sortkey = body_sortkey(DomainPageArgs)
    keywords = keywords_field()
    enabled = StrictBoolean()
    periodic_scan = StrictBoolean()
    auto_onboarding = StrictBoolean()


class Resolved(Schema):
    id = fields.UUID()
    target_domain_name = fields.String()


ResolvedList = listing_of(Resolved, "ResolvedTargetDomains")


def keywords_of(text: str) -> list[str]:
    """Comma/space separated keywords, lower-cased."""
    return [k.lower() for k in split_keywords(text)]
