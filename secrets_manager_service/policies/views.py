"""Routes of password policies."""
from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope
from common.web import Blueprint, created, empty
from secrets_manager_service.fields import PolicyCreated
from secrets_manager_service.policies import schemas, service

blp = Blueprint("sm_policies", __name__, description="Password policies")

MANAGE = ("admin", "hostsManage")
READ = ("admin", "hostsManage", "service")


@blp.route("/password-policies")
class PasswordPolicies(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.PolicyPageArgs, location="query")
    @blp.response(200, schemas.PasswordPolicyList)
    def get(self, args):
        """List password policies"""
        return service.list_page(args)


@blp.route("/password-policy")
class NewPasswordPolicy(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.PasswordPolicyBody)
    @blp.response(201, PolicyCreated)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, body):
        """Create a password policy"""
        principal = current_principal()
        policy_id = service.create(principal.sub, body)
        return created(url_for("sm_policies.PasswordPolicy", policy_id=policy_id), {"id": policy_id})


@blp.route("/password-policy/<uuid:policy_id>")
class PasswordPolicy(MethodView):
    @scoped(*READ)
    @blp.response(200, schemas.PasswordPolicy)
    def get(self, policy_id):
        """Read a password policy"""
        return service.get(policy_id)

    @scoped(*MANAGE)
    @blp.arguments(schemas.PasswordPolicyBody)
    @blp.response(200)
    def put(self, body, policy_id):
        """Replace a password policy's settings"""
        principal = current_principal()
        service.replace(principal.sub, policy_id, body)
        return empty()

    @scoped(*MANAGE)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def delete(self, policy_id):
        """Delete a password policy no host uses"""
        service.delete(policy_id)
        return empty()
