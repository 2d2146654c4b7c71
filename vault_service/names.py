"""Secret names: 1-256 chars, '/'-separated segments of letters, digits and `._-@ +=`, none `.` or `..`."""
from __future__ import annotations

import re

from common import errors

MAX_NAME_LENGTH = 256
_CHAR = r"[A-Za-z0-9._\-@ +=]"
# A segment of those characters that is not "." or "..": one with a character other than '.',
# or three dots or more (no lookahead: the documented pattern must work in every regex dialect).
_SEGMENT = rf"(?:{_CHAR}*[A-Za-z0-9_\-@ +=]{_CHAR}*|\.{{3,}})"
# The rule as the OpenAPI documents state it (path parameters and body fields alike).
PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
_NAME = re.compile(PATTERN)


def problem(name: str) -> str | None:
    """Why `name` is not a valid secret name, or None if it is."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"must be 1 to {MAX_NAME_LENGTH} characters"
    # '.' and '..' would be rewritten by proxies and clients normalising URLs: such a secret
    # could be created but never reached again.
    if any(segment in (".", "..") for segment in name.split("/")):
        return "must not contain '.' or '..' segments"
    if not _NAME.fullmatch(name):
        return "must be '/'-separated segments of letters, digits and ._-@ +="
    return None


def checked(name: str, property: str = "name") -> str:
    """`name` if valid, else a 400 naming `property`."""
    reason = problem(name)
    if reason:
        raise errors.ApiError(f"{property} {reason}", code="VALUE_INCORRECT_FORMAT", property=property).with_status(400)
    return name


# --- the Secrets Manager's reserved part -------------------------------------

# Names whose first segment is one of these are the Secrets Manager's: host accounts
# (`hosts/{host_id}/{account}`), directory accounts and bind passwords (`targetdomains/...`),
# the workflow engine's SMTP password (`workflow-engine/smtp`).
RESERVED_PREFIXES = frozenset({"hosts", "targetdomains", "workflow-engine"})
# The owner_id they are kept under. No user id of a URL path can contain a '/', and shared
# names live under owner_id '', so nothing a user creates can land in this namespace.
RESERVED_OWNER = "/secrets-manager"
RESERVED_MESSAGE = "this name is reserved for the Secrets Manager"


def is_reserved(name: str) -> bool:
    """Whether `name` belongs to the Secrets Manager's reserved part: the one rule every route asks."""
    return name.split("/", 1)[0] in RESERVED_PREFIXES
