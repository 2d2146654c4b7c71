"""Request and response shapes of the workflow engine: the PrivX SDKs' models (privx-sdk-go
api/workflow/model.go), field for field, with Go's zero values taken as "not set"."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from common.schemas import (CaseInsensitiveChoice, PageArgs, PagingInBody, Role, RoleRef,
                            StrictInteger, BoundedList, body_sortkey, keywords_field, sorted_page_args)
from common.timefmt import Rfc3339
from secrets_manager_service.fields import EchoTolerant, IdOnly, StrictBoolean, listing_of

GRANT_TYPES = ("PERMANENT", "TIME_RESTRICTED", "FLOATING")
MATCHES = ("ANY", "ALL")
DECISIONS = ("APPROVED", "DENIED")
FILTERS = ("requests", "active_requests", "approvals", "active_approvals", "all")
PROTOCOLS = ("SMTP", "SMTPS", "STARTTLS")
MAX_STEPS = 3
MAX_TEXT = 4096
MAX_APPROVERS = 10  # approver roles in one step: PrivX's default request_role_max_approvers, and its most here
ONLY_GRANT = "not supported: roles come from the identity provider, and this suite only adds (GRANT)"


def _text(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=MAX_TEXT), **kwargs)


class StepApproverBody(EchoTolerant):
    role = fields.Nested(RoleRef, required=True)


class StepBody(EchoTolerant):
    name = fields.String(validate=validate.Length(max=256))
    match = CaseInsensitiveChoice(MATCHES, required=True)
    # Bounded here by the most the setting allows; a lower setting is checked in service.
    approvers = BoundedList(fields.Nested(StepApproverBody), max_items=MAX_APPROVERS, required=True,
                            validate=validate.Length(min=1))


class WorkflowBody(EchoTolerant):
    """A Workflow as a client sends it (POST, PUT)."""

    IGNORED = ("id", "author", "created", "updated", "updated_by", "path", "created_by")

    name = fields.String(required=True, validate=validate.Length(min=1, max=256))
    grant_types = BoundedList(CaseInsensitiveChoice(GRANT_TYPES), max_items=3, required=True,
                              validate=validate.Length(min=1))
    max_time_restricted_duration = StrictInteger(load_default=0, validate=validate.Range(min=0, max=3650))  # days
    max_floating_duration = StrictInteger(load_default=0, validate=validate.Range(min=0, max=87600))  # hours
    max_active_requests = StrictInteger(load_default=1, validate=validate.Range(min=1, max=1000))
    target_roles = BoundedList(fields.Nested(RoleRef), max_items=100, required=True, validate=validate.Length(min=1))
    requester_roles = BoundedList(fields.Nested(RoleRef), max_items=100, required=True,
                                  validate=validate.Length(min=1))
    # REMOVE and BOTH are read (for their clear 400) but not offered: GRANT is the one valid value.
    action = CaseInsensitiveChoice(("GRANT", "REMOVE", "BOTH"), load_default="GRANT", metadata={"enum": ["GRANT"]})
    can_bypass_revoke_workflow = StrictBoolean(load_default=False)  # kept; this suite has no revoke workflow
    requires_justification = StrictBoolean(load_default=False)
    comment = _text(load_default="")
    steps = BoundedList(fields.Nested(StepBody), max_items=MAX_STEPS, required=True,
                        validate=validate.Length(min=1, max=MAX_STEPS))

    @validates_schema
    def _only_grant(self, data, **kwargs):
        if data.get("action", "GRANT") != "GRANT":
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: {data['action']} is {ONLY_GRANT}", "action")


class _Stored(Schema):
    """What the server fills in on both models (the PrivX models' common header)."""

    id = fields.UUID()
    author = fields.String()
    created = Rfc3339()
    updated = Rfc3339()
    updated_by = fields.String()
    name = fields.String()


class WorkflowRole(Role):
    pass


class WorkflowStepApprover(Schema):
    id = fields.String()
    role = fields.Nested(WorkflowRole)


class WorkflowStep(Schema):
    id = fields.String()
    name = fields.String()
    match = fields.String()
    approvers = fields.List(fields.Nested(WorkflowStepApprover))


class Workflow(_Stored):
    grant_types = fields.List(fields.String())
    max_time_restricted_duration = fields.Integer()
    max_floating_duration = fields.Integer()
    max_active_requests = fields.Integer()
    target_roles = fields.List(fields.Nested(WorkflowRole))
    requester_roles = fields.List(fields.Nested(WorkflowRole))
    action = fields.String()
    can_bypass_revoke_workflow = fields.Boolean()
    requires_justification = fields.Boolean()
    comment = fields.String()
    steps = fields.List(fields.Nested(WorkflowStep))


WorkflowList = listing_of(Workflow, "WorkflowList")


class WorkflowCreated(IdOnly):
    pass


class RequestCreated(IdOnly):
    pass


class UserRef(EchoTolerant):
    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    display_name = fields.String(validate=validate.Length(max=256))
    deleted = fields.Boolean()  # echoed by clients; ignored


class AccessRequestBody(EchoTolerant):
    """An AccessRequest as a client sends it (POST /requests). The server-filled fields a Go
    client sends with every request (requester, status, steps, approver_can_revoke, ...) are
    ignored: approver_can_revoke is always true here."""

    IGNORED = ("id", "author", "created", "updated", "updated_by", "path", "created_by", "name", "requester",
               "status", "steps", "approver_can_revoke", "target_role_revoked", "target_role_revocation_time",
               "target_role_revoked_by", "workflow", "target_roles")

    requested_role = fields.Nested(RoleRef, required=True)
    request_justification = _text(load_default="")
    grant_type = CaseInsensitiveChoice(GRANT_TYPES, required=True)
    grant_start = fields.AwareDateTime(format="iso", metadata={"format": "date-time"})
    grant_end = fields.AwareDateTime(format="iso", metadata={"format": "date-time"})
    floating_length = StrictInteger(validate=validate.Range(min=1, max=87600))  # hours
    target_user = fields.Nested(UserRef)
    # REMOVE and BOTH are read (for their clear 400) but not offered: GRANT is the one valid value.
    action = CaseInsensitiveChoice(("GRANT", "REMOVE", "BOTH"), load_default="GRANT", metadata={"enum": ["GRANT"]})
    comment = _text(load_default="")

    @validates_schema
    def _only_grant(self, data, **kwargs):
        if data.get("action", "GRANT") != "GRANT":
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: {data['action']} is {ONLY_GRANT}", "action")


class WorkflowUser(Schema):
    id = fields.String()
    display_name = fields.String()
    deleted = fields.Boolean()


class RequestStepApprover(Schema):
    id = fields.String()
    role = fields.Nested(WorkflowRole)
    decision = fields.String()
    user = fields.Nested(WorkflowUser, allow_none=True)
    decision_time = fields.String(allow_none=True, metadata={"format": "date-time"})
    comment = fields.String()


class RequestStep(Schema):
    id = fields.String()
    name = fields.String()
    match = fields.String()
    approvers = fields.List(fields.Nested(RequestStepApprover))


class AccessRequest(_Stored):
    workflow = fields.String(allow_none=True)
    requester = fields.Nested(WorkflowUser)
    requested_role = fields.Nested(WorkflowRole)
    request_justification = fields.String()
    grant_type = fields.String()
    grant_start = Rfc3339()
    grant_end = Rfc3339()
    floating_length = fields.Integer()
    target_user = fields.Nested(WorkflowUser)
    action = fields.String()
    status = fields.String()
    comment = fields.String()
    steps = fields.List(fields.Nested(RequestStep))
    approver_can_revoke = fields.Boolean()
    target_role_revoked = fields.Boolean()
    target_role_revocation_time = Rfc3339()
    target_role_revoked_by = fields.Nested(WorkflowUser, allow_none=True)


AccessRequestList = listing_of(AccessRequest, "AccessRequestList")


class DecisionBody(EchoTolerant):
    step = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_STEPS - 1))
    decision = CaseInsensitiveChoice(DECISIONS, required=True)
    comment = _text(load_default="")


