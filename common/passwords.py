"""Random passwords from the operating system's CSPRNG (`secrets`), uniform over what is allowed.

Both services generate passwords: the Vault by a Lockbox-style specification on write, the
Secrets Manager by a password policy on rotation. The rule of how is here, once.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence


def uniform_password(classes: Sequence[str], length: int) -> str:
    """A password of `length` characters with at least one of each class (disjoint strings of
    distinct characters), uniform over every such password.

    Rejection sampling: each character is drawn uniformly (`secrets.choice`, no modulo bias) from
    the union of the classes, and a password lacking a class is drawn again. Placing one character
    of each class and shuffling the rest in would be quicker, but it makes the small classes
    (digits: 10 of 94 characters) more frequent than the uniform draw allows; rejection keeps
    every allowed password equally likely. The expected number of draws is small: at worst about
    a hundred for a 4-character password of 4 classes with one punctuation character allowed.
    """
    if not classes or any(not alphabet for alphabet in classes):
        raise ValueError("at least one non-empty character class is needed")
    if length < len(classes):
        raise ValueError(f"a password of {length} characters cannot hold one of each of {len(classes)} classes")
    alphabet = "".join(classes)
    class_sets = [frozenset(alphabet_of_class) for alphabet_of_class in classes]
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        drawn = set(password)
        if all(drawn & members for members in class_sets):
            return password
