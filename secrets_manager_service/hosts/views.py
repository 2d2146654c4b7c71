"""Routes of host secrets, rotation requests and password changes."""
from __future__ import annotations

from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope
from common.web import Blueprint, empty
from secrets_manager_service.hosts import schemas, service

blp = Blueprint("sm_hosts", __name__, description="Host secrets and their accounts")

MANAGE = ("admin", "hostsManage", "service")


@blp.route("/host-secret/<uuid_text:host_id>")
class HostSecret(MethodView):
    @scoped(*MANAGE)
    @blp.response(200, schemas.HostSecret)
    def get(self, host_id):
        """Read a host's settings and accounts (never a password)"""
        return service.get(host_id)

    @scoped(*MANAGE)
    @blp.arguments(schemas.HostSecretBody)
    @blp.response(200, schemas.HostSecret)
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable; nothing was changed")
    def post(self, body, host_id):
        """Register a host with its accounts, or replace its registration"""
        principal = current_principal()
        return service.save(principal, host_id, body)

    @scoped(*MANAGE)
    @blp.response(200)
    def delete(self, host_id):
        """Remove a host, its accounts and their passwords"""
        service.delete(host_id)
        return empty()


@blp.route("/rotate/<uuid_text:host_id>/<account:account>")
class Rotate(MethodView):
    @scoped(*MANAGE)
    @blp.response(200)
    def post(self, host_id, account):
        """Queue a rotation of the account's password"""
        service.queue_rotation(host_id, account)
        return empty()


@blp.route("/set-password/<uuid_text:host_id>/<account:account>")
class SetPassword(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.NewPassword)
    @blp.response(200)
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable")
    def post(self, body, host_id, account):
        """Store a password the account already has on its host, as its newest version"""
        service.set_password(host_id, account, body["password"])
        return empty()
