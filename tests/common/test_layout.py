"""common/'s reading (docs/DESIGN.md): the services and common's run-time modules never import
the programs that sit beside them (common/cli, common/devtools) when they load; the embedded
PostgreSQL, a development fallback, is reached only from inside the functions that need it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APART = ("common.cli", "common.devtools")
# The development fallbacks a running service may reach, each only from inside a function.
LAZY_ALLOWED = {
    ("common/db.py", "common.devtools.embedded_pg"),     # no DATABASE_URL: start the embedded server
    ("common/config.py", "common.devtools.embedded_pg"),  # no DATABASE_URL: is the embedded server installed?
}


def run_time_modules() -> list[Path]:
    found = []
    for package in ("common", "vault_service", "secrets_manager_service"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if not relative.startswith(("common/cli/", "common/devtools/")):
                found.append(path)
    return found


def imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(names imported when the module loads, names imported inside functions)"""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                inside.update(imported_names(node))
    everywhere = {name for node in ast.walk(tree) for name in imported_names(node)}
    return everywhere - inside, inside


def reaches_apart(name: str) -> bool:
    return any(name == part or name.startswith(part + ".") for part in APART)


@pytest.mark.parametrize("path", run_time_modules(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_run_time_code_does_not_import_the_programs_beside_it(path):
    relative = path.relative_to(REPO).as_posix()
    at_load, inside = imports_of(path)
    assert not [n for n in at_load if reaches_apart(n)], f"{relative} imports a program of common/cli or common/devtools"
    unexpected = {n for n in inside if reaches_apart(n)} - {name for file, name in LAZY_ALLOWED if file == relative}
    # `from common.devtools import embedded_pg` names the package and the module: the package is fine
    unexpected -= {"common.devtools"} if any(file == relative for file, _ in LAZY_ALLOWED) else set()
    assert not unexpected, f"{relative} reaches {sorted(unexpected)} at run time"


def test_every_allowed_way_in_is_still_used():
    # An entry nobody needs any more would let a new import through unseen.
    for file, name in LAZY_ALLOWED:
        assert name in imports_of(REPO / file)[1], f"{file} no longer imports {name}: drop it from LAZY_ALLOWED"


def test_the_programs_apart_are_where_the_design_says():
    for folder in ("common/cli", "common/devtools/issuer"):
        assert (REPO / folder / "__init__.py").is_file()
    for module in ("devstack", "slapd", "embedded_pg"):
        assert (REPO / "common" / "devtools" / f"{module}.py").is_file()
        assert not (REPO / "common" / f"{module}.py").exists()
