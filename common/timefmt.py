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


def rfc3339_sql(column: str) -> str:
    """SQL of `column` (a timestamptz) as text exactly as rfc3339() renders it (a year before 1000
    unpadded, as strftime's %Y: FMYYYY): lists have the database format their times, where loading
    a datetime and formatting it cost about 10k instructions a time (issue 25)."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'FMYYYY-MM-DD"T"HH24:MI:SS"Z"')"""


class Rfc3339(fields.Field):
    """A read-only time field rendered as `2026-11-23T10:00:00Z` (or null)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dump_only", True)
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("metadata", {}).update({"type": "string", "format": "date-time"})
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)
