"""Durations as clients write them: Go style ("720h", "1h30m") or ISO 8601 ("P30D", "PT5M")."""
from __future__ import annotations

import re

from marshmallow import ValidationError, fields

_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")  # "ms" before "m": "5ms" is not 5m and a stray "s"
_GO_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
# Years and months have no fixed length, so they are refused rather than guessed.
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")

MAX_SECONDS = 100 * 365 * 24 * 3600


def _one_or_more(*parts: str) -> str:
    """Regex for the parts in this order, each optional, at least one present (no lookahead, so the
    documented pattern works in every regex dialect and for generators such as Schemathesis)."""
    return "|".join(parts[i] + "".join(f"(?:{p})?" for p in parts[i + 1:]) for i in range(len(parts)))


_FRACTION = r"(?:\.[0-9]{1,9})?"
# The grammar a request body's duration follows, as the OpenAPI documents state it. Each unit's
# digits are bounded so that every duration it admits is at most 2e9 seconds (about 63 years,
# below MAX_SECONDS and int4): a schema-valid duration is never refused as too long.
_GO = _one_or_more(rf"[0-9]{{1,5}}{_FRACTION}h", rf"[0-9]{{1,6}}{_FRACTION}m",
                   rf"[0-9]{{1,8}}{_FRACTION}s", rf"[0-9]{{1,9}}{_FRACTION}ms")
_ISO_TIME = "T(?:" + _one_or_more("[0-9]{1,5}H", "[0-9]{1,6}M", rf"[0-9]{{1,8}}{_FRACTION}S") + ")"
_ISO_DATE = "(?:" + _one_or_more("[0-9]{1,3}W", "[0-9]{1,4}D") + ")"
PATTERN = rf"^(?:0|{_GO}|P(?:{_ISO_DATE}(?:{_ISO_TIME})?|{_ISO_TIME}))$"
_DOCUMENTED = re.compile(PATTERN)


def parse_seconds(text: str) -> int:
    """Whole seconds of a duration; ValueError with a readable reason if malformed."""
    text = text.strip()
    if text in ("0", ""):
        return 0
    if text.startswith("P"):
        match = _ISO.fullmatch(text)
        if not match or text in ("P", "PT") or text.endswith("T"):
            raise ValueError("not an ISO 8601 duration such as P30D or PT5M (years and months are not allowed)")
        weeks, days, hours, minutes, seconds = (float(g) if g else 0 for g in match.groups())
        total = weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds
    else:
        position, total = 0, 0.0
        for part in _GO_PART.finditer(text):
            if part.start() != position:
                break
            total += float(part.group(1)) * _GO_UNITS[part.group(2)]
            position = part.end()
        if position != len(text) or position == 0:
            raise ValueError("not a duration such as 720h, 1h30m or P30D")
    if total > MAX_SECONDS:
        raise ValueError("duration is too long")
    return int(total)


def go_format(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0s, 45s, 5m0s, 720h0m0s."""
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def iso_format(seconds: int) -> str:
    """ISO 8601 in the largest exact units: P30D, PT5M, PT1H30M."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    if time_part:
        out += "T" + time_part
    return out if out != "P" else "PT0S"


class Duration(fields.Field):
    """Loads a duration string into seconds; dumps seconds with `formatter`."""

    def __init__(self, formatter=iso_format, **kwargs):
        self.formatter = formatter
        kwargs.setdefault("metadata", {}).update({"type": "string", "example": "P30D", "pattern": PATTERN})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("VALUE_INCORRECT_TYPE: must be a duration string such as P30D or 720h")
        if not _DOCUMENTED.fullmatch(value):
            raise ValidationError("VALUE_INCORRECT_FORMAT: not a duration such as 720h, 1h30m, P30D or PT5M "
                                  "(units largest first; see the documented pattern)")
        try:
            return parse_seconds(value)
        except ValueError as exc:
            raise ValidationError(f"VALUE_INCORRECT_FORMAT: {exc}") from None

    @staticmethod
    def is_zero(text: str) -> bool:
        """Whether `text` is a documented duration of no time at all ("0", "0s", "PT0S", ...)."""
        try:
            return bool(_DOCUMENTED.fullmatch(text)) and parse_seconds(text) == 0
        except ValueError:
            return False  # the field's own check says why

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else self.formatter(int(value))
