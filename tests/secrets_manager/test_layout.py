"""The Secrets Manager's SQL is in its stores (issue 19: "SQL only in stores"): no service, view or
flow module runs a statement or reads a result itself, so each table's queries are found in one
place. The drivers are apart: their SQL is what they run on a target host's own database."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "secrets_manager_service"
DATABASE_CALLS = {"execute", "executemany", "copy", "fetchone", "fetchall", "fetchmany"}
APART = ("drivers/", "migrations/")


def is_store(path: Path) -> bool:
    return path.name == "store.py" or path.name.endswith("_store.py")


def database_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"line {node.lineno}: .{node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DATABASE_CALLS]


def test_sql_runs_only_in_stores():
    outside = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not is_store(path) and not relative.startswith(APART):
            calls = database_calls(path)
            if calls:
                outside[relative] = calls
    assert not outside, f"database calls outside the stores: {outside}"


def test_the_check_sees_a_database_call(tmp_path):
    module = tmp_path / "service.py"
    module.write_text("def f(cur):\n    cur.execute('SELECT 1')\n    return cur.fetchone()\n")
    assert database_calls(module) == ["line 2: .execute()", "line 3: .fetchone()"]
