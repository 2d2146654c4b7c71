"""Routes of account secrets and checkouts.

The app registers this blueprint twice: under the Secrets Manager's prefix and
under `/authorizer/api/v1`, where PrivX clients look for these routes.
"""
from __future__ import annotations

from flask import request
from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope
from common.web import Blueprint, empty
from secrets_manager_service.account_secrets import schemas, service
from common.schemas import merged_paging, split_keywords

blp = Blueprint("sm_account_secrets", __name__, description="Account secrets and checkouts")

USERS = ("admin", "user")


@blp.route("/secrets")
class AccountSecrets(MethodView):
    @scoped(*USERS)
    @blp.arguments(schemas.AccountSecretPageArgs, location="query")
    @blp.response(200, schemas.AccountSecretList)
    def get(self, args):
        """List the account secrets the caller may check out"""
        principal = current_principal()
        return service.list_page(principal, args)


@blp.route("/secrets/search")
class SearchAccountSecrets(MethodView):
    @scoped(*USERS)
    @blp.arguments(schemas.SearchBody)
    @blp.response(200, schemas.AccountSecretList)
    def post(self, body):
        """Search the account secrets the caller may check out"""
        principal = current_principal()
        args = merged_paging(request.args.to_dict(), body, schemas.AccountSecretPageArgs)
        keywords = split_keywords(body["keywords"])
        return service.list_page(principal, args, keywords=keywords, host_id=body["host_id"], username=body["username"],
                                 target_domain_id=body["target_domain_id"])


@blp.route("/secrets/checkouts")
class Checkouts(MethodView):
    @scoped(*USERS)
    @blp.arguments(schemas.CheckoutPageArgs, location="query")
    @blp.response(200, schemas.CheckoutList)
    def get(self, args):
        """List the caller's live checkouts"""
        principal = current_principal()
        return service.list_checkouts(principal, args)

    @scoped(*USERS)
    @blp.arguments(schemas.CheckoutBody)
    @blp.response(200, schemas.CheckoutList)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The policy's concurrent checkout limit is reached, or "
                      "the Vault has no password for the account (CONFIGURATION_ERROR)")
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable; nothing was checked out")
    def post(self, body):
        """Check out an account secret (or get the caller's live checkout of it)"""
        principal = current_principal()
        return service.check_out(principal, body["path"])


@blp.route("/secrets/checkouts/<uuid:checkout_id>")
class Checkout(MethodView):
    @scoped(*USERS)
    @blp.response(200, schemas.Checkout)
    @blp.alt_response(404, schema=ErrorEnvelope, description="No such live checkout of the caller's, or its holder "
                      "lost access to the account (the checkout is then over)")
    @blp.alt_response(409, schema=ErrorEnvelope, description="The Vault no longer has a password for the account")
    def get(self, checkout_id):
        """Read one of the caller's live checkouts (admin: anyone's)"""
        principal = current_principal()
        return service.get_checkout(principal, checkout_id)


@blp.route("/secrets/checkouts/<uuid:checkout_id>/release")
class ReleaseCheckout(MethodView):
    @scoped(*USERS)
    @blp.response(200)
    def post(self, checkout_id):
        """Release a checkout before it expires"""
        principal = current_principal()
        service.release(principal, checkout_id)
        return empty()
