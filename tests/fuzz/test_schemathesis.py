"""Schemathesis 4 with every check, against both services under gunicorn, as an admin and as a user.

A few examples per operation and a fixed seed keep this to well under a minute (FUZZ_MAX_EXAMPLES
and FUZZ_SEED change them; `make fuzz` runs many more with a random seed). Zero failures is the
bar: a failure is fixed in the code or the OpenAPI document, never by turning a check off.

The contract's rules that OpenAPI 3.0 cannot state (one field against another, a body field
against the path, references to objects that must exist) reach the generator through
tests/fuzz/hooks.py; they shape positive cases only and turn no check off.
"""
from __future__ import annotations

import os

import pytest

from tests.fuzz.run import fuzz_suite

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "3"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

@pytest.fixture(scope="module")
def reports():
    from common.devtools import slapd
    from tests.benchmarks.suite import running_suite

    missing = slapd.available()  # the fuzzed target domain scans a private slapd
    if missing:
        pytest.skip(missing)
    with running_suite() as ctx:
        yield {report.label: report for report in fuzz_suite(ctx, max_examples=MAX_EXAMPLES, seed=SEED)}


@pytest.mark.slow
@pytest.mark.parametrize("label", ["vault as admin", "vault as user", "vault /v1 as admin", "vault /v1 as user",
                                   "secrets-manager as admin", "secrets-manager as user"])
def test_no_schemathesis_failures(reports, label):
    report = reports[label]
    print(report.summary())
    assert not report.errors, report.summary() + "\n" + report.output[-3000:]
    assert report.operations > 0 and report.cases > 0, report.output[-3000:]
    assert not report.failures, report.summary() + "\n" + report.output[-6000:]
    assert report.exit_code == 0, report.output[-3000:]
