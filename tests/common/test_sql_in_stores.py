"""SQL only in stores (issue 19, point 4): in common/, vault_service/ and secrets_manager_service/,
a statement is run only by a store module (`store.py`, `*_store.py`), so each query has one home
beside its kind. The exceptions say why."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "vault_service", "secrets_manager_service")
EXCEPTIONS = {
    "common/db.py": "the database layer stores run on: connections, health checks, migrations, paging",
    "common/ratelimit.py": "a Redis pipeline's execute(), not SQL",
    "common/devtools/embedded_pg.py": "a development program (not run-time): creates the embedded server's database",
    "secrets_manager_service/drivers/postgresql.py": "the rotation driver: ALTER ROLE on a target host's database, not ours",
}
_EXECUTE = re.compile(r"\.execute\(")


def test_statements_are_run_only_by_stores():
    outside = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if path.name == "store.py" or path.name.endswith("_store.py") or relative in EXCEPTIONS:
                continue
            outside += [f"{relative}:{number}" for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                        if _EXECUTE.search(line)]
    assert not outside, f"SQL run outside a store module: {outside}"


def test_every_exception_is_still_needed():
    for relative in EXCEPTIONS:
        assert _EXECUTE.search((REPO / relative).read_text(encoding="utf-8")), f"{relative} runs no statement: drop it"
