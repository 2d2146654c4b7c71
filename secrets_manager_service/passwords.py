"""Password generation from a PasswordPolicy, with a cryptographic random source only."""
from __future__ import annotations

import secrets
import string

from common.passwords import uniform_password

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
NUMBERS = string.digits
# Varied, yet free of quotes, backslash, backtick and whitespace: those are the
# characters most likely to break a hand-written rotation script or a client
# that forgets to quote. Everything here is safe once properly quoted.
SPECIAL = "!#$%&()*+,-./:;<=>?@[]^_{|}~"

# (policy flag, alphabet), in a fixed order so error messages are stable
CLASSES = (
    ("use_lower_case", LOWER),
    ("use_upper_case", UPPER),
    ("use_numbers", NUMBERS),
    ("use_special_characters", SPECIAL),
)

def enabled_alphabets(policy: dict) -> list[str]:
    """The alphabets of the character classes the policy enables."""
    return [alphabet for flag, alphabet in CLASSES if policy.get(flag)]


def check_policy(policy: dict) -> None:
    """Raise ValueError if no password can satisfy the policy."""
    classes = enabled_alphabets(policy)
    if not classes:
        raise ValueError("password policy enables no character class "
                         "(use_lower_case, use_upper_case, use_numbers, use_special_characters)")
    low, high = _length_bounds(policy)
    if low > high:
        raise ValueError(f"password_min_length ({low}) is greater than password_max_length ({high})")
    if low < len(classes):
        raise ValueError(f"password_min_length ({low}) is less than the number of enabled "
                         f"character classes ({len(classes)})")


def generate_password(policy: dict) -> str:
    """A random password of a uniformly chosen length in [min, max] with every enabled class at
    least once, uniform over the passwords of that length that have them (common.passwords)."""
    check_policy(policy)
    low, high = _length_bounds(policy)
    return uniform_password(enabled_alphabets(policy), low + secrets.randbelow(high - low + 1))


def _length_bounds(policy: dict) -> tuple[int, int]:
    try:
        low = int(policy["password_min_length"])
        high = int(policy["password_max_length"])
    except KeyError as exc:
        raise ValueError(f"password policy lacks {exc.args[0]}") from None
    except (TypeError, ValueError):
        raise ValueError("password_min_length and password_max_length must be integers") from None
    if low < 1:
        raise ValueError(f"password_min_length ({low}) must be at least 1")
    return low, high