class RevokeBody(EchoTolerant):
    """No fields: the revoke takes no body, `{}` or an empty one."""


class RequestListArgs(PageArgs):
    filter = CaseInsensitiveChoice(FILTERS, required=True)


SearchPageArgs = type("SearchPageArgs", (sorted_page_args(("created", "updated", "status"), "created"),), {
    "filter": CaseInsensitiveChoice(FILTERS),
})


class AccessRequestSearch(PagingInBody):
    keywords = keywords_field()
    start_time = fields.AwareDateTime(format="iso", metadata={"format": "date-time"})
    end_time = fields.AwareDateTime(format="iso", metadata={"format": "date-time"})
    filter = CaseInsensitiveChoice(FILTERS, metadata={"enum": [*FILTERS, ""]})
    sortkey = body_sortkey(SearchPageArgs)  # documented as checked: `make fuzz` sent one the query refused


class WorkflowSettingsBody(EchoTolerant):
    smtp_server = fields.String(load_default="", validate=validate.Length(max=253))
    smtp_server_port = StrictInteger(load_default=25, validate=validate.Range(min=1, max=65535))
    request_role_max_approvers = StrictInteger(load_default=MAX_APPROVERS, validate=validate.Range(min=1, max=MAX_APPROVERS))
    smtp_server_enabled = StrictBoolean(load_default=False)
    privx_backend_address = fields.String(load_default="", validate=validate.Length(max=2048))
    smtp_server_username = fields.String(load_default="", validate=validate.Length(max=256))
    smtp_server_password = fields.String(validate=validate.Length(max=1024), load_only=True)  # write only
    smtp_server_protocol = CaseInsensitiveChoice(PROTOCOLS, load_default="SMTP")
    smtp_sender_address = fields.String(load_default="", validate=validate.Length(max=320))
    smtp_retry_attempts = StrictInteger(load_default=3, validate=validate.Range(min=0, max=20))
    smtp_server_insecure_verify = StrictBoolean(load_default=False)


class WorkflowSettings(Schema):
    smtp_server = fields.String()
    smtp_server_port = fields.Integer()
    request_role_max_approvers = fields.Integer()
    smtp_server_enabled = fields.Boolean()
    privx_backend_address = fields.String()
    smtp_server_username = fields.String()
    smtp_server_password = fields.String(metadata={"description": "write only: reads give \"\""})
    smtp_server_protocol = fields.String()
    smtp_sender_address = fields.String()
    smtp_retry_attempts = fields.Integer()
    smtp_server_insecure_verify = fields.Boolean()


class SMTPResponse(Schema):
    status = fields.String(metadata={"enum": ["OK", "ERROR"]})
    details = fields.String()
