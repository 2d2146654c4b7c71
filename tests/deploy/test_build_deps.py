"""deploy/build-deps.sh, the first step of `make install`: python-ldap compiles, so a machine
without a C compiler and the OpenLDAP/SASL headers gets them (as root, with apt: proved in a
bare Debian container by `make fresh-machine-test`) or one line naming them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "build-deps.sh"


def run(tmp_path, *, dpkg_knows: bool, uid: int) -> subprocess.CompletedProcess:
    """The script with this machine's tools, except `dpkg -s` (which packages are installed)
    and `id -u` (who runs it), which answer as told."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name, body in (("dpkg", f"exit {0 if dpkg_knows else 1}"), ("id", f"echo {uid}")):
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    return subprocess.run(["sh", str(SCRIPT), sys.executable], env={"PATH": f"{stubs}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)


def test_make_install_runs_it_before_anything_else():
    recipe = (REPO / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\n\n", 1)[0].splitlines()
    assert recipe[1].strip() == "@sh deploy/build-deps.sh $(PYTHON)"


def test_nothing_to_do_when_the_packages_are_there(tmp_path):
    result = run(tmp_path, dpkg_knows=True, uid=1000)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_not_root_it_names_what_to_install_in_one_line(tmp_path):
    result = run(tmp_path, dpkg_knows=False, uid=1000)
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.endswith("install them first: sudo apt-get install gcc libc6-dev libldap-dev libsasl2-dev"), line
