"""SQL for password policies: the table `sm_password_policies`, stored like script templates."""
from __future__ import annotations

from common.db import Database
from secrets_manager_service.named_object_store import NamedObjects

SETTINGS = (
    "name", "rotation_interval", "password_min_length", "password_max_length", "use_special_characters",
    "use_lower_case", "use_upper_case", "use_numbers", "max_versions", "number_of_retries", "retry_interval",
    "max_concurrent_checkouts", "max_checkout_duration", "rotate_on_release", "verify_after_rotation",
)

POLICIES = NamedObjects("sm_password_policies", SETTINGS, kind="password policy")


def find_policy(db: Database, policy_id) -> dict | None:
    return POLICIES.find(db, policy_id)
