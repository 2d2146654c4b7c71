"""The package build, shared by the tests of what the wheel holds and of the installed suite."""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "vault_service", "secrets_manager_service")
# Besides the packages, what setuptools reads to build the wheel (setup.cfg's long_description is the README).
BUILD_FILES = ("setup.py", "setup.cfg", "README.md", "LICENSE")


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    output: str  # what `pip wheel` printed, for the warnings check


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


def package_files() -> set[str]:
    """Every file the three packages hold in the tree (the tracked ones, in a git checkout):
    the modules and the data files a wheel must carry."""
    try:
        listed = subprocess.run(["git", "ls-files", "--", *PACKAGES], cwd=REPO, capture_output=True, text=True,
                                check=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: what is on disk
        listed = [str(p.relative_to(REPO)) for package in PACKAGES for p in (REPO / package).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    return {name for name in listed if (REPO / name).is_file()}  # a tracked file deleted in the work tree is gone
