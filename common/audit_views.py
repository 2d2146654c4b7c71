"""GET /audit-events: the audit trail for admins, with filters and paging."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from common import audit
from common.auth import scoped
from common.schemas import PageArgs, CaseInsensitiveChoice
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


def audit_blueprint(name: str) -> Blueprint:
    blp = Blueprint(name, __name__, description="Audit trail")

    @blp.route("/audit-events")
    class AuditEvents(MethodView):
        @scoped("admin")
        @blp.arguments(AuditArgs, location="query")
        @blp.response(200, AuditEventList)
        def get(self, args):
            """Audit events of this service (admins only)"""
            total, rows = audit.search(database(), current_app.config["SERVICE_NAME"], filters=args,
                                       offset=args["offset"], limit=args["limit"], sortdir=args["sortdir"])
            return {"count": total, "items": rows}

    return blp
