"""Lockbox's `passwordPayloadSpecification`: which characters a generated password may hold.

The request shape is versioned.schemas.PasswordPayloadSpecification; a loaded spec is a dict
with every field set (defaults filled in), which is also what the versions list shows.
"""
from __future__ import annotations

import string

from common.passwords import uniform_password

# The 32 punctuation characters of Lockbox (and of Python's string.punctuation): !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
PUNCTUATION = string.punctuation
DEFAULT_LENGTH = 32
MAX_LENGTH = 256
PASSWORD_KEY_PATTERN = r"^[-_./\\@0-9a-zA-Z]{1,256}$"

# (flag, its characters), in the order the errors name them.
CLASSES = (
    ("include_uppercase", string.ascii_uppercase),
    ("include_lowercase", string.ascii_lowercase),
    ("include_digits", string.digits),
    ("include_punctuation", PUNCTUATION),
)


def punctuation_of(spec: dict) -> str:
    """The punctuation characters the spec allows, in PUNCTUATION's order."""
    if spec["included_punctuation"]:
        return "".join(c for c in PUNCTUATION if c in spec["included_punctuation"])
    return "".join(c for c in PUNCTUATION if c not in spec["excluded_punctuation"])


def classes_of(spec: dict) -> list[str]:
    """The character classes the spec includes: each appears at least once in a password."""
    return [punctuation_of(spec) if flag == "include_punctuation" else characters
            for flag, characters in CLASSES if spec[flag]]


def problem(spec: dict) -> tuple[str, str] | None:
    """(property, message) of what makes the spec impossible, or None."""
    if not any(spec[flag] for flag, _ in CLASSES):
        return "include_uppercase", "every character class is off: no password can be generated"
    if spec["included_punctuation"] and spec["excluded_punctuation"]:
        return "included_punctuation", "give included_punctuation or excluded_punctuation, not both"
    if (spec["included_punctuation"] or spec["excluded_punctuation"]) and not spec["include_punctuation"]:
        return "include_punctuation", "included_punctuation and excluded_punctuation need include_punctuation"
    classes = len(classes_of(spec))
    if spec["length"] < classes:
        return "length", f"length {spec['length']} cannot hold one character of each of the {classes} included classes"
    return None


def generate(spec: dict) -> str:
    """A new password by a loaded, possible spec (problem() is None)."""
    return uniform_password(classes_of(spec), spec["length"])
