"""Request and response shapes of host secrets (a host's managed accounts)."""
from __future__ import annotations

from marshmallow import Schema, fields, pre_load, validate

from common.schemas import CaseInsensitiveChoice, RequestBody, Role, RoleRef
from common.timefmt import Rfc3339
from secrets_manager_service.fields import EchoTolerant, StrictBoolean, StrictInteger
from secrets_manager_service.names import ACCOUNT_FIELD, MAX_ACCOUNT_LENGTH, validate_account

PROTOCOLS = ("SSH", "POSTGRESQL", "NONE")
OPERATING_SYSTEMS = ("LINUX", "WINDOWS")
MAX_ACCOUNTS = 1000
MAX_PASSWORD_LENGTH = 4096


class HostMetadataBody(EchoTolerant):
    # Fields of the PrivX Go SDK's HostSecret this suite has no use for: accepted, not stored.
    IGNORED = (*EchoTolerant.IGNORED, "access_group_id", "winrm_host_certificate_trust_anchors")

    host_id = fields.UUID(metadata={"description": "Optional; when given, the host_id of the URL."})
    address = fields.String(required=True, validate=validate.Length(min=1, max=255))
    port = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535))
    operating_system = CaseInsensitiveChoice(OPERATING_SYSTEMS, load_default="LINUX")
    protocol = CaseInsensitiveChoice(PROTOCOLS, required=True)
    certificate_validation_options = fields.String(load_default=None, allow_none=True,
                                                   validate=validate.Length(max=4096))
    use_main_account = StrictBoolean(load_default=False)
    main_account = fields.String(load_default=None, allow_none=True, validate=validate_account,
                                 metadata={**ACCOUNT_FIELD, "description": "Required when use_main_account is "
                                                                           "true: one of the host's accounts."})
    password_policy_id = fields.UUID(required=True)
    script_template_id = fields.UUID(load_default=None, allow_none=True)
    access_roles = fields.List(fields.Nested(RoleRef), load_default=list, validate=validate.Length(max=1000))

    @pre_load
    def _policy_id_alias(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # PrivX clients call it policy_id as well; the longer name wins when both come.
        if "policy_id" in data:
            alias = data.pop("policy_id")
            data.setdefault("password_policy_id", alias)
        return data


class AccountBody(EchoTolerant):
    # What a read returns; `host_id` (the Go SDK sends it) must equal the URL's (RequestBody).
    IGNORED = ("last_rotated", "last_error", "last_error_details", "rotation_initiate", *EchoTolerant.IGNORED)

    account = fields.String(required=True, validate=validate_account, metadata=ACCOUNT_FIELD)
    initial_password = fields.String(validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))


class HostSecretBody(RequestBody):
    metadata = fields.Nested(HostMetadataBody, required=True)
    accounts = fields.List(fields.Nested(AccountBody), load_default=list, validate=validate.Length(max=MAX_ACCOUNTS))


class HostMetadata(Schema):
    host_id = fields.UUID()
    address = fields.String()
    port = fields.Integer()
    operating_system = fields.String()
    protocol = fields.String()
    certificate_validation_options = fields.String(allow_none=True)
    use_main_account = fields.Boolean()
    main_account = fields.String(allow_none=True)
    password_policy_id = fields.UUID()
    policy_id = fields.UUID()
    script_template_id = fields.UUID(allow_none=True)
    access_roles = fields.List(fields.Nested(Role))
    created = Rfc3339()
    updated = Rfc3339()
    created_by = fields.String()
    updated_by = fields.String()


class Account(Schema):
    account = fields.String(metadata={"maxLength": MAX_ACCOUNT_LENGTH})
    last_rotated = Rfc3339()
    last_error = Rfc3339(metadata={"description": "when the last rotation failure happened (null: none since the last success)"})
    last_error_details = fields.String(allow_none=True, metadata={"description": "what the last failure was"})
    created = Rfc3339()
    created_by = fields.String()


class HostSecret(Schema):
    metadata = fields.Nested(HostMetadata)
    accounts = fields.List(fields.Nested(Account))


class NewPassword(RequestBody):
    password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))
