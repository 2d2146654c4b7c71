"""The benchmark programs (make bench, bench-cpu, bench-scale, load...) are not run by make test,
so a module they import that moved goes unnoticed until someone measures (bench-cpu's floor app
imported the target-domain store from its place before the split). Importing each of them is
cheap and catches that."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests.benchmarks

MODULES = sorted(info.name for info in pkgutil.iter_modules(tests.benchmarks.__path__))


def test_there_are_benchmark_modules():
    assert {"bench", "cpu", "floor_app"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_a_benchmark_module_imports(name):
    importlib.import_module(f"tests.benchmarks.{name}")
