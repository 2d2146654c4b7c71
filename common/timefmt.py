"""Times on the wire: RFC 3339 in UTC with a `Z`, never an empty string."""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import fields


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    if value.year < 1000:  # strftime's %Y does not pad these: keep its exact bytes
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The same text as strftime("%Y-%m-%dT%H:%M:%SZ") at half its cost: lists format
    # several times per row (issue 25).
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (value.year, value.month, value.day,
                                               value.hour, value.minute, value.second)


class Rfc3339(fields.Field):
    """A read-only time field rendered as `2026-11-23T10:00:00Z` (or null)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dump_only", True)
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("metadata", {}).update({"type": "string", "format": "date-time"})
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)
