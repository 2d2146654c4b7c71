"""Syntax checks of what clients send about a directory: DNs (RFC 4514) and filters (RFC 4515).

Checked when a domain is saved, so a typo is a 400 naming the field, not a failed scan later.
"""
from __future__ import annotations

import re

_ATTR = r"(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(?:;[A-Za-z0-9-]+)*"
# attr [:dn] [:rule] := value, attr op value; the value is checked for escapes separately.
_ITEM = re.compile(rf"(?:{_ATTR})(?::dn)?(?::[A-Za-z0-9.-]+)?:=.*|:dn?(?::[A-Za-z0-9.-]+):=.*|(?:{_ATTR})(?:=|~=|>=|<=).*",
                   re.DOTALL)
_BAD_ESCAPE = re.compile(r"\\(?![0-9A-Fa-f]{2})")


# --- the grammars the OpenAPI documents state (no lookahead: every regex dialect, and
# generators such as Schemathesis, must read them); the server checks exactly these.

# RFC 1123 host names, or an IPv6 address (an IPv4 address is a host name by this grammar).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_H16 = r"[0-9A-Fa-f]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV6 = "|".join((
    rf"(?:{_H16}:){{7}}{_H16}",
    rf"(?:{_H16}:){{1,7}}:",
    rf"(?:{_H16}:){{1,6}}:{_H16}",
    rf"(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}",
    rf"(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}",
    rf"(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}",
    rf"(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}",
    rf"{_H16}:(?::{_H16}){{1,6}}",
    rf":(?:(?::{_H16}){{1,7}}|:)",
    rf"(?:{_H16}:){{6}}{_IPV4}",
    rf"::(?:[Ff]{{4}}:)?{_IPV4}",
))
HOST_PATTERN = rf"^(?:{_LABEL}(?:\.{_LABEL})*\.?|{_IPV6})$"
MAX_HOST_LENGTH = 253

# RFC 4514 distinguished names (at least one RDN): attribute type (descr or numeric OID) '='
# a string with RFC 4514's escapes, or '#' and hex pairs; RDNs joined by ',', values by '+'
# (spaces after either are taken too, as people write "dc=example, dc=com").
_TYPE = r"(?:[A-Za-z][A-Za-z0-9-]*|(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+)"
_PAIR = r"\\(?:[\\\"+,;<>= #]|[0-9A-Fa-f]{2})"
_LEAD = r'[^\x00 "#+,;<>\\]'
_MIDDLE = r'[^\x00"+,;<>\\]'
_TRAIL = r'[^\x00 "+,;<>\\]'
_STRING = rf"(?:(?:{_LEAD}|{_PAIR})(?:(?:{_MIDDLE}|{_PAIR})*(?:{_TRAIL}|{_PAIR}))?)?"
_VALUE = rf"(?:#(?:[0-9A-Fa-f]{{2}})+|{_STRING})"
_RDN = rf"{_TYPE}={_VALUE}(?:\+ *{_TYPE}={_VALUE})*"
DN_PATTERN = rf"^{_RDN}(?:, *{_RDN})*$"

# What an endpoint may bind as: a DN, or (AD only, which the service checks) `user@domain` or
# `DOMAIN\user`.
_AD_USER_PATTERN = r"[^@\\\x00-\x20]+@[A-Za-z0-9.-]+|[A-Za-z0-9.-]+\\[^@\\\x00-\x20]+"
BIND_NAME_PATTERN = rf"^(?:{DN_PATTERN[1:-1]}|{_AD_USER_PATTERN})$"
# An attribute's name (RFC 4512: a descriptor or a numeric OID), as in a DN.
ATTRIBUTE_PATTERN = rf"^{_TYPE}$"

_HOST = re.compile(HOST_PATTERN)
_DN = re.compile(DN_PATTERN)
_AD_USER = re.compile(_AD_USER_PATTERN)
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_PATTERN)


def is_host(text: str) -> bool:
    return len(text) <= MAX_HOST_LENGTH and _HOST.fullmatch(text) is not None


def is_dn(text: str) -> bool:
    return _DN.fullmatch(text) is not None


def is_attribute(text: str) -> bool:
    return _ATTRIBUTE_NAME.fullmatch(text) is not None


def is_bind_name(text: str, endpoint_type: str) -> bool:
    """A bind DN; for AD also `user@domain` or `DOMAIN\\user`."""
    if is_dn(text):
        return True
    return endpoint_type == "AD" and _AD_USER.fullmatch(text) is not None


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
