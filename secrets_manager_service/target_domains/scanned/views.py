"""Routes of scanned accounts (the directory's users as the last complete scan found them)."""
from __future__ import annotations

from flask import request
from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import merged_paging
from common.web import empty
from secrets_manager_service.target_domains.scanned import schemas
from secrets_manager_service.target_domains.scanned import service as scanned
from secrets_manager_service.target_domains.domains.schemas import keywords_of
from secrets_manager_service.target_domains.domains.views import READ, WRITE, blp

SEARCH_FILTERS = ("created_after", "created_before", "updated_after", "updated_before", "state", "ignored")


@blp.route("/targetdomains/<uuid:domain_id>/accounts")
class ScannedAccounts(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.ScannedPageArgs, location="query")
    @blp.response(200, schemas.ScannedAccountList)
    def get(self, args, domain_id):
        """List a target domain's scanned accounts"""
        return scanned.list_page(domain_id, args)


@blp.route("/targetdomains/<uuid:domain_id>/accounts/search")
class SearchScannedAccounts(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.ScannedSearchBody)
    @blp.response(200, schemas.ScannedAccountList)
    def post(self, body, domain_id):
        """Search a target domain's scanned accounts"""
        args = merged_paging(request.args.to_dict(), body, schemas.ScannedPageArgs)
        filters = {k: body[k] for k in SEARCH_FILTERS if k in body}
        return scanned.list_page(domain_id, args, keywords=keywords_of(body["keywords"]), filters=filters)


@blp.route("/targetdomains/<uuid:domain_id>/accounts/<uuid:account_id>")
class ScannedAccount(MethodView):
    @scoped(*READ)
    @blp.response(200, schemas.ScannedAccount)
    def get(self, domain_id, account_id):
        """Read a scanned account"""
        return scanned.get(domain_id, account_id)

    @scoped(*WRITE)
    @blp.arguments(schemas.ScannedAccountBody)
    @blp.response(200)
    def put(self, body, domain_id, account_id):
        """Set a scanned account's `ignored` and `comment`"""
        scanned.update(current_principal(), domain_id, account_id, body)
        return empty()


@blp.route("/targetdomains/<uuid:domain_id>/accounts/batch/edit")
class BatchEditScannedAccounts(MethodView):
    @scoped(*WRITE)
    @blp.arguments(schemas.ScannedBatchEdit)
    @blp.response(200)
    def put(self, body, domain_id):
        """Set `ignored`/`comment` of up to 100 scanned accounts (all or nothing; the Python SDK's method)"""
        scanned.batch_update(current_principal(), domain_id, body["ids"], body["changes"])
        return empty()

    @scoped(*WRITE)
    @blp.arguments(schemas.ScannedBatchEdit)
    @blp.response(200)
    def post(self, body, domain_id):
        """The same as PUT (the Go SDK's method)"""
        scanned.batch_update(current_principal(), domain_id, body["ids"], body["changes"])
        return empty()
