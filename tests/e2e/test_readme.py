"""The README's shell blocks are pasted by newcomers as they are: each must parse, pipe only into
real tools (never `a|b` meaning "a or b", which a shell runs as a pipeline: `secrets list |
secrets delete x` deletes without asking), and the command-line block must run, line by line,
against `make run`."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.suite import ROOT

# The suite's own programs: never on the receiving end of a pipe in the README.
OUR_PROGRAMS = {"secrets", "vault-admin", "secrets-manager-worker", "dev-token-issuer", "make"}
# Tools a README pipe may feed (whether or not this machine has them; others must be on PATH).
TOOLS = {"jq", "grep", "head", "tail", "sort", "wc", "less", "base64", "cut", "tr", "xargs", "tee", "sed", "awk"}


def shell_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, flags=re.S | re.M)


def piped_commands(line: str) -> list[str]:
    """The first word of every command that a `|` feeds on this line (after variable assignments)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.commenters = "#"
    lexer.whitespace_split = True
    tokens = list(lexer)
    fed = []
    for i, token in enumerate(tokens):
        if token == "|":
            rest = [t for t in tokens[i + 1:] if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t)]
            fed.append(rest[0] if rest else "")
    return fed


def test_the_readme_has_the_blocks_this_test_reads():
    blocks = shell_blocks()
    assert len(blocks) >= 2 and any("secrets login" in block for block in blocks)


def test_every_readme_shell_block_parses_and_pipes_only_into_real_tools():
    bash = shutil.which("bash")
    for block in shell_blocks():
        syntax = subprocess.run([bash, "-n"], input=block, text=True, capture_output=True)
        assert syntax.returncode == 0, f"{syntax.stderr}\n{block}"
        for line in block.replace("\\\n", " ").splitlines():  # a line continued with \ is one line
            for command in piped_commands(line):
                assert command not in OUR_PROGRAMS, f"a pipe into {command}: {line}"
                assert command in TOOLS or shutil.which(command), f"a pipe into {command!r}, which is no program: {line}"


def test_the_pipe_check_sees_the_or_notation_it_forbids():
    assert piped_commands("secrets list | secrets search db | secrets delete app/db") == ["secrets", "secrets"]
    assert piped_commands("secrets versions history|metadata app/db") == ["metadata"]
    assert piped_commands("curl -s 'http://x/a|b' | jq -r .access_token  # a|b") == ["jq"]


@pytest.mark.slow
def test_the_command_line_block_runs_against_make_run(suite, suite_data, tmp_path):
    """Pasted into a shell in the folder `make run` runs from (its DATA_DIR here): the `secrets`
    command finds the suite's URLs (all on other ports than the defaults) in DATA_DIR/urls.json."""
    (block,) = [b for b in shell_blocks() if "secrets login" in b]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETS_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"), DATA_DIR=str(suite_data), TOKEN=suite.token)
    assert shutil.which("secrets", path=env["PATH"]), "the secrets command is not installed (make install)"
    # `set -e`: each line must succeed; the login's `--password -` reads the password from standard input.
    result = subprocess.run(["bash", "-e", "-c", block], input="dev-admin-secret\n", text=True, capture_output=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "privx-admin" in result.stdout and "n0t-a-real-password" in result.stdout and "team/db" in result.stdout
    gone = requests.get(f"http://127.0.0.1:{suite.ports['VAULT_PORT']}/vault/api/v1/metadata/secrets/team%2Fdb",
                        headers={"Authorization": f"Bearer {suite.token}"}, timeout=10)
    assert gone.status_code == 404  # the block's `secrets delete team/db --yes`
