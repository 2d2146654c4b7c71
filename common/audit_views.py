"""GET /audit-events: the audit trail for admins, with filters and paging."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from common import audit, audit_store, errors
from common.auth import scoped
from common.schemas import CaseInsensitiveChoice, PageArgs, RequestBody
from common.timefmt import Rfc3339
from common.web import Blueprint, database


class AuditArgs(PageArgs):
    sortdir = CaseInsensitiveChoice(("ASC", "DESC"), load_default="DESC")
    principal = fields.String(validate=validate.Length(max=256))
    action = fields.String(validate=validate.Length(max=64))
    target = fields.String(validate=validate.Length(max=512))
    outcome = CaseInsensitiveChoice((audit.SUCCESS, audit.DENIED, audit.NOT_FOUND, audit.FAILED))
    request_id = fields.String(validate=validate.Length(max=128))
    since = fields.AwareDateTime(metadata={"description": "RFC 3339, inclusive"})
    until = fields.AwareDateTime(metadata={"description": "RFC 3339, exclusive"})


class AuditEvent(Schema):
    id = fields.Integer()
    occurred = Rfc3339()
    request_id = fields.String(allow_none=True)
    principal = fields.String(allow_none=True)
    action = fields.String()
    target = fields.String()
    outcome = fields.String()
    details = fields.Dict()


class AuditEventList(Schema):
    count = fields.Integer()
    items = fields.List(fields.Nested(AuditEvent))


class HashInput(RequestBody):
    input = fields.String(required=True, validate=validate.Length(min=1, max=8192),
                          metadata={"description": "the value to hash, e.g. a secret's audit target secret:NAME"})


class HashOutput(Schema):
    hash = fields.String(metadata={"description": "hmac-sha256:<hex>, as the audit sinks show the value"})


def audit_blueprint(name: str) -> Blueprint:
    blp = Blueprint(name, __name__, description="Audit trail")

    @blp.route("/audit-events")
    class AuditEvents(MethodView):
        @scoped("admin")
        @blp.arguments(AuditArgs, location="query")
        @blp.response(200, AuditEventList)
        def get(self, args):
            """Audit events of this service (admins only)"""
            total, rows = audit_store.search(database(), current_app.config["SERVICE_NAME"], filters=args,
                                       offset=args["offset"], limit=args["limit"], sortdir=args["sortdir"])
            return {"count": total, "items": rows}

    @blp.route("/audit/hash")
    class AuditHash(MethodView):
        @scoped("admin")
        @blp.arguments(HashInput)
        @blp.response(200, HashOutput)
        def post(self, body):
            """HMAC a value as the audit sinks do (after HashiCorp Vault's sys/audit-hash; admins only)

            The audit stream shows identifying values as HMAC-SHA256 with AUDIT_HMAC_KEY; this
            gives the hash of a known value, to search the SIEM for it. 400 when no key is set."""
            redactor = current_app.extensions["audit_pump"].redactor
            if not redactor.enabled:
                raise errors.ApiError("no AUDIT_HMAC_KEY is set: the audit stream carries values unhashed",
                                      code="CONFIGURATION_ERROR").with_status(400)
            return {"hash": redactor.hash(body["input"])}

    return blp
