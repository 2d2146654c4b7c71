"""Script templates: placeholders substituted shell-quoted, hostile values stay literal, errors located."""
from __future__ import annotations

import subprocess

import pytest

from secrets_manager_service.script_templates import rendering
from secrets_manager_service.script_templates.rendering import PLACEHOLDER_VALUES, TemplateError, check, render

HOSTILE = [
    "plain",
    "it's",
    "''",
    '"double" quotes',
    "$(rm -rf /)",
    "`rm -rf /`",
    "${HOME}$HOME",
    "a;b|c&d>e<f",
    "line1\nline2\n",
    "\\back\\slash\\",
    "tab\there",
    "*?[glob]~",
    "' ; echo pwned ; '",
    "\u2018smart\u2019 \u201aquotes\u201b",
    "ünïcødé ✓",
    "",
    " leading and trailing ",
    "#comment",
    "!history",
]


def run_bash(script: str) -> str:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=10).stdout


@pytest.mark.parametrize("value", HOSTILE)
def test_linux_echo_prints_the_raw_value(value):
    script = render("echo {{ .Password }}", {"Password": value}, "LINUX")
    assert run_bash(script) == value + "\n"


@pytest.mark.parametrize("value", HOSTILE + ["-n", "-e \\n"])
def test_linux_every_placeholder_stays_one_literal_argument(value):
    values = dict.fromkeys(rendering.PLACEHOLDERS, value)
    script = render("printf '<%s>' {{.Username}} {{ .Password }} {{ .OldPassword}} {{.Address }} {{  .Port  }}",
                    values, "LINUX")
    assert run_bash(script) == f"<{value}>" * 5


def test_linux_nothing_is_executed(tmp_path):
    canary = tmp_path / "canary"
    value = f"$(touch {canary})`touch {canary}`; touch {canary}"
    run_bash(render("x={{ .Password }}; echo \"$x\" >/dev/null", {"Password": value}, "LINUX"))
    assert not canary.exists()


def powershell_single_quoted(literal: str) -> str:
    """What PowerShell reads from a single-quoted literal; fails if the literal ends early."""
    quotes = "'\u2018\u2019\u201a\u201b"
    assert literal[0] == "'" and literal[-1] == "'"
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        if body[i] in quotes:
            assert i + 1 < len(body) and body[i + 1] in quotes, f"string closes early at {i}: {literal!r}"
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_windows_values_are_single_quoted_literals(value):
    rendered = render("Set-Secret -Password {{ .Password }}", {"Password": value}, "WINDOWS")
    prefix = "Set-Secret -Password "
    assert rendered.startswith(prefix)
    assert powershell_single_quoted(rendered[len(prefix):]) == value


def test_windows_quote_doubling():
    assert render("{{.Password}}", {"Password": "a'b"}, "WINDOWS") == "'a''b'"
    assert render("{{.Password}}", {"Password": "$(x)"}, "WINDOWS") == "'$(x)'"


def test_text_around_placeholders_is_kept_byte_for_byte():
    script = "#!/bin/sh\n# {not} a {placeholder} }} here\nusermod {{ .Username }}\n"
    assert render(script, {"Username": "root"}, "LINUX") == script.replace("{{ .Username }}", "root")


def test_compile_values_cover_every_placeholder():
    assert set(PLACEHOLDER_VALUES) == set(rendering.PLACEHOLDERS)
    script = " ".join("{{ .%s }}" % name for name in rendering.PLACEHOLDERS)
    assert render(script, PLACEHOLDER_VALUES, "LINUX") == " ".join(PLACEHOLDER_VALUES[n] for n in rendering.PLACEHOLDERS)


@pytest.mark.parametrize("script, position, words", [
    ("echo {{ .Secret }}", 5, "unknown placeholder"),
    ("echo {{ .password }}", 5, "unknown placeholder"),
    ("echo {{ Password }}", 5, "unknown placeholder"),
    ("echo {{ .Password | printf }}", 5, "unknown placeholder"),
    ('{{ printf "%s" .Password }}', 0, "unknown placeholder"),
    ("{{ .Password.Len }}", 0, "unknown placeholder"),
    ("{{- .Password -}}", 0, "unknown placeholder"),
    ("{{}}", 0, "unknown placeholder"),
    ("ok {{ .Username }} then {{ .Nope }}", 24, "unknown placeholder"),
    ("echo {{ .Password", 5, "unclosed"),
    ("echo {{ .Password }} {{", 21, "unclosed"),
    ("a\nb\n{{ .Username }\n", 4, "unclosed"),
])
def test_errors_name_the_offending_position(script, position, words):
    with pytest.raises(TemplateError) as caught:
        check(script)
    assert caught.value.position == position
    assert words in caught.value.message
    assert script[position:position + 2] == "{{"
    with pytest.raises(TemplateError) as again:
        render(script, PLACEHOLDER_VALUES, "LINUX")
    assert again.value.position == position


def test_valid_templates_pass_check():
    check("")
    check("no placeholders at all")
    check("echo {{.Username}}:{{ .Password }} | chpasswd\n# old was {{  .OldPassword  }} on {{.Address}}:{{.Port}}")


def test_missing_value_and_unknown_os():
    with pytest.raises(TemplateError, match="no value"):
        render("{{ .OldPassword }}", {"Password": "x"}, "LINUX")
    with pytest.raises(ValueError, match="operating_system"):
        render("{{ .Password }}", {"Password": "x"}, "SOLARIS")
