"""Routes of the workflow engine, served by the Secrets Manager under /workflow-engine/api/v1."""
from __future__ import annotations

from flask import current_app, request, url_for
from flask.views import MethodView

from common import errors, strict_json
from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope, merged_paging, split_keywords
from common.web import Blueprint, created, database, empty, request_body
from secrets_manager_service.status.views import Status as SecretsManagerStatus
from secrets_manager_service.workflows import schemas, service

blp = Blueprint("workflow_engine", __name__, description="Workflow engine")

ANYONE = ("admin", "user")


# The engine is the Secrets Manager's: its status is the same (database and Vault, no token).
blp.route("/status", endpoint="Status")(SecretsManagerStatus)


@blp.route("/workflows")
class Workflows(MethodView):
    @scoped(*ANYONE)
    @blp.arguments(schemas.PageArgs, location="query")
    @blp.response(200, schemas.WorkflowList)
    def get(self, args):
        """List workflows (a user sees those they may request under)"""
        return service.list_workflows(database(), current_principal(), args)

    @scoped("admin")
    @blp.arguments(schemas.WorkflowBody)
    @blp.response(201, schemas.WorkflowCreated)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, body):
        """Create a workflow"""
        workflow_id = service.create_workflow(database(), current_principal(), body)
        return created(url_for("workflow_engine.Workflow", workflow_id=workflow_id), {"id": workflow_id})


@blp.route("/workflows/<uuid:workflow_id>")
class Workflow(MethodView):
    @scoped(*ANYONE)
    @blp.response(200, schemas.Workflow)
    def get(self, workflow_id):
        """Read a workflow"""
        return service.get_workflow(database(), current_principal(), workflow_id)

    @scoped("admin")
    @blp.arguments(schemas.WorkflowBody)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def put(self, body, workflow_id):
        """Replace a workflow"""
        service.replace_workflow(database(), current_principal(), workflow_id, body)
        return empty()

    @scoped("admin")
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def delete(self, workflow_id):
        """Delete a workflow without WAITING requests (its live grants end)"""
        service.delete_workflow(database(), workflow_id)
        return empty()


@blp.route("/requests")
class Requests(MethodView):
    @scoped(*ANYONE)
    @blp.arguments(schemas.RequestListArgs, location="query")
    @blp.response(200, schemas.AccessRequestList)
    def get(self, args):
        """List access requests by filter"""
        return service.list_requests(database(), current_principal(), filter_name=args["filter"], paging=args)

    @scoped(*ANYONE)
    @blp.arguments(schemas.AccessRequestBody)
    @blp.response(201, schemas.RequestCreated)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, body):
        """Request a role"""
        request_id = service.create_request(database(), current_principal(), body)
        return created(url_for("workflow_engine.AccessRequest", request_id=request_id), {"id": request_id})


@blp.route("/requests/<uuid:request_id>")
class AccessRequest(MethodView):
    @scoped(*ANYONE)
    @blp.response(200, schemas.AccessRequest)
    def get(self, request_id):
        """Read an access request"""
        return service.get_request(database(), current_principal(), request_id)

    @scoped(*ANYONE)
    @blp.response(200)
    def delete(self, request_id):
        """Delete an access request (its live grant ends)"""
        service.delete_request(database(), current_principal(), request_id)
        return empty()


@blp.route("/requests/<uuid:request_id>/decision")
class Decision(MethodView):
    @scoped(*ANYONE)
    @blp.arguments(schemas.DecisionBody)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, body, request_id):
        """Approve or deny the current step of a request"""
        service.decide(database(), current_principal(), request_id, body)
        return empty()


@blp.route("/requests/<uuid:request_id>/role/revoke")
class Revoke(MethodView):
    @scoped(*ANYONE)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, request_id):
        """Revoke the role an approved request granted"""
        _no_body_but_empty_object()
        service.revoke(database(), current_principal(), request_id)
        return empty()


@blp.route("/requests/search")
class SearchRequests(MethodView):
    @scoped(*ANYONE)
    @blp.arguments(schemas.SearchPageArgs, location="query")
    @blp.arguments(schemas.AccessRequestSearch)
    @blp.response(200, schemas.AccessRequestList)
    def post(self, query, body):
        """Search access requests"""
        paging = merged_paging(query, body, schemas.SearchPageArgs)
        search = {"keywords": split_keywords(body.get("keywords", "")), "start_time": body.get("start_time"),
                  "end_time": body.get("end_time")}
        return service.list_requests(database(), current_principal(), filter_name=body.get("filter") or query.get("filter"),
                                     paging=paging, search=search)


@blp.route("/settings")
class Settings(MethodView):
    @scoped("admin")
    @blp.response(200, schemas.WorkflowSettings)
    def get(self):
        """Read the workflow engine's settings (the SMTP password reads as "")"""
        return service.read_settings(database())

    @scoped("admin")
    @blp.arguments(schemas.WorkflowSettingsBody)
    @blp.response(200)
    def put(self, body):
        """Replace the workflow engine's settings ("" keeps the stored SMTP password)"""
        service.write_settings(database(), vault_client(), current_principal(), body)
        return empty()


@blp.route("/testsmtp")
class TestSmtp(MethodView):
    @scoped("admin")
    @blp.arguments(schemas.WorkflowSettingsBody)
    @blp.response(200, schemas.SMTPResponse)
    def post(self, body):
        """Try the SMTP settings (a real exchange: connect, TLS, AUTH); "" means the stored password"""
        return service.test_smtp(database(), vault_client(), body)


def vault_client():
    return current_app.extensions["vault_client"]


def _no_body_but_empty_object() -> None:
    """The revoke takes no body: nothing, or `{}` (with any content type); anything else is 400."""
    raw = request_body(request).strip()
    if raw and strict_json.loads(raw) != {}:
        raise errors.BadRequest("the revoke takes no body (or {})")
