"""Schemathesis 4 with every check, against both services under gunicorn, as an admin and as a user.

A few examples per operation and a fixed seed keep this to well under a minute (FUZZ_MAX_EXAMPLES
and FUZZ_SEED change them; `make fuzz` runs many more with a random seed). Zero failures is the
bar: a failure is fixed in the code or the OpenAPI document, never by turning a check off.

LIMITS lists the failures that no change to the code or the document can remove without
weakening a rule, each matched by check, operation and the answer's text, with the reason: a
rule OpenAPI 3.0 cannot state (one field against another, a body field against the path, an
opaque token, a grammar, NUL characters anywhere in free-form JSON). While only those are seen,
a run is an expected failure; any other failure fails the test.
"""
from __future__ import annotations

import fnmatch
import os

import pytest

from tests.fuzz.run import fuzz_suite

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "3"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

# (code, operation pattern, text of the answer) -> why it stays.
LIMITS: dict[tuple[str, str, str], str] = {
    ("ST202", "*", "is greater than password_max_length"):
        "password_min_length <= password_max_length: one field against another, which OpenAPI 3.0 cannot state",
    ("ST202", "*", "differs from the host_id of the URL"):
        "an echoed metadata.host_id must equal the URL's: a body field against the path",
    ("ST202", "*", "page_token is not one this server issued"):
        "page tokens are opaque: only those the server issued are valid",
    ("ST202", "*", "must be a host name or an IP address"):
        "an LDAP endpoint's address and DNs follow grammars (RFC 1123, RFC 4514) the document does not spell out",
    ("ST202", "*", "must be a distinguished name"):
        "an LDAP endpoint's address and DNs follow grammars (RFC 1123, RFC 4514) the document does not spell out",
    ("ST202", "*", "NUL character"):
        "no NUL or lone surrogate anywhere in free-form JSON (keys included): OpenAPI 3.0 cannot state it",
    ("ST202", "*", "lone surrogate"):
        "no NUL or lone surrogate anywhere in free-form JSON (keys included): OpenAPI 3.0 cannot state it",
}


@pytest.fixture(scope="module")
def reports():
    from tests.benchmarks.suite import running_suite

    with running_suite() as ctx:
        yield {report.label: report for report in fuzz_suite(ctx, max_examples=MAX_EXAMPLES, seed=SEED)}


def limit_of(code: str, operation: str, answers: list[str]) -> str | None:
    """The reason a failure stays, if every answer it got is one of LIMITS'; None otherwise."""
    reasons = set()
    for answer in answers or [""]:
        reason = next((why for (c, pattern, text), why in LIMITS.items()
                       if c == code and fnmatch.fnmatchcase(operation, pattern) and text in answer), None)
        if reason is None:
            return None
        reasons.add(reason)
    return "; ".join(sorted(reasons))


@pytest.mark.slow
@pytest.mark.parametrize("label", ["vault as admin", "vault as user", "secrets-manager as admin",
                                   "secrets-manager as user"])
def test_no_schemathesis_failures(reports, label):
    report = reports[label]
    print(report.summary())
    assert not report.errors, report.summary() + "\n" + report.output[-3000:]
    assert report.operations > 0 and report.cases > 0, report.output[-3000:]
    reasons = {f: limit_of(f[0], f[2], report.details.get((f[0], f[2]), [])) for f in report.failures}
    unexpected = [f for f, reason in reasons.items() if reason is None]
    assert not unexpected, report.summary() + "\n" + report.output[-6000:]
    if report.failures:
        pytest.xfail("; ".join(sorted(set(reasons.values()))))
    assert report.exit_code == 0, report.output[-3000:]
