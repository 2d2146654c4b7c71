"""Routes of script templates."""
from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from common.auth import current_principal, scoped
from common.schemas import ErrorEnvelope
from common.web import Blueprint, created, empty
from secrets_manager_service.fields import TemplateCreated
from secrets_manager_service.script_templates import schemas, service

blp = Blueprint("sm_script_templates", __name__, description="Script templates")

MANAGE = ("admin", "hostsManage")


@blp.route("/script-templates")
class ScriptTemplates(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.TemplatePageArgs, location="query")
    @blp.response(200, schemas.ScriptTemplateList)
    def get(self, args):
        """List script templates"""
        return service.list_page(args)


@blp.route("/script-template")
class NewScriptTemplate(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.ScriptTemplateBody)
    @blp.response(201, TemplateCreated)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def post(self, body):
        """Create a script template"""
        principal = current_principal()
        template_id = service.create(principal.sub, body)
        return created(url_for("sm_script_templates.ScriptTemplate", template_id=template_id), {"id": template_id})


@blp.route("/script-template/compile")
class CompileScript(MethodView):
    @scoped(*MANAGE)
    @blp.arguments(schemas.ScriptBody)
    @blp.response(200, schemas.CompiledScript)
    def post(self, body):
        """Render a script with example values, to check a template"""
        return service.compile_script(body)


@blp.route("/script-template/<uuid:template_id>")
class ScriptTemplate(MethodView):
    @scoped(*MANAGE)
    @blp.response(200, schemas.ScriptTemplate)
    def get(self, template_id):
        """Read a script template"""
        return service.get(template_id)

    @scoped(*MANAGE)
    @blp.arguments(schemas.ScriptTemplateBody)
    @blp.response(200)
    def put(self, body, template_id):
        """Replace a script template"""
        principal = current_principal()
        service.replace(principal.sub, template_id, body)
        return empty()

    @scoped(*MANAGE)
    @blp.response(200)
    @blp.alt_response(409, schema=ErrorEnvelope)
    def delete(self, template_id):
        """Delete a script template no host uses"""
        service.delete(template_id)
        return empty()
