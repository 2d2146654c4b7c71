"""Fixtures are shared through conftest files and the plugins tests/conftest.py names in
pytest_plugins, each under a name of its own (issue 19: three different fixtures were once all
`vault`, one overriding another): no two shared fixtures have one name, and no test module
defines a fixture under the name of a shared one it would hide."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def fixtures_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if ast.unparse(call.func if call else decorator).endswith("fixture"):
                    named = [k.value.value for k in (call.keywords if call else ()) if k.arg == "name"]
                    names.add(named[0] if named else node.name)
    return names


def plugin_modules() -> list[Path]:
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytest_plugins" for t in node.targets):
            return [REPO / (name.replace(".", "/") + ".py") for name in ast.literal_eval(node.value)]
    return []


def shared() -> dict[Path, set[str]]:
    """Every conftest's and plugin's fixtures."""
    return {path: fixtures_of(path) for path in [*sorted(TESTS.rglob("conftest.py")), *plugin_modules()]}


def test_no_two_shared_fixtures_have_one_name():
    seen: dict[str, Path] = {}
    clashes = []
    for path, names in shared().items():
        for name in names:
            if name in seen:
                clashes.append(f"{name}: {seen[name].relative_to(REPO)} and {path.relative_to(REPO)}")
            seen[name] = path
    assert not clashes


def test_no_module_hides_a_shared_fixture():
    providers = shared()
    plugins = set(plugin_modules())
    hidden = []
    for path in sorted(TESTS.rglob("*.py")):
        if path in providers:
            continue
        # What the module sees: the plugins' fixtures and those of every conftest above it.
        visible = {name: other for other, names in providers.items()
                   if other in plugins or path.is_relative_to(other.parent) for name in names}
        hidden += [f"{path.relative_to(REPO)} hides {name} of {visible[name].relative_to(REPO)}"
                   for name in sorted(fixtures_of(path)) if name in visible]
    assert not hidden


def test_no_module_imports_a_conftest():
    """pytest loads each conftest itself; a module importing one loads it a second time, under
    another name, with fixtures registered twice. What tests share besides fixtures lives in
    ordinary modules (tests/support.py, a folder's helpers)."""
    importers = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if any(name.split(".")[-1] == "conftest" for name in names):
                importers.append(str(path.relative_to(REPO)))
    assert importers == []
