"""Host ids, account names and the Vault paths of accounts' passwords (host and directory accounts)."""
from __future__ import annotations

import re
import uuid

from marshmallow import ValidationError

from common import errors

MAX_ACCOUNT_LENGTH = 128
# One segment of a Vault secret name, so `hosts/{host_id}/{account}` is always a valid Vault path.
_ACCOUNT = re.compile(r"[A-Za-z0-9._\-@ +=]+")
_PATH = re.compile(r"hosts/([^/]+)/([^/]+)")
# The same rules as JSON Schema patterns, for the OpenAPI document (ECMA regex: no inline flags).
_UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ACCOUNT_PATTERN = rf"(?!\.\.?$)[A-Za-z0-9._\-@ +=]{{1,{MAX_ACCOUNT_LENGTH}}}"
ACCOUNT_SCHEMA = {"type": "string", "pattern": f"^{_ACCOUNT_PATTERN}$"}
# The same rule for body fields, without lookahead (hypothesis-jsonschema and every regex dialect
# read it): characters of the set, not "." or "..", 1 to 128 of them.
ACCOUNT_FIELD = {"pattern": r"^(?:[A-Za-z0-9._\-@ +=]*[A-Za-z0-9_\-@ +=][A-Za-z0-9._\-@ +=]*|\.{3,})$",
                 "minLength": 1, "maxLength": MAX_ACCOUNT_LENGTH}
CHECKOUT_PATH_PATTERN = f"^hosts/{_UUID_PATTERN}/{_ACCOUNT_PATTERN}$"


def account_problem(account: str) -> str | None:
    """Why `account` cannot be an account name, or None."""
    if not 1 <= len(account) <= MAX_ACCOUNT_LENGTH:
        return f"must be 1 to {MAX_ACCOUNT_LENGTH} characters"
    if not _ACCOUNT.fullmatch(account) or account in (".", ".."):
        return "must be letters, digits and ._-@ += (and not '.' or '..')"
    return None


def validate_account(account: str) -> None:
    """marshmallow validator for account names."""
    reason = account_problem(account)
    if reason:
        raise ValidationError(f"VALUE_INCORRECT_FORMAT: {reason}")


def host_uuid(host_id: str) -> uuid.UUID:
    """The host id of a URL; 400 if it is not a UUID."""
    try:
        return uuid.UUID(host_id)
    except ValueError:
        raise errors.ApiError("host_id must be a UUID", code="VALUE_INCORRECT_FORMAT",
                              property="host_id").with_status(400) from None


def account_name(account: str) -> str:
    """The account of a URL; 400 if it cannot be one."""
    reason = account_problem(account)
    if reason:
        raise errors.ApiError(f"account {reason}", code="VALUE_INCORRECT_FORMAT", property="account").with_status(400)
    return account


def secret_path(host_id, account: str) -> str:
    """Where the Vault keeps the account's password, and the `path` clients check out."""
    return f"hosts/{host_id}/{account}"


def directory_secret_path(domain_id, managed_id) -> str:
    """Where the Vault keeps a managed directory account's password (`targetdomains/{domain_id}/{id}`),
    kept by account_passwords under the same rules as a host account's."""
    return f"targetdomains/{domain_id}/{managed_id}"


def parse_secret_path(path: str) -> tuple[uuid.UUID, str] | None:
    """(host id, account) of a checkout path, or None if it cannot name an account."""
    match = _PATH.fullmatch(path)
    if match is None or account_problem(match.group(2)):
        return None
    try:
        return uuid.UUID(match.group(1)), match.group(2)
    except ValueError:
        return None
