"""A list of texts that psycopg sends as a PostgreSQL array literal written once.

psycopg adapts a plain list on every execute: it looks for the type of its first element,
upgrades its dumper to the element's and writes the literal, a thirtieth of a v1 read's
instructions for the caller's role ids, which are the same on each of its requests (issue 25).
A TextArray carries its literal, made on its first use: sent as psycopg sends a list of str
(text format, type left to the server: the SQL casts it, e.g. `%(a_roles)s::text[]`).
"""
from __future__ import annotations

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format


class TextArray(list):
    """A list of str, never changed after it is made (its literal is kept)."""

    _literal: str | None = None

    def literal(self) -> str:
        if self._literal is None:
            if any("\x00" in item for item in self):  # what psycopg's own dumper refuses
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in self)
            self._literal = "{" + ",".join(quoted) + "}"
        return self._literal


class _TextArrayDumper(Dumper):
    format = Format.TEXT
    oid = 0  # as a list of str: the server infers the type (unknown)

    def __init__(self, cls, context=None):
        super().__init__(cls, context)
        # The connection's client encoding, as psycopg's own str dumpers encode (its public name).
        self._encoding = self.connection.info.encoding if self.connection is not None else "utf-8"

    def dump(self, obj: TextArray) -> bytes:
        return obj.literal().encode(self._encoding)


psycopg.adapters.register_dumper(TextArray, _TextArrayDumper)
