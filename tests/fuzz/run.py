"""Schemathesis (`--checks all`) against both services' served OpenAPI documents, under gunicorn.

    .venv/bin/python -m tests.fuzz.run [--max-examples N] [--seed S]     (`make fuzz`: N = 100)

Starts the suite on 127.0.0.1 (tests/benchmarks/suite.py), then runs the Schemathesis CLI six
times: the Vault, the Vault's HashiCorp routes (/v1/, with X-Vault-Token) and the Secrets
Manager, each with an admin token and with a plain user token (scope `user`, one role). Every check is on and no check is loosened; all four phases run
(examples, coverage, fuzzing, stateful). Prints, for each run, the operations, the generated
cases and the failures by code and operation (with what was answered), and exits 1 if any
run found a failure or an error.

The rules of the contract that an OpenAPI 3.0 document cannot state (one field against another,
a body field against the path, references to objects that must exist, nesting grammars) are
taught to the generator by tests/fuzz/hooks.py, with the ids of objects created first.

The test suite runs the same with a few examples per operation and a fixed seed
(tests/fuzz/test_schemathesis.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import support
from tests.benchmarks import bench

TOKEN_TTL = 4 * 3600
# The dev issuer's administrator holds these (common/devtools/issuer/default_clients.json).
ADMIN_SCOPES = "admin user vaultManage hostsManage"
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
REPOSITORY = Path(__file__).resolve().parents[2]
DIRECTORY_USERS = 6  # uid=user1..user6 in the fuzz domain's directory


@dataclasses.dataclass
class Report:
    service: str
    caller: str
    exit_code: int
    operations: int = 0
    cases: int = 0
    failures: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (code, title, operation)
    details: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)  # (code, operation) -> answers
    errors: list[str] = dataclasses.field(default_factory=list)
    output: str = ""

    @property
    def label(self) -> str:
        return f"{self.service} as {self.caller}"

    def summary(self) -> str:
        line = f"{self.label}: {self.operations} operations, {self.cases} cases, {len(self.failures)} failures"
        if self.errors:
            line += f", {len(self.errors)} errors"
        details = []
        for code, title, operation in self.failures:
            details.append(f"  {code} {title}: {operation}")
            details += [f"      {answer}" for answer in self.details.get((code, operation), [])[:3]]
        details += [f"  error: {error}" for error in self.errors]
        return "\n".join([line, *details])


def tokens_for(ctx: bench.Context) -> dict[str, str]:
    role = support.new_role("fuzz-users")
    return {"admin": ctx.tokens(ADMIN_SCOPES, ttl=TOKEN_TTL),
            "user": ctx.tokens("user", roles=[role], ttl=TOKEN_TTL)}


def create_fixtures(ctx: bench.Context, admin_token: str, workdir: str) -> dict:
    """Objects a positive case may refer to (tests/fuzz/hooks.py): a password policy, a script
    template, a CA certificate for `ldap_root_certificates`, and a target domain over a real
    slapd, scanned, with its accounts (the contract makes a body naming an account the domain
    does not have a 400, so a positive case must name one it has)."""
    from common.devtools.slapd import BIND_DN, PEOPLE, CertificateAuthority, Slapd

    call = functools.partial(ctx.call, token=admin_token)
    policy = call("POST", f"{ctx.sm_url}/password-policy", body={"name": support.unique("fuzz-policy"), "max_versions": 3},
                  expect=(201,)).json()
    template = call("POST", f"{ctx.sm_url}/script-template", body={
        "name": support.unique("fuzz-template"), "operating_system": "LINUX", "script": "echo {{ .Username }}"},
        expect=(201,)).json()
    directory = ctx.stack.enter_context(Slapd(Path(ctx.data_dir, "fuzz-slapd"), users=DIRECTORY_USERS, tls=False))
    domain = call("POST", f"{ctx.sm_url}/targetdomains", body={
        "name": support.unique("fuzz-domain"), "auto_onboarding_policy": {"id": policy["id"]},
        "endpoints": [{"type": "LDAP", "ldap_protocol": "LDAP", "ldap_address": "127.0.0.1", "ldap_port": directory.port,
                       "ldap_base_dn": PEOPLE, "ldap_bind_dn": BIND_DN, "ldap_bind_password": directory.bind_password}]},
        expect=(201,)).json()
    domain_url = f"{ctx.sm_url}/targetdomains/{domain['id']}"
    call("POST", f"{domain_url}/refresh")
    subprocess.run([sys.executable, "-m", "secrets_manager_service.worker", "run", "--once"], env=ctx.extras["sm_env"],
                   check=True, timeout=300, capture_output=True)
    accounts = call("GET", f"{domain_url}/accounts?limit=100").json()["items"]
    if len(accounts) != DIRECTORY_USERS:
        raise RuntimeError(f"setup: the fuzz domain's scan found {len(accounts)} accounts, not {DIRECTORY_USERS}")
    return {"password_policy_id": policy["id"], "script_template_id": template["id"],
            "certificate": CertificateAuthority(Path(workdir, "ca")).ca_pem,
            "domain_id": domain["id"], "accounts": {a["username"]: a["id"] for a in accounts},
            "sm_url": ctx.sm_url, "admin_token": admin_token}


# What each run covers: the document, which of its operations, and the header that carries the
# token. The Vault's HashiCorp routes (/v1/) are a run of their own, with Vault's X-Vault-Token as
# its clients send it: their document states that header (a missing token is 403 there, never 401).
RUNS = {
    "vault": ("vault", ["--exclude-path-regex", "^/v1/"], "Authorization: Bearer {token}"),
    # Documented but not fuzzed (tests/kv holds their answers): auth/token/renew-self and
    # revoke-self refuse every request (400: a JWT is neither renewable nor revocable), so no
    # case of theirs is one the server accepts; identity/group/name/{group} takes a name of
    # Python-printable characters, which no OpenAPI pattern states, and Schemathesis 4.32 sends
    # some drawn names without passing them through the hooks (before_call, map_path_parameters)
    # that would make them printable.
    "vault /v1": ("vault", ["--include-path-regex", "^/v1/", "--exclude-path-regex",
                            "^/v1/(auth/token/(renew|revoke)-self|identity/group/name/[{]group[}])$"],
                  "X-Vault-Token: {token}"),
    "secrets-manager": ("secrets-manager", [], "Authorization: Bearer {token}"),
}


def run_schemathesis(document_url: str, token: str, *, service: str, caller: str, max_examples: int,
                     seed: int | None, workdir: str, fixtures: dict, operations: tuple[str, ...] = (),
                     token_header: str = "Authorization: Bearer {token}") -> Report:
    report_path = Path(workdir, f"{service}-{caller}.json".replace(" ", "-").replace("/", ""))
    command = [*SCHEMATHESIS, "run", document_url, "--checks", "all", "--max-examples", str(max_examples),
               *operations, "--header", token_header.format(token=token), "--report", "json",
               "--report-json-path", str(report_path), "--request-timeout", "30", "--workers", "1",
               "--no-color"]
    if seed is not None:
        command += ["--seed", str(seed)]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "FUZZ_FIXTURES": json.dumps(fixtures),
                               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))})
    report = Report(service, caller, done.returncode, output=done.stdout[-20000:] + done.stderr[-5000:])
    if not report_path.exists():
        report.errors.append(f"schemathesis wrote no report (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        return report
    data = json.loads(report_path.read_text())
    report.operations = data["operations"]["tested"]
    report.cases = data["test_cases"]["generated"]
    for failure in data["failures"]:
        for operation in failure["operations"]:
            report.failures.append((failure["code"], failure["title"], operation))
    report.errors += [str(error)[:300] for error in data.get("errors") or []]
    report.details = failure_details(done.stdout)
    return report


_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$", re.M)
_FAILURE = re.compile(r"^- (ST\d+) .*?\n(.*?)(?=^- ST\d+ |^Reproduce with:|\Z)", re.M | re.S)


def failure_details(output: str) -> dict[tuple[str, str], list[str]]:
    """What each failure answered (status line and body, or the check's message), from the CLI's report."""
    details: dict[tuple[str, str], list[str]] = {}
    sections = _SECTION.split(output)
    for operation, text in zip(sections[1::2], sections[2::2]):
        for match in _FAILURE.finditer(text):
            answer = " ".join(match.group(2).split())[:400]
            details.setdefault((match.group(1), operation), []).append(answer)
    return details


def fuzz_suite(ctx: bench.Context, *, max_examples: int, seed: int | None) -> list[Report]:
    tokens = tokens_for(ctx)
    documents = {"vault": f"{ctx.vault_url}/openapi.json", "secrets-manager": f"{ctx.sm_url}/openapi.json"}
    reports = []
    with tempfile.TemporaryDirectory(prefix="fuzz-") as workdir:
        fixtures = create_fixtures(ctx, tokens["admin"], workdir)
        for label, (service, operations, token_header) in RUNS.items():
            for caller, token in tokens.items():
                reports.append(run_schemathesis(documents[service], token, service=label, caller=caller,
                                                max_examples=max_examples, seed=seed, workdir=workdir,
                                                fixtures=fixtures, operations=tuple(operations),
                                                token_header=token_header))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "100")))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    from tests.benchmarks.suite import running_suite

    with running_suite() as ctx:
        reports = fuzz_suite(ctx, max_examples=args.max_examples, seed=args.seed)
    for report in reports:
        print(report.summary())
    failures = sum(len(r.failures) for r in reports)
    errors = sum(len(r.errors) for r in reports)
    print(f"schemathesis: {sum(r.operations for r in reports)} operations tested, "
          f"{sum(r.cases for r in reports)} cases, {failures} failures, {errors} errors")
    return 1 if errors or failures or any(r.exit_code for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
