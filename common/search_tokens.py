"""Keyword search narrowed by name segments: the tsquery half of the rule whose SQL half is common
migration 0004 (`search_segments`, `search_infixes`).

A keyword matches where it is a substring of the text (`lower(text) LIKE '%keyword%'`), and that
LIKE stays the test that decides. Trigrams (pg_trgm) serve it well unless the keyword's trigrams
are in nearly every name (`team-0003` among a million `team-NNNN/...` names), so the text is also
cut into segments at SEPARATORS and indexed by them. A keyword is a run of characters of the
text, so its separators fall on the text's and each of its parts says something of one segment:
for `a-b-c`, some segment ends with `a`, one is `b` and one starts with `c`; a keyword with no
separator lies inside one segment. Those conditions hold for every text the LIKE matches, so the
tsquery made of them narrows the search to an index lookup and changes no result (the LIKE
still rechecks each row).

`search_segments` holds each segment (the parts between separators: "is" and "starts with");
`search_infixes`, where a table has it, every segment's suffixes of MIN_CHARS or more ("ends
with" and "lies inside": a substring of a segment starts one of its suffixes). Parts shorter
than MIN_CHARS give no condition: nearly every text would meet it. Long segments are indexed by
their first SEGMENT_CHARS characters and suffixes by their first INFIX_CHARS (a tsvector lexeme
is at most 2047 bytes), so a longer part asks only for its beginning.
"""
from __future__ import annotations

import re

# The same characters as migration 0004's translate(): characters of names, host addresses and
# account names that usually divide words. Any set gives the same results; this one decides
# what narrows well.
SEPARATORS = "/ .-_@+=:\\"
SEGMENT_CHARS = 500
INFIX_CHARS = 32
MIN_CHARS = 3

_SEPARATOR_RUN = re.compile("[" + re.escape(SEPARATORS) + "]+")


def _lexeme(text: str, *, prefix: bool) -> str:
    quoted = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return quoted + ":*" if prefix else quoted


def _query(lexemes: list[str]) -> str | None:
    return " & ".join(dict.fromkeys(lexemes)) or None


def segment_query(keywords: list[str]) -> str | None:
    """A tsquery on `search_segments(lower(text))` that every text holding each (lower-case)
    keyword meets; None when no keyword has a part between or after separators to ask for."""
    lexemes = []
    for keyword in keywords:
        parts = _SEPARATOR_RUN.split(keyword)
        for position, part in enumerate(parts[1:], start=1):
            if len(part) < MIN_CHARS:
                continue
            whole = position < len(parts) - 1  # between two separators: the whole segment
            if whole and len(part) < SEGMENT_CHARS:
                lexemes.append(_lexeme(part, prefix=False))
            else:  # starts the segment (or is longer than what is indexed of it)
                lexemes.append(_lexeme(part[:SEGMENT_CHARS], prefix=True))
    return _query(lexemes)


def infix_query(keywords: list[str]) -> str | None:
    """A tsquery on `search_infixes(lower(text))` that every text holding each (lower-case)
    keyword meets: a keyword without separators lies inside a segment, the part before a
    keyword's first separator ends one. None when no keyword has such a part to ask for."""
    lexemes = []
    for keyword in keywords:
        first, *rest = _SEPARATOR_RUN.split(keyword)
        if len(first) < MIN_CHARS:
            continue
        ends_segment = bool(rest) and len(first) < INFIX_CHARS
        lexemes.append(_lexeme(first if ends_segment else first[:INFIX_CHARS], prefix=not ends_segment))
    return _query(lexemes)
