"""SQL pieces the long lists share (listing.py encodes their rows)."""
from __future__ import annotations


def rfc3339_text(column: str) -> str:
    """`column` (a timestamptz) as text exactly as common.timefmt.rfc3339 renders it (`2026-11-23T10:00:00Z`,
    UTC, seconds; a year below 1000 unpadded, as strftime's %Y gives it): the database formats it,
    where loading a datetime and formatting it cost a list about 10k instructions a time."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'FMYYYY-MM-DD"T"HH24:MI:SS"Z"')"""
