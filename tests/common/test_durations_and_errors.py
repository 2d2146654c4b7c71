"""Duration parsing and the marshmallow-message -> error-code mapping."""
from __future__ import annotations

import pytest

from common import durations, errors


@pytest.mark.parametrize("text, seconds", [
    ("720h", 2592000), ("1h30m", 5400), ("45s", 45), ("1.5h", 5400), ("0", 0), ("0s", 0),
    ("P30D", 2592000), ("PT5M", 300), ("PT1H30M", 5400), ("P1W", 604800), ("P1DT1S", 86401),
])
def test_parse(text, seconds):
    assert durations.parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["h", "P", "PT", "P1Y", "P1M", "5x", "1h 30m", "-5s", "P1DT", "1000000h"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        durations.parse_seconds(text)


@pytest.mark.parametrize("seconds, go, iso", [(0, "0s", "PT0S"), (45, "45s", "PT45S"), (300, "5m0s", "PT5M"),
                                              (2592000, "720h0m0s", "P30D"), (5400, "1h30m0s", "PT1H30M")])
def test_format(seconds, go, iso):
    assert durations.go_format(seconds) == go and durations.iso_format(seconds) == iso
    assert durations.parse_seconds(go) == durations.parse_seconds(iso) == seconds


def test_validation_error_names_each_field_with_its_code():
    error = errors.validation_error({"json": {"limit": ["Must be greater than or equal to 1 and less than or equal to 100."],
                                              "name": ["Missing data for required field."],
                                              "data": {"k": ["Not a valid string."]}}})
    assert error.status == 400 and error.code == "INVALID_REQUEST_DATA"
    assert [(d["property"], d["error_code"]) for d in error.details] == [
        ("limit", "VALUE_OUT_OF_BOUNDS"), ("name", "REQUIRED_VALUE_MISSING"), ("data.k", "VALUE_INCORRECT_TYPE")]


def test_single_validation_error_is_promoted():
    error = errors.validation_error({"query": {"sortkey": ["Must be one of: name, created."]}})
    body = error.to_dict()
    assert body["error_code"] == "VALUE_INCORRECT_FORMAT" and body["property"] == "sortkey"
    assert body["details"] == [{"error_code": "VALUE_INCORRECT_FORMAT", "error_message": "Must be one of: name, created.",
                                "property": "sortkey"}]


def test_coded_messages_keep_their_code_and_lose_the_prefix():
    error = errors.validation_error({"json": {"data": ["VALUE_OUT_OF_BOUNDS: too big"]}})
    assert error.code == "VALUE_OUT_OF_BOUNDS" and error.message == "too big"


def test_milliseconds_and_the_documented_grammar():
    import re

    assert durations.parse_seconds("5000ms") == 5 and durations.parse_seconds("1m30s500ms") == 90
    documented = re.compile(durations.PATTERN)
    for text in ("0", "720h", "1h30m", "1.5h", "5ms", "P30D", "PT5M", "P1W2D", "PT1H30M", "99999h", "P9999D"):
        assert documented.fullmatch(text), text
        assert durations.parse_seconds(text) <= 2_000_000_000  # never "too long"
    for text in ("", "P", "PT", "P1DT", "1m1h", " P30D", "100000h", "P10000D", "P1Y", "P1M"):
        assert not documented.fullmatch(text), text
