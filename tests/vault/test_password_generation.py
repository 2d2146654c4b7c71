"""Generated passwords are good passwords: 10,000 per representative spec, each of its length,
with each included class, nothing outside the alphabet, and character frequencies that pass a
chi-squared test against what a uniform draw over the allowed passwords gives.

What "uniform" means here, honestly: every password of the allowed alphabet that holds each
included class is equally likely (common.passwords draws uniformly and redraws a password that
lacks a class). Per character that is *not* exactly uniform over the alphabet: requiring a digit
in 8 characters makes digits a little more frequent than 10/94 (and in a 4-character password of
4 classes every class is exactly a quarter). No generator can give both "each class present" and
per-character uniformity, so the test compares with the exact frequencies of the uniform draw
over allowed passwords (inclusion-exclusion, in integers); within a class those are uniform, so
any modulo bias or class-placement bias shows. Two biased generators are shown to fail the same
test: "one of each class, then shuffle" (what the easy way does) and "random byte modulo N".

The statistic counts every position of every password. Positions of one password are not
independent (the class requirement ties them), but that dependence only narrows the spread of
class totals, so the statistic is, if anything, smaller than a chi-squared with (alphabet - 1)
degrees of freedom: at alpha = 1e-6 the test fails about once in a million runs or less.
"""
from __future__ import annotations

import math
import os
import secrets
import string
from collections import Counter
from itertools import combinations

import pytest

from vault_service.versioned import password_spec
from vault_service.versioned.schemas import PasswordPayloadSpecification

DRAWS = 10_000
ALPHA = 1e-6

SPECS = {
    "default: 32 of all 94": {},
    "8 of all 94": {"length": 8},
    "4 of 4 classes": {"length": 4},
    "16 without punctuation": {"length": 16, "include_punctuation": False},
    "12 with 5 punctuation": {"length": 12, "included_punctuation": "!@#$%"},
    "24 without uppercase, 4 punctuation excluded": {"length": 24, "include_uppercase": False,
                                                     "excluded_punctuation": "\"'\\`"},
    "20 digits only": {"length": 20, "include_uppercase": False, "include_lowercase": False,
                       "include_punctuation": False},
}


def loaded(extra: dict) -> dict:
    return PasswordPayloadSpecification().load({"password_key": "pw", **extra})


# --------------------------------------------------------------------------- the statistics


def expected_probabilities(classes: list[str], length: int) -> dict[str, float]:
    """P(a given position holds character c) when every password of `length` over the union of
    `classes` that holds each class is equally likely. Exact, by inclusion-exclusion over the
    classes allowed to be missing (the rest of the password must supply them)."""
    sizes = [len(c) for c in classes]
    total = sum(sizes)

    def holding_all(must: list[int], positions: int) -> int:
        # Strings of `positions` characters over the whole alphabet holding every class in `must`.
        return sum((-1) ** r * sum((total - sum(sizes[i] for i in missing)) ** positions
                                   for missing in combinations(must, r)) for r in range(len(must) + 1))

    valid = holding_all(list(range(len(classes))), length)
    probabilities = {}
    for index, characters in enumerate(classes):
        # Position 1 holds c (of class `index`): the other length-1 must supply every other class.
        others = [i for i in range(len(classes)) if i != index]
        per_character = holding_all(others, length - 1) / valid
        probabilities.update({c: per_character for c in characters})
    return probabilities


def upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the survival function of chi-squared at 2x with 2a degrees
    of freedom (Numerical Recipes' gammq: a series below a+1, a continued fraction above)."""
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_squared_critical(df: int, alpha: float) -> float:
    """The value a chi-squared variable with `df` degrees of freedom exceeds with probability alpha."""
    low, high = 0.0, df + 100.0 * math.sqrt(df) + 100
    for _ in range(200):
        middle = (low + high) / 2
        if upper_regularized_gamma(df / 2, middle / 2) > alpha:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def chi_squared(counts: Counter, probabilities: dict[str, float], n: int) -> float:
    return sum((counts.get(c, 0) - n * p) ** 2 / (n * p) for c, p in probabilities.items())


def frequencies_pass(passwords: list[str], classes: list[str], length: int) -> tuple[bool, float, float]:
    probabilities = expected_probabilities(classes, length)
    counts = Counter("".join(passwords))
    statistic = chi_squared(counts, probabilities, len(passwords) * length)
    critical = chi_squared_critical(len(probabilities) - 1, ALPHA)
    return statistic < critical, statistic, critical


# --------------------------------------------------------------------------- the tests


def test_the_critical_values_are_right():
    # Known quantiles (R: qchisq(1 - p, df)), and Wilson-Hilferty's approximation at our alpha.
    assert chi_squared_critical(1, 0.05) == pytest.approx(3.841459, rel=1e-5)
    assert chi_squared_critical(10, 0.01) == pytest.approx(23.20925, rel=1e-5)
    assert chi_squared_critical(93, 0.05) == pytest.approx(116.5110, rel=1e-4)
    z = 4.753424  # the standard normal's upper 1e-6 quantile
    for df in (61, 93):  # the approximation is good for many degrees of freedom (2.6% off at 9)
        wilson_hilferty = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
        assert chi_squared_critical(df, 1e-6) == pytest.approx(wilson_hilferty, rel=0.005)


def test_expected_frequencies_are_a_distribution_and_uniform_where_nothing_is_required():
    for classes, length in (([string.ascii_letters, string.digits], 8), ([string.digits], 5),
                            ([string.ascii_uppercase, string.ascii_lowercase, string.digits, string.punctuation], 4)):
        assert sum(expected_probabilities(classes, length).values()) == pytest.approx(1.0, abs=1e-12)
    assert set(expected_probabilities([string.digits], 5).values()) == {0.1}
    # Four characters of four classes: each class is exactly a quarter of the characters.
    four = expected_probabilities([string.ascii_uppercase, string.ascii_lowercase, string.digits, "!?"], 4)
    assert four["0"] * 10 == pytest.approx(0.25) and four["!"] * 2 == pytest.approx(0.25)


@pytest.mark.parametrize("name", list(SPECS))
def test_generated_passwords_have_their_shape_and_uniform_frequencies(name):
    spec = loaded(SPECS[name])
    classes = password_spec.classes_of(spec)
    alphabet = set("".join(classes))
    passwords = [password_spec.generate(spec) for _ in range(DRAWS)]
    for password in passwords:
        assert len(password) == spec["length"]
        assert set(password) <= alphabet
        assert all(set(password) & set(characters) for characters in classes), password
    passed, statistic, critical = frequencies_pass(passwords, classes, spec["length"])
    assert passed, f"{name}: chi-squared {statistic:.1f} >= {critical:.1f} (alpha {ALPHA})"
    assert len(set(passwords)) == DRAWS or spec["length"] <= 4  # no repeats where the space is vast


def one_of_each_then_shuffle(classes: list[str], length: int) -> str:
    """The easy way, which the test must catch: small classes come out too often."""
    alphabet = "".join(classes)
    chars = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - len(classes))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def modulo_of_a_byte(classes: list[str], length: int) -> str:
    """A byte modulo the alphabet's size, redrawn until each class is present: modulo bias."""
    alphabet = "".join(classes)
    while True:
        password = "".join(alphabet[b % len(alphabet)] for b in os.urandom(length))
        if all(set(password) & set(c) for c in classes):
            return password


@pytest.mark.parametrize("biased", [one_of_each_then_shuffle, modulo_of_a_byte])
def test_the_frequency_test_catches_biased_generators(biased):
    spec = loaded({})
    classes = password_spec.classes_of(spec)
    passwords = [biased(classes, spec["length"]) for _ in range(DRAWS)]
    passed, statistic, critical = frequencies_pass(passwords, classes, spec["length"])
    assert not passed, f"{biased.__name__}: chi-squared {statistic:.1f} < {critical:.1f}"


def test_generation_draws_from_the_operating_systems_csprng(monkeypatch):
    """common.passwords uses secrets.choice (os.urandom underneath), nothing seeded."""
    import common.passwords

    calls = []
    real = secrets.choice
    monkeypatch.setattr(common.passwords.secrets, "choice", lambda seq: calls.append(seq) or real(seq))
    password = password_spec.generate(loaded({"length": 20}))
    assert len(calls) >= 20 and len(password) == 20
    assert not hasattr(common.passwords, "random")
