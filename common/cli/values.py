"""Values from the command line, a file (`@path`) or standard input (`-`), so that passwords
never have to sit in a shell's history."""
from __future__ import annotations

import json
import sys

import click


def read_value(text: str) -> str:
    """`-`: standard input; `@path`: the file's content; anything else: itself. One trailing
    newline (what `echo` and editors add) is dropped from stdin and files."""
    if text == "-":
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
        body[key] = read_value(value)
    return body
