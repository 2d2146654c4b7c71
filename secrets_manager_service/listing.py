"""List pages encoded straight to the bytes a client gets, for the long lists (issue 25).

flask-smorest dumps a list through its schema and Flask encodes the result: for a page of 100
accounts that was most of the Secrets Manager's work (about 100k instructions an item: the
schema's dump, RFC 3339 formatting, the JSON encoder's generic walk). A list whose items all
have one shape is written here instead from a template of that shape: the schema dumps one
sample item whose variable values are markers, Flask's encoder encodes it, and the markers'
places become slots. So the schema stays the one definition of the item (its fields, their
order, the constants a family's view puts in), and an item costs one string formatting of its
values, each escaped by the JSON encoder's own C function. Times come as text from the
database, rendered as common.timefmt renders them (its rfc3339_sql).

The bytes are Flask's (compact separators, ASCII escapes, a trailing newline): a page answered
by `page_response` equals the schema's dump of the same items encoded by the app's JSON
provider, which tests/secrets_manager/test_listing_bytes.py checks for every template, and
tests/secrets_manager/test_recorded_responses.py for whole answers. An app whose JSON provider
encodes differently (debug mode's indentation) gets the page through the provider.
"""
from __future__ import annotations

import json
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii

from flask import current_app
from marshmallow import Schema

from common.timefmt import rfc3339

# What Flask's JSON provider gives a response outside debug mode (flask.json.provider).
_FLASK_COMPACT = {"separators": (",", ":"), "ensure_ascii": True}


# A string as JSON, escaped as Flask's encoder escapes it (its C function, called directly: for
# values that are never None, a NOT NULL column's).
quoted = encode_basestring_ascii
# Any JSON value (a dict of a jsonb column) as Flask's encoder gives it: its C encoder, made once
# (json.dumps makes one per call).
_COMPACT = c_make_encoder(None, None, encode_basestring_ascii, None, ":", ",", False, False, True)


# A jsonb column's text (`column::text`: PostgreSQL's canonical form, no leading space) as its value:
# the JSON decoder's C scanner, without json.loads' wrapper (psycopg's jsonb loader adds the
# detection of a bytes value's encoding on top).
_SCAN = json.JSONDecoder().scan_once


def jsonb_value(text: str):
    return _SCAN(text, 0)[0]


def compact(value) -> str:
    """A value of JSON's own types (dict, list, str, int, float, bool, None) as Flask's encoder gives it."""
    return "".join(_COMPACT(value, 0))


class ItemJson:
    """One shape of list item as a template: `format(*values)` is the item's JSON, given each slot's
    value as JSON (quoted, compact) in the order of the markers."""

    def __init__(self, schema: Schema, sample: dict, markers: dict[str, str | dict | datetime | bool]):
        """`sample`: an item as the flow builds it, with `markers[name]` where slot `name`'s value goes:
        a string or a dict (as the schema dumps it), a datetime for a time field, each distinct from
        the others and from every constant; or True for a boolean field whose key is `name` (its
        `"name":true` is found, no other field may carry that key)."""
        encoded = _braces_doubled(json.dumps(schema.dump(sample), **_FLASK_COMPACT))
        for index, (name, marker) in enumerate(markers.items()):
            if marker is True:
                token, slot, places = f'"{name}":true', f'"{name}":{{{index}}}', (1,)
            else:  # (a value may be shown in two places: a host's address)
                token = json.dumps(rfc3339(marker) if isinstance(marker, datetime) else marker, **_FLASK_COMPACT)
                token, slot, places = _braces_doubled(token), f"{{{index}}}", (1, 2)
            if encoded.count(token) not in places:
                raise ValueError(f"slot {name}: its marker is not in the dumped sample, or too often")
            encoded = encoded.replace(token, slot)
        # str.format's C loop, given the values positionally (a dict of them per item cost more).
        self.format = encoded.format


def _braces_doubled(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def page_response(count: int, items: list[str]):
    """The 200 answer `{"count": count, "items": [...]}` (fields.listing_of's shape) of encoded
    items (ItemJson's), as flask-smorest's dump and Flask's encoder would give it."""
    provider = current_app.json
    page = '{"count":%d,"items":[%s]}' % (count, ",".join(items))
    if not _encodes_compactly(provider):
        return provider.response(json.loads(page))
    return current_app.response_class(page + "\n", mimetype=provider.mimetype)


def _encodes_compactly(provider) -> bool:
    compact = provider.compact if provider.compact is not None else not current_app.debug
    return compact and provider.ensure_ascii and not provider.sort_keys
