"""Keyword search by segments (common/search_tokens.py and common migration 0004): SQL cuts a
text at the same separators as the queries assume, and every text holding a keyword meets the
keyword's token queries, so narrowing a search by them changes no result."""
from __future__ import annotations

import random

import psycopg
import pytest

from common import search_tokens
from common.db import like_escaped
from common.search_tokens import infix_query, segment_query


def test_queries_ask_for_what_each_part_of_a_keyword_says_of_a_segment():
    assert segment_query(["team-0003"]) == "'0003':*"  # starts a segment
    assert infix_query(["team-0003"]) == "'team'"  # ends one
    assert segment_query(["a/prod/xy"]) == "'prod'"  # is one; `a` and `xy` are too short to ask for
    assert infix_query(["a/prod/xy"]) is None
    assert segment_query(["acct042"]) is None and infix_query(["acct042"]) == "'acct042':*"  # lies inside one
    assert segment_query(["-0003", "/prod/", "prod"]) == "'0003':* & 'prod'"  # each asked once
    assert segment_query(["a_b%c"]) == "'b%c':*" and infix_query(["a_b%c"]) is None  # `_` separates; `%` is a character
    assert segment_query(["x/it's\\q"]) == "'it\\'s'" and infix_query(["o'neil"]) == "'o\\'neil':*"
    assert segment_query(["/", "-", "a-b", "ab"]) is None and infix_query(["/", "-", "a-b", "ab"]) is None
    long = "x" * 600
    assert segment_query([f"a/{long}/b"]) == f"'{'x' * search_tokens.SEGMENT_CHARS}':*"  # only its beginning is indexed
    assert infix_query([long]) == f"'{'x' * search_tokens.INFIX_CHARS}':*"


@pytest.fixture()
def migrated(vault_app, vault_db):
    """A database with the functions (any service's migrations bring the common ones)."""
    vault_app.extensions["db"].migrate()
    return vault_db


TEXTS = ["team-0003/ledger-2/prod/db-password-0002700", "Hosts/5F1C2D3E-aa/acct042 10.0.0.5", "//a..b--c__d@@e++f==g::h\\\\i",
         "  lead and trail  ", "", "x", "ünïcode/ÄÖ-straße", "it's/o'neil", "per%cent_under_score", "a" * 2100 + "/tail-end",
         "b" * 70 + "/" + "c" * 40]


def test_sql_cuts_texts_at_the_python_separators(migrated):
    with psycopg.connect(migrated) as conn:
        for text in TEXTS:
            lowered, found, infixes = conn.execute(
                "SELECT lower(%(t)s), tsvector_to_array(search_segments(lower(%(t)s))),"
                " tsvector_to_array(search_infixes(lower(%(t)s)))", {"t": text}).fetchone()
            segments = [s for s in search_tokens._SEPARATOR_RUN.split(lowered) if s]
            assert sorted(found) == sorted({s[:search_tokens.SEGMENT_CHARS] if len(lowered.encode()) >= 2048 else s
                                            for s in segments}), text
            assert sorted(infixes) == sorted({s[i:i + search_tokens.INFIX_CHARS] for s in segments
                                              for i in range(len(s) - search_tokens.MIN_CHARS + 1)}), text


def test_every_text_holding_a_keyword_meets_its_token_queries(migrated):
    """Thousands of texts and keywords drawn from separators, LIKE's wildcards, quotes and a few
    letters (so that they often meet): wherever the LIKE of the search matches, both token queries
    do too."""
    rng = random.Random(25)
    words, separators = ["ab", "aab", "ba0", "Äb", "a%b", "o'b", "abab0", "0a0a"], "/ .-_@+=:\\"
    texts = ["".join(rng.choice(words) + rng.choice(separators) * rng.randint(0, 2) for _ in range(rng.randint(0, 5)))
             for _ in range(300)] + TEXTS
    keywords = []
    for _ in range(700):
        text = rng.choice(texts)
        start = rng.randint(0, len(text))
        keywords.append(text[start:start + rng.randint(1, 14)] or "a")
    keywords += ["".join(rng.choice(words + list(separators)) for _ in range(rng.randint(1, 4))) for _ in range(200)]
    keywords = [k.lower() for k in keywords]
    with psycopg.connect(migrated) as conn:
        matched, asked, missed = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE k.segments IS NOT NULL OR k.infixes IS NOT NULL),
                      count(*) FILTER (WHERE NOT (coalesce(search_segments(lower(t)) @@ k.segments::tsquery, true)
                                                  AND coalesce(search_infixes(lower(t)) @@ k.infixes::tsquery, true)))
                 FROM unnest(%(texts)s::text[]) AS t,
                      unnest(%(patterns)s::text[], %(segments)s::text[], %(infixes)s::text[]) AS k(pattern, segments, infixes)
                WHERE lower(t) LIKE k.pattern""",
            {"texts": texts, "patterns": [f"%{like_escaped(k)}%" for k in keywords],
             "segments": [segment_query([k]) for k in keywords], "infixes": [infix_query([k]) for k in keywords]}).fetchone()
    assert missed == 0
    assert matched > 5000 and asked > 2000  # the draw makes many matches, many of them through the index
