"""PrivX script templates: Go-template placeholders, substituted shell-quoted, nothing evaluated.

A template is plain script text with placeholders such as `{{ .Password }}`
(whitespace inside the braces is optional). Only the names in PLACEHOLDERS are
known; any other `{{ ... }}` is an error, so a template can never run logic of
its own. Values are quoted for the target's shell, so a password holding
quotes, `$(...)`, backticks or newlines reaches the script as one literal
argument. Rendered scripts and values are never logged: they hold passwords.
"""
from __future__ import annotations

import re
import shlex

PLACEHOLDERS = ("Username", "Password", "OldPassword", "Address", "Port")
OPERATING_SYSTEMS = ("LINUX", "WINDOWS")

# What the compile endpoint shows in place of real values.
PLACEHOLDER_VALUES = {
    "Username": "example-user",
    "Password": "example-password",
    "OldPassword": "example-old-password",
    "Address": "host.example.com",
    "Port": "22",
}

_OPEN, _CLOSE = "{{", "}}"
_ALLOWED = ", ".join("{{ .%s }}" % name for name in PLACEHOLDERS)
_ACTION = re.compile(r"\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*")
# PowerShell closes a single-quoted string on any of these, not only on ASCII '.
_POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


class TemplateError(Exception):
    """A template that cannot be rendered; `position` is the 0-based offset of the offending `{{`."""

    def __init__(self, position: int, message: str):
        super().__init__(f"{message} (at position {position})")
        self.position = position
        self.message = message


def check(script: str) -> None:
    """Raise TemplateError at the first placeholder that is unknown or unclosed."""
    for _ in _parse(script):
        pass


def render(script: str, values: dict[str, str], operating_system: str) -> str:
    """The script with every placeholder replaced by its value quoted for `operating_system`'s shell."""
    quote = _quoter(operating_system)
    out = []
    for kind, start, text in _parse(script):
        if kind == "text":
            out.append(text)
            continue
        value = values.get(text)
        if value is None:
            raise TemplateError(start, f"no value for placeholder .{text}")
        out.append(quote(str(value)))
    return "".join(out)


def placeholders(script: str) -> set[str]:
    """The placeholder names the script uses (raises TemplateError like check)."""
    return {text for kind, _, text in _parse(script) if kind == "placeholder"}


def quote_powershell(value: str) -> str:
    """A PowerShell single-quoted literal: no expansion inside, quote characters doubled."""
    return "'" + "".join(c + c if c in _POWERSHELL_QUOTES else c for c in value) + "'"


def _quoter(operating_system: str):
    if operating_system == "LINUX":
        return shlex.quote
    if operating_system == "WINDOWS":
        return quote_powershell
    raise ValueError(f"unknown operating_system {operating_system!r}; expected one of {', '.join(OPERATING_SYSTEMS)}")


def _parse(script: str):
    """Yield ("text", offset, text) and ("placeholder", offset of its `{{`, name) in order."""
    if not isinstance(script, str):
        raise TemplateError(0, "script must be a string")
    pos = 0
    while True:
        start = script.find(_OPEN, pos)
        if start < 0:
            if pos < len(script):
                yield "text", pos, script[pos:]
            return
        if start > pos:
            yield "text", pos, script[pos:start]
        end = script.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            raise TemplateError(start, "unclosed action: '{{' without a matching '}}'")
        inner = script[start + len(_OPEN):end]
        match = _ACTION.fullmatch(inner)
        if match is None or match.group(1) not in PLACEHOLDERS:
            raise TemplateError(start, f"unknown placeholder {_excerpt(inner)}; allowed: {_ALLOWED}")
        yield "placeholder", start, match.group(1)
        pos = end + len(_CLOSE)


def _excerpt(inner: str, limit: int = 40) -> str:
    text = "{{" + inner + "}}"
    return repr(text if len(text) <= limit else text[:limit] + "...")
