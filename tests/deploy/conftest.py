"""The package build, shared by the tests of what the wheel holds and of the installed suite."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.deploy.packaging import BUILD_FILES, REPO, BuiltWheel, package_files


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> BuiltWheel:
    """The project's wheel, built once per session from a copy of the tree's package files and
    metadata: a build in the tree itself would reuse its build/lib, whose stale copies of files
    (a folder's modules from before it lost its __init__.py, say) would hide what is missing."""
    source = tmp_path_factory.mktemp("source")
    for name in sorted(package_files()) + [name for name in BUILD_FILES if (REPO / name).exists()]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    directory = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(directory), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = directory.glob("*.whl")
    return BuiltWheel(wheel, result.stdout + result.stderr)
