"""GET /status: liveness of the service, its database and the Vault, no token needed."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from common.web import Blueprint, database, status_body
from secrets_manager_service.account_passwords import vault

blp = Blueprint("sm_status", __name__, description="Service status")


@blp.route("/status")
class Status(MethodView):
    @blp.doc(security=[])  # no token needed: readiness probes call it
    @blp.response(200)
    @blp.alt_response(503, description="The database or the Vault is unreachable")
    def get(self):
        """Service status"""
        checks = {"database": database().ping(), "vault": vault().ping()}
        healthy = all(checks.values())
        details = {name: "ok" if ok else "unreachable" for name, ok in checks.items()}
        body = status_body(current_app, healthy=healthy, details=details)
        return body, 200 if healthy else 503
