"""GET /status: liveness of the service and its database, no token needed."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from common.web import Blueprint, database, status_body

blp = Blueprint("vault_status", __name__, description="Service status")


@blp.route("/status")
class Status(MethodView):
    @blp.doc(security=[])  # no token needed: readiness probes call it
    @blp.response(200)
    @blp.alt_response(503, description="The database is unreachable")
    def get(self):
        """Service status"""
        healthy = database().ping()
        body = status_body(current_app, healthy=healthy, details={"database": "ok" if healthy else "unreachable"})
        return body, 200 if healthy else 503
