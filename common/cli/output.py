"""Results as JSON (for scripts), a table (for people) or YAML."""
from __future__ import annotations

import json

import click
import yaml

FORMATS = ("table", "json", "yaml")


def emit(result, fmt: str, columns: tuple[str, ...] = ()) -> None:
    """Print `result`; a table shows `columns` of a list (the `items` of a page) or the keys of an object."""
    if result is None:
        return
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(result, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(_table(result, columns))


def _cell(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _table(result, columns: tuple[str, ...]) -> str:
    rows = result.get("items") if isinstance(result, dict) and "items" in result else result
    if isinstance(rows, dict):  # one object: KEY  VALUE lines
        width = max((len(k) for k in rows), default=0)
        return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in rows.items())
    if not rows:
        return "(none)"
    if not isinstance(rows[0], dict):
        return "\n".join(_cell(row) for row in rows)
    columns = columns or tuple(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)
