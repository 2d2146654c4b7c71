"""Account secrets a user may check out, and their checkouts: `/secrets...` for every account
family (host accounts, HOST_SECRET, and managed directory accounts, TARGET_DOMAIN_SECRET),
listed side by side and checked out under one set of rules (accounts.checkouts), with the
running app's database and Vault.
"""
from __future__ import annotations

import uuid

from common.auth import Principal
from secrets_manager_service import listing
from secrets_manager_service.accounts import checkouts
from secrets_manager_service.accounts.families import FAMILIES, family_of


def list_page(principal: Principal, args: dict, *, keywords: list[str] = (), host_id=None, username=None,
              target_domain_id=None) -> dict:
    """Host accounts and managed directory accounts the caller may check out, one page of both;
    `host_id` leaves the directory accounts out, `target_domain_id` the host accounts. The answer
    itself (its items come encoded: listing.py)."""
    page = checkouts.list_page(FAMILIES, checkouts.app_deps(), principal, args, keywords=keywords, username=username,
                               within={"host_id": host_id, "target_domain_id": target_domain_id})
    return listing.page_response(page["count"], [item["json"] for item in page["items"]])


def check_out(principal: Principal, path: str) -> dict:
    return checkouts.check_out(family_of(path), checkouts.app_deps(), principal, path)


def get_checkout(principal: Principal, checkout_id: uuid.UUID) -> dict:
    return checkouts.get_checkout(FAMILIES, checkouts.app_deps(), principal, checkout_id)


def list_checkouts(principal: Principal, args: dict) -> dict:
    return checkouts.list_checkouts(FAMILIES, checkouts.app_deps(), principal, args)


def release(principal: Principal, checkout_id: uuid.UUID) -> None:
    checkouts.release(FAMILIES, checkouts.app_deps(), principal, checkout_id)


def revoke_after_role_loss(user_id: str, lost_role_id: str, held_role_ids, reason: str) -> int:
    """End the user's live checkouts that needed `lost_role_id` (accounts.checkouts says which); the number ended."""
    return checkouts.revoke_after_role_loss(FAMILIES, checkouts.app_deps(), user_id, lost_role_id, held_role_ids,
                                            reason)
