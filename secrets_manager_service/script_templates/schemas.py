"""Request and response shapes of script templates."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.schemas import CaseInsensitiveChoice, PageArgs, RequestBody
from common.timefmt import Rfc3339
from secrets_manager_service.fields import EchoTolerant, listing_of

OPERATING_SYSTEMS = ("LINUX", "WINDOWS")
MAX_SCRIPT_LENGTH = 64 * 1024


class ScriptBody(RequestBody):
    """What /script-template/compile takes."""

    operating_system = CaseInsensitiveChoice(OPERATING_SYSTEMS, required=True)
    script = fields.String(required=True, validate=validate.Length(min=1, max=MAX_SCRIPT_LENGTH))


class ScriptTemplateBody(EchoTolerant, ScriptBody):
    name = fields.String(required=True, validate=validate.Length(min=1, max=256))


class ScriptTemplate(Schema):
    id = fields.UUID()
    name = fields.String()
    operating_system = fields.String()
    script = fields.String()
    created = Rfc3339()
    created_by = fields.String()
    updated = Rfc3339()
    updated_by = fields.String()


class CompiledScript(Schema):
    script = fields.String()


ScriptTemplateList = listing_of(ScriptTemplate, "ScriptTemplateList")

TemplatePageArgs = PageArgs
