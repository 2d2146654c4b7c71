"""Routes of target domains (the directory itself, its scans and resolve).

The scanned and managed accounts' routes are in scanned.views and managed.views, on
this blueprint (target_domains.routes gathers them). Every view checks the scope before it
reads a body (`scoped`), so a caller without the scope gets 403 whatever it sends.
"""
from __future__ import annotations

from flask import request, url_for
from flask.views import MethodView

from common import errors, strict_json
from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope, merged_paging
from common.openapi import TEXT_PATTERN
from common.web import Blueprint, created, empty, request_body
from secrets_manager_service.fields import DomainCreated
from secrets_manager_service.target_domains.domains import schemas, service

blp = Blueprint("sm_target_domains", __name__, description="Target domains: directory accounts")

READ = ("admin", "hostsManage", "service")
WRITE = ("admin", "hostsManage")
ROTATE = ("admin", "hostsManage", "service")


def json_body():
    """The raw JSON body (for routes whose body is not an object), as strict as every other body
    (common.strict_json: NUL, lone surrogates, duplicate keys, non-finite numbers are 400)."""
    raw = request_body(request)
    if not raw:
        raise errors.BadRequest("a JSON body is required")
    return strict_json.loads(raw)


@blp.route("/targetdomains")
class TargetDomains(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.DomainPageArgs, location="query")
    @blp.response(200, schemas.TargetDomainList)
    def get(self, args):
        """List target domains"""
        return service.list_page(args)

    @scoped(*WRITE)
    @blp.arguments(schemas.TargetDomainBody)
    @blp.response(201, DomainCreated)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The name is taken")
    @blp.alt_response(503, schema=ErrorEnvelope, description="The Vault is unreachable; nothing was changed")
    def post(self, body):
        """Create a target domain (an enabled one is scanned at once)"""
        domain_id = service.create(current_principal(), body)
        return created(url_for("sm_target_domains.TargetDomain", domain_id=domain_id), {"id": domain_id})


@blp.route("/targetdomains/search")
class SearchTargetDomains(MethodView):
    @scoped(*READ)
    @blp.arguments(schemas.DomainSearchBody)
    @blp.response(200, schemas.TargetDomainList)
    def post(self, body):
        """Search target domains"""
        args = merged_paging(request.args.to_dict(), body, schemas.DomainPageArgs)
        flags = {k: body[k] for k in ("enabled", "periodic_scan", "auto_onboarding") if k in body}
        return service.list_page(args, keywords=schemas.keywords_of(body["keywords"]), flags=flags)


@blp.route("/targetdomains/resolve")
class ResolveTargetDomains(MethodView):
    @scoped(*READ)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {
        "type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": TEXT_PATTERN}}}}})
    @blp.response(200, schemas.ResolvedList)
    def post(self):
        """Find target domains' ids by name (case-insensitive); unknown names are left out"""
        return service.resolve(json_body())


@blp.route("/targetdomains/<uuid:domain_id>")
class TargetDomain(MethodView):
    @scoped(*READ)
    @blp.response(200, schemas.TargetDomain)
    def get(self, domain_id):
        """Read a target domain (never a bind password)"""
        return service.get(domain_id)

    @scoped(*WRITE)
    @blp.arguments(schemas.TargetDomainChanges(partial=True))
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The name is taken")
    def put(self, body, domain_id):
        """Change a target domain: the fields sent change, the others stay"""
        service.update(current_principal(), domain_id, body)
        return empty()

    @scoped(*WRITE)
    @blp.response(200)
    def delete(self, domain_id):
        """Delete a target domain with its accounts and their passwords"""
        service.delete(domain_id)
        return empty()

    @scoped(*WRITE)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The domain is disabled")
    def post(self, domain_id):
        """Queue a scan (the PrivX Python SDK's refresh)"""
        service.refresh(domain_id)
        return empty()


@blp.route("/targetdomains/<uuid:domain_id>/refresh")
class RefreshTargetDomain(MethodView):
    @scoped(*WRITE)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope, description="The domain is disabled")
    def post(self, domain_id):
        """Queue a scan of the directory"""
        service.refresh(domain_id)
        return empty()
