"""Syntax checks of what clients send about a directory: DNs (RFC 4514) and filters (RFC 4515).

Checked when a domain is saved, so a typo is a 400 naming the field, not a failed scan later.
"""
from __future__ import annotations

import re

import ldap.dn

_ATTR = r"(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(?:;[A-Za-z0-9-]+)*"
# attr [:dn] [:rule] := value, attr op value; the value is checked for escapes separately.
_ITEM = re.compile(rf"(?:{_ATTR})(?::dn)?(?::[A-Za-z0-9.-]+)?:=.*|:dn?(?::[A-Za-z0-9.-]+):=.*|(?:{_ATTR})(?:=|~=|>=|<=).*",
                   re.DOTALL)
_BAD_ESCAPE = re.compile(r"\\(?![0-9A-Fa-f]{2})")


def is_dn(text: str) -> bool:
    try:
        return bool(ldap.dn.str2dn(text)) and "\x00" not in text
    except (ldap.DECODING_ERROR, ValueError, TypeError):
        return False


def normal_dn(text: str) -> str:
    """A DN in one spelling (case and spacing), to compare DNs; the text itself if it is no DN."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(text)).lower()
    except (ldap.DECODING_ERROR, ValueError, TypeError):
        return text.lower()


def is_bind_name(text: str, endpoint_type: str) -> bool:
    """A bind DN; for AD also `user@domain` or `DOMAIN\\user`."""
    if is_dn(text):
        return True
    if endpoint_type != "AD":
        return False
    return bool(re.fullmatch(r"[^@\\\s]+@[A-Za-z0-9.-]+|[A-Za-z0-9.-]+\\[^@\\\s]+", text))


def is_filter(text: str) -> bool:
    """Whether `text` is one complete RFC 4515 filter."""
    try:
        end = _filter(text, 0)
    except ValueError:
        return False
    return end == len(text)


def _filter(text: str, i: int) -> int:
    """Parse one parenthesised filter at i; return the index after it."""
    if i >= len(text) or text[i] != "(":
        raise ValueError("expected (")
    i += 1
    if i < len(text) and text[i] in "&|":
        i += 1
        count = 0
        while i < len(text) and text[i] == "(":
            i = _filter(text, i)
            count += 1
        if count == 0:
            raise ValueError("empty set")
    elif i < len(text) and text[i] == "!":
        i = _filter(text, i + 1)
    else:
        end = _item_end(text, i)
        item = text[i:end]
        if not _ITEM.fullmatch(item) or _BAD_ESCAPE.search(item) or "(" in item:
            raise ValueError("bad item")
        i = end
    if i >= len(text) or text[i] != ")":
        raise ValueError("expected )")
    return i + 1


def _item_end(text: str, i: int) -> int:
    end = text.find(")", i)
    if end < 0:
        raise ValueError("unclosed")
    return end
