"""Request and response shapes of managed accounts and of their batches."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.schemas import CaseInsensitiveChoice, RequestBody, Role, RoleRef, SERVER_FILLED, body_sortkey, sorted_page_args
from common.timefmt import Rfc3339
from secrets_manager_service.fields import StrictBoolean, listing_of
from secrets_manager_service.target_domains.scanned.schemas import AccountSearch, Ids
from secrets_manager_service.target_domains.domains.schemas import (PolicyHandle, PolicyHandleBody, TargetDomainHandle,
                                                                    TargetDomainHandleBody)

MANAGED_STATES = ("PENDING", "ACTIVE", "FAILED", "REMOVED")
MANAGED_READ_ONLY = ("id", "username", "email", "full_name", "sam_account_name", "source_id", "security_id",
                     "additional_data", "state", "secret_name", "locked", "locked_timestamp", "rotation_history",
                     "checkouts", "last_error", "last_error_details", *SERVER_FILLED)


class ManagedChanges(RequestBody):
    enabled = StrictBoolean()
    rotation_enabled = StrictBoolean()
    explicit_checkout = StrictBoolean()
    disable_rdp_cert_auth = StrictBoolean()
    password_policy = fields.Nested(PolicyHandleBody)
    comment = fields.String(validate=validate.Length(max=1024))
    access_roles = fields.List(fields.Nested(RoleRef), validate=validate.Length(max=1000))


class ManagedAccountBody(ManagedChanges):
    """A managed account as PUT takes it."""

    IGNORED = MANAGED_READ_ONLY

    target_domain = fields.Nested(TargetDomainHandleBody)


class NewManagedAccount(ManagedAccountBody):
    """A create's body: `username` or `source_id` find the directory account; the rest of a read is echo."""

    IGNORED = tuple(f for f in MANAGED_READ_ONLY if f not in ("username", "source_id"))
    REQUIRED_ONE_OF = ("username", "source_id")

    username = fields.String(validate=validate.Length(min=1, max=1024))
    source_id = fields.String(validate=validate.Length(min=1, max=1024))
    password = fields.String(validate=validate.Length(min=1, max=1024), load_only=True)
    rotate = StrictBoolean()


class CreateData(ManagedChanges):
    rotate = StrictBoolean()


class ManagedBatchCreate(Ids):
    data = fields.Nested(CreateData, load_default=dict)


class ManagedBatchEdit(Ids):
    changes = fields.Nested(ManagedChanges, required=True)


class ManagedPassword(RequestBody):
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class RotationEvent(Schema):
    version = fields.Integer()
    rotated = Rfc3339()
    trigger = fields.String()
    status = fields.String()


class ManagedCheckout(Schema):
    id = fields.UUID()
    type = fields.String()
    user_id = fields.String()
    expires = Rfc3339()
    created = Rfc3339()
    explicit_checkout = fields.Boolean()
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    target_domain_id = fields.UUID()
    managed_account_id = fields.UUID()
    secret_name = fields.String()


class ManagedAccount(Schema):
    id = fields.UUID()
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    sam_account_name = fields.String()
    source_id = fields.String()
    security_id = fields.String()
    additional_data = fields.Dict(keys=fields.String(), values=fields.String())
    target_domain = fields.Nested(TargetDomainHandle)
    password_policy = fields.Nested(PolicyHandle)
    enabled = fields.Boolean()
    rotation_enabled = fields.Boolean()
    explicit_checkout = fields.Boolean()
    state = fields.String(metadata={"enum": list(MANAGED_STATES)})
    comment = fields.String()
    secret_name = fields.String()
    locked = fields.Boolean()
    locked_timestamp = Rfc3339()
    rotation_history = fields.List(fields.Nested(RotationEvent))
    checkouts = fields.List(fields.Nested(ManagedCheckout))
    disable_rdp_cert_auth = fields.Boolean()
    access_roles = fields.List(fields.Nested(Role))
    last_error = Rfc3339()
    last_error_details = fields.String(allow_none=True)
    created = Rfc3339()
    author = fields.String()
    updated = Rfc3339()
    updated_by = fields.String()


ManagedAccountList = listing_of(ManagedAccount, "ManagedAccountList")
ManagedPageArgs = sorted_page_args(("username", "state", "created", "updated"), "username")


class ManagedSearchBody(AccountSearch):
    sortkey = body_sortkey(ManagedPageArgs)
    enabled = StrictBoolean()
    state = CaseInsensitiveChoice(MANAGED_STATES)
    rotation_enabled = StrictBoolean()
    explicit_checkout = StrictBoolean()


class IdList(Schema):
    ids = fields.List(fields.UUID())
