"""Values from the command line, a file (`@path`) or standard input (`-`), so that passwords
never have to sit in a shell's history."""
from __future__ import annotations

import getpass
import json
import sys

import click


def read_value(text: str, label: str = "Value") -> str:
    """`-`: standard input; `@path`: the file's content; anything else: itself. One trailing
    newline (what `echo` and editors add) is dropped from stdin and files. Standard input that
    is a terminal is asked for one line without echo (`label` is the prompt), as passwords are."""
    if text == "-":
        if sys.stdin.isatty():
            return getpass.getpass(f"{label}: ")
        return _strip_newline(sys.stdin.read())
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                return _strip_newline(handle.read())
        except OSError as exc:
            raise click.BadParameter(f"cannot read {text[1:]}: {exc.strerror}") from None
    return text


def _strip_newline(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def data_from(pairs: tuple[str, ...], data: str | None) -> dict:
    """A secret's data: a JSON object (`--data '{...}'`, `--data @file.json`, `--data -`),
    then `key=value` pairs on top (`key=@file`, `key=-` for one value from stdin)."""
    body: dict = {}
    if data is not None:
        try:
            body = json.loads(read_value(data))
        except ValueError:
            raise click.BadParameter("is not JSON", param_hint="--data") from None
        if not isinstance(body, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--data")
    if sum(1 for pair in pairs if pair.partition("=")[2] == "-") + (data == "-") > 1:
        raise click.BadParameter("standard input (-) can give only one value")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value (value may be @file or -)")
        body[key] = read_value(value, key)
    return body


YES = click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")


def confirm(question: str, yes: bool) -> None:
    """A destructive command goes ahead with --yes, or when the user at the terminal says so;
    never on input that is not a terminal (a pipe, a script): that takes --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Not asked (standard input is not a terminal): give --yes")
    if not click.confirm(question, err=True):
        raise click.Abort()
