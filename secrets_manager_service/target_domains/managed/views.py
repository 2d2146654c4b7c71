"""Routes of managed directory accounts: onboarding, changes, rotation, passwords, batches."""
from __future__ import annotations

from flask import request, url_for
from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope, merged_paging
from common.web import created, empty
from secrets_manager_service.fields import ManagedAccountCreated
from secrets_manager_service.target_domains.domains.schemas import keywords_of
from secrets_manager_service.target_domains.domains.views import READ, ROTATE, WRITE, blp
from secrets_manager_service.target_domains.managed import schemas
from secrets_manager_service.target_domains.managed import service as managed

SEARCH_FILTERS = ("created_after", "created_before", "updated_after", "updated_before", "state", "enabled",
                  "rotation_enabled", "explicit_checkout")
BASE = "/targetdomains/<uuid:domain_id>/managedaccounts"


@blp.route(BASE)
class ManagedAccounts(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.ManagedPageArgs, location="query")
    @blp.response(200, schemas.ManagedAccountList)
    def get(self, args, domain_id):
        """List a target domain's managed accounts"""
        return managed.list_page(domain_id, args)

    @scoped(*WRITE)
    @blp.arguments(schemas.NewManagedAccount)
    @blp.response(201, ManagedAccountCreated)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The account is managed already")
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable; nothing was changed")
    def post(self, body, domain_id):
        """Onboard one of the domain's scanned accounts (by source_id or username)"""
        managed_id = managed.create(current_principal(), domain_id, body)
        location = url_for("sm_target_domains.ManagedAccount", domain_id=domain_id, managed_id=managed_id)
        return created(location, {"id": managed_id})


@blp.route(BASE + "/search")
class SearchManagedAccounts(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.ManagedSearchBody)
    @blp.response(200, schemas.ManagedAccountList)
    def post(self, body, domain_id):
        """Search a target domain's managed accounts"""
        args = merged_paging(request.args.to_dict(), body, schemas.ManagedPageArgs)
        filters = {k: body[k] for k in SEARCH_FILTERS if k in body}
        return managed.list_page(domain_id, args, keywords=keywords_of(body["keywords"]), filters=filters)


@blp.route(BASE + "/<uuid:managed_id>")
class ManagedAccount(MethodView):
    @scoped(*READ)
    @blp.response(200, schemas.ManagedAccount)
    def get(self, domain_id, managed_id):
        """Read a managed account (never its password)"""
        return managed.get(domain_id, managed_id)

    @scoped(*WRITE)
    @blp.arguments(schemas.ManagedAccountBody)
    @blp.response(200)
    def put(self, body, domain_id, managed_id):
        """Change a managed account: the fields sent change, the others stay"""
        managed.update(current_principal(), domain_id, managed_id, body)
        return empty()

    @scoped(*WRITE)
    @blp.response(200)
    def delete(self, domain_id, managed_id):
        """Stop managing an account: its Vault secret goes, its checkouts end"""
        managed.delete(domain_id, managed_id)
        return empty()


@blp.route(BASE + "/<uuid:managed_id>/rotate")
class RotateManagedAccount(MethodView):
    @scoped(*ROTATE)
    @blp.response(200)
    def post(self, domain_id, managed_id):
        """Queue a rotation of the account's password in the directory"""
        managed.queue_rotation(domain_id, managed_id)
        return empty()


@blp.route(BASE + "/<uuid:managed_id>/password")
class SetManagedPassword(MethodView):
    @scoped(*ROTATE)
    @blp.arguments(schemas.ManagedPassword)
    @blp.response(200)
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable")
    def post(self, body, domain_id, managed_id):
        """Store the password the account has in the directory, as its current version"""
        managed.set_password(domain_id, managed_id, body["password"])
        return empty()


@blp.route(BASE + "/batch/create")
class BatchCreateManagedAccounts(MethodView):
    @scoped(*WRITE)
    @blp.arguments(schemas.ManagedBatchCreate)
    @blp.response(201, schemas.IdList)
    def post(self, body, domain_id):
        """Onboard up to 100 scanned accounts with the same settings (all or nothing)"""
        return {"ids": managed.batch_create(current_principal(), domain_id, body["ids"], body["data"])}


@blp.route(BASE + "/batch/edit")
class BatchEditManagedAccounts(MethodView):
    @scoped(*WRITE)
    @blp.arguments(schemas.ManagedBatchEdit)
    @blp.response(200)
    def post(self, body, domain_id):
        """Change up to 100 managed accounts (only the given fields; all or nothing)"""
        managed.batch_update(current_principal(), domain_id, body["ids"], body["changes"])
        return empty()


@blp.route(BASE + "/batch/delete")
class BatchDeleteManagedAccounts(MethodView):
    @scoped(*WRITE)
    @blp.arguments(schemas.Ids)
    @blp.response(200)
    def post(self, body, domain_id):
        """Stop managing up to 100 accounts (all or nothing)"""
        managed.batch_delete(domain_id, body["ids"])
        return empty()


@blp.route(BASE + "/batch/rotate")
class BatchRotateManagedAccounts(MethodView):
    @scoped(*ROTATE)
    @blp.arguments(schemas.Ids)
    @blp.response(200)
    def post(self, body, domain_id):
        """Queue one rotation for each of up to 100 managed accounts"""
        managed.batch_rotate(domain_id, body["ids"])
        return empty()
