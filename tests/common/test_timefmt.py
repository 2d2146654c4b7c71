"""rfc3339 gives strftime's exact bytes, faster (issue 25: responses stay byte for byte the same)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from common.timefmt import rfc3339

REFERENCE = "%Y-%m-%dT%H:%M:%SZ"


def _reference(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(REFERENCE)


def test_the_same_text_as_strftime():
    chosen = random.Random(25)
    zones = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    edges = [datetime(1, 1, 1, tzinfo=timezone.utc), datetime(999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
             datetime(1000, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
             datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),  # the next year in UTC
             datetime(2024, 2, 29, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=1)))]  # the day before in UTC
    moments = edges + [datetime.fromtimestamp(chosen.uniform(-2e9, 8e9), chosen.choice(zones)) for _ in range(5000)]
    for moment in moments:
        assert rfc3339(moment) == _reference(moment), moment


def test_none_stays_none():
    assert rfc3339(None) is None
