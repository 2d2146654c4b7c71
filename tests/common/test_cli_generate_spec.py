"""`secrets put --generate KEY[:options]` as a password_payload_specification."""
from __future__ import annotations

import click
import pytest

from common.cli.versions import generate_spec


@pytest.mark.parametrize(("text", "spec"), [
    ("pw", {"password_key": "pw"}),
    ("db.password:length=24", {"password_key": "db.password", "length": 24}),
    ("pw:length=16,punctuation=no,uppercase=yes", {"password_key": "pw", "length": 16, "include_punctuation": False,
                                                   "include_uppercase": True}),
    ("pw:digits=off,include=!,@#", {"password_key": "pw", "include_digits": False, "included_punctuation": "!,@#"}),
    ("pw:exclude='\"`", {"password_key": "pw", "excluded_punctuation": "'\"`"}),
])
def test_options_become_the_spec(text, spec):
    assert generate_spec(text) == spec


@pytest.mark.parametrize("text", [":length=3", "pw:length=x", "pw:digits=maybe", "pw:colour=blue", "pw:length"])
def test_bad_options_are_usage_errors(text):
    with pytest.raises(click.BadParameter):
        generate_spec(text)
