"""Instructions a KV read costs with a policy-bound token, against the same read with the
`service` token (issue 20: at most 60,000 more per request), counted by callgrind around
in-process WSGI calls (the Vault app's test client, a real PostgreSQL).

    .venv/bin/python -m tests.benchmarks.kv_policy_instructions        # runs callgrind 8 times

Each caller is counted twice, after the same warm-up (every cache filled: tokens, data keys,
the caller's compiled ACL), with SHORT and LONG reads; the difference over LONG - SHORT reads
is one read's cost, without the start-up's. PostgreSQL's own work is not counted (another
process): what is compared is the Vault's Python.
"""
from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

SHORT, LONG, WARMUP = 100, 400, 100
POLICY = 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n'


@contextlib.contextmanager
def bound_vault():
    """A Vault app on a fresh database, with a policy that lets `bench/db` be read bound to a
    role; yields (app, service token, that role's user token)."""
    from common.devtools.issuer.keys import ensure_signing_key
    from tests import support
    from vault_service.app import create_app

    data_dir = tempfile.mkdtemp(prefix="kv-instructions-")
    ensure_signing_key(data_dir)
    server = support.database_server_url(data_dir)
    keys = ",".join(f"k{i}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}" for i in (1, 2))
    tokens = support.TokenFactory(data_dir)
    try:
        with support.fresh_database(server, "kv_instructions") as url:
            app = create_app(support.service_settings(data_dir, url, VAULT_MASTER_KEYS=keys, LOG_LEVEL="WARNING"))
            client, service, admin, role = app.test_client(), tokens("service"), tokens("admin"), support.new_role("bench")
            assert client.put("/v1/secret/data/bench/db", headers={"X-Vault-Token": service},
                              json={"data": {"password": "x" * 24}}).status_code == 200
            assert client.put("/v1/sys/policies/acl/bench", headers={"X-Vault-Token": admin},
                              json={"policy": POLICY}).status_code == 204
            assert client.put(f"/v1/identity/group/name/{role['name']}", headers={"X-Vault-Token": admin},
                              json={"type": "external", "policies": ["bench"]}).status_code == 200
            try:
                yield app, service, tokens("user", roles=[role])
            finally:
                app.extensions["db"].close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def serve_reads(caller: str, count: int) -> None:
    """The measured program: set up, warm up, then `count` reads by `caller` (service or policy)."""
    with bound_vault() as (app, service, user):
        client = app.test_client()
        headers = {"X-Vault-Token": service if caller == "service" else user, "X-Vault-Request": "true"}
        for token in (service, user):
            for _ in range(WARMUP):
                assert client.get("/v1/secret/data/bench/db", headers={"X-Vault-Token": token}).status_code == 200
        for _ in range(count):
            client.get("/v1/secret/data/bench/db", headers=headers)


def decide(caller: str, count: int) -> None:
    """The measured program's other form: `count` access decisions alone (acl.access.authorize for
    a data read), in one request context, after the same set-up and warm-up."""
    from vault_service.acl import access

    with bound_vault() as (app, service, user):
        with app.test_request_context("/v1/secret/data/bench/db"):
            principal = app.extensions["token_validator"].validate(service if caller == "service" else user)
            for _ in range(WARMUP):
                access.authorize(principal, access.READ_DATA, "bench/db")
            for _ in range(count):
                access.authorize(principal, access.READ_DATA, "bench/db")


def instructions(caller: str, count: int, mode: str = "--serve") -> int:
    out = tempfile.mktemp(prefix="callgrind-")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                    "tests.benchmarks.kv_policy_instructions", mode, caller, str(count)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as handle:
        total = int(re.search(r"^summary: (\d+)", handle.read(), re.M).group(1))
    os.unlink(out)
    return total


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] in ("--serve", "--decide"):
        (serve_reads if sys.argv[1] == "--serve" else decide)(sys.argv[2], int(sys.argv[3]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 1
    per_read = {}
    for caller in ("service", "policy"):
        per_read[caller] = (instructions(caller, LONG) - instructions(caller, SHORT)) / (LONG - SHORT)
        print(f"KV read, {caller} token: {per_read[caller] / 1e6:.3f}M instructions per request", flush=True)
    extra = per_read["policy"] - per_read["service"]
    print(f"policy-bound read costs {extra:+,.0f} instructions per request (goal: at most +60,000); whole "
          "requests differ by more than the decision (a user token is rate-counted, the service token is not)")
    # The decision alone, which is what the policy adds: many in one run, so the count is exact.
    per_decision = {}
    for caller in ("service", "policy"):
        per_decision[caller] = (instructions(caller, 10 * LONG, "--decide") -
                                instructions(caller, 10 * SHORT, "--decide")) / (10 * (LONG - SHORT))
        print(f"access decision for a data read, {caller} token: {per_decision[caller]:,.0f} instructions", flush=True)
    print(f"the policy decision costs {per_decision['policy'] - per_decision['service']:+,.0f} instructions "
          "more than the service token's scope check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
