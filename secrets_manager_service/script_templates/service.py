"""Script templates: checked when saved, so a rotation never meets a broken one."""
from __future__ import annotations

import uuid

from common import errors
from secrets_manager_service.script_templates import rendering
from secrets_manager_service.script_templates.store import TEMPLATES


def _checked(script: str) -> None:
    try:
        rendering.check(script)
    except rendering.TemplateError as exc:
        raise template_error(exc) from None


def template_error(exc: rendering.TemplateError) -> errors.ApiError:
    """A 400 naming the script and the position of the bad placeholder."""
    message = f"{exc.message} at position {exc.position}"
    detail = {"error_code": "VALUE_INCORRECT_FORMAT", "error_message": message, "property": "script"}
    return errors.ApiError(message, code="VALUE_INCORRECT_FORMAT", property="script",
                           details=[detail]).with_status(400)


def create(by: str, body: dict) -> uuid.UUID:
    _checked(body["script"])
    return TEMPLATES.create(by, body)


def replace(by: str, template_id: uuid.UUID, body: dict) -> None:
    _checked(body["script"])
    TEMPLATES.replace(by, template_id, body)


get = TEMPLATES.get
delete = TEMPLATES.delete
list_page = TEMPLATES.list_page


def compile_script(body: dict) -> dict:
    """The script with example values in place of the placeholders."""
    try:
        return {"script": rendering.render(body["script"], rendering.PLACEHOLDER_VALUES, body["operating_system"])}
    except rendering.TemplateError as exc:
        raise template_error(exc) from None
