"""Password policies: create, read, replace, list, and delete (not while a host uses one: 409).

A policy's rules take effect where they are used: generation and max_versions at
the next password write, checkout limits at the next checkout.
"""
from __future__ import annotations

from secrets_manager_service.policies.store import POLICIES

create = POLICIES.create
get = POLICIES.get
replace = POLICIES.replace
delete = POLICIES.delete
list_page = POLICIES.list_page
