"""SQL for script templates: the table `sm_script_templates`, stored like password policies."""
from __future__ import annotations

from common.db import Database
from secrets_manager_service.named_object_store import NamedObjects

TEMPLATES = NamedObjects("sm_script_templates", ("name", "operating_system", "script"), kind="script template")


def find_template(db: Database, template_id) -> dict | None:
    return TEMPLATES.find(db, template_id)
