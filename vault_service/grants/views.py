"""PUT/GET /grants/{request_id} (ours): how the Secrets Manager tells the Vault the workflow
engine's grants (docs/API.md "Workflow engine", "Grants"). Its service identity only (the
`service` scope); users never see this route answer anything but 403."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from common import errors
from common.auth import scoped
from common.schemas import ErrorEnvelope, RequestBody, RoleRef, StrictInteger
from common.web import Blueprint
from vault_service.grants import service

blp = Blueprint("vault_grants", __name__, description="Workflow grants (the Secrets Manager's service link)")

SERVICE = "service"  # the Secrets Manager's client-credentials token
GRANT_TYPES = ("PERMANENT", "TIME_RESTRICTED", "FLOATING")


def _time(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(format="iso", allow_none=True, metadata={"format": "date-time"}, **kwargs)


class GrantState(RequestBody):
    """A grant as the Secrets Manager holds it, numbered by `sequence` (newer states only apply)."""

    user_id = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    role = fields.Nested(RoleRef, required=True)
    grant_type = fields.String(required=True, validate=validate.OneOf(GRANT_TYPES))
    grant_start = _time(load_default=None)
    grant_end = _time(load_default=None)
    floating_length = StrictInteger(load_default=0, validate=validate.Range(min=0, max=87600))  # hours
    unused_until = _time(load_default=None)
    ended = fields.Boolean(load_default=False)
    end_reason = fields.String(load_default="", validate=validate.Length(max=256))
    sequence = StrictInteger(required=True, validate=validate.Range(min=1))


class RoleView(Schema):
    id = fields.String()
    name = fields.String()


class Grant(Schema):
    request_id = fields.UUID()
    user_id = fields.String()
    role = fields.Nested(RoleView)
    grant_type = fields.String()
    grant_start = fields.String(allow_none=True)
    grant_end = fields.String(allow_none=True)
    floating_length = fields.Integer()
    unused_until = fields.String(allow_none=True)
    ended = fields.String(allow_none=True)
    end_reason = fields.String(allow_none=True)
    sequence = fields.Integer()
    live = fields.Boolean()
    applied = fields.Boolean(metadata={"description": "PUT: whether this state changed the grant"})


@blp.route("/grants/<uuid:request_id>")
class GrantOfRequest(MethodView):
    @scoped(SERVICE)
    @blp.arguments(GrantState)
    @blp.response(200, Grant)
    def put(self, state, request_id):
        """Apply a grant's state (idempotent: an older or repeated `sequence` changes nothing)"""
        row, applied = service.apply(request_id, state)
        if applied:
            current_app.extensions["grant_cache"].changed()
        return {**service.view(row), "applied": applied}

    @scoped(SERVICE)
    @blp.response(200, Grant)
    @blp.alt_response(404, schema=ErrorEnvelope)
    def get(self, request_id):
        """The grant as the Vault holds it"""
        row = service.find(request_id)
        if row is None:
            raise errors.NotFound("grant not found")
        return service.view(row)
