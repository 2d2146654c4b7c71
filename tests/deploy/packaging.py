"""What the project's wheel is built from: the three packages' files in the tree and the metadata
setuptools reads (tests/deploy/conftest.py builds it; the wheel tests compare against it)."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "vault_service", "secrets_manager_service")
# Besides the packages, what setuptools reads to build the wheel (setup.cfg's long_description is the README).
BUILD_FILES = ("setup.py", "setup.cfg", "README.md", "LICENSE")


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    output: str  # what `pip wheel` printed, for the warnings check


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
