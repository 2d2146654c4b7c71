"""Generated passwords: every enabled class present, no disabled class, length in bounds, clear errors."""
from __future__ import annotations

import itertools
import string

import pytest

from secrets_manager_service.passwords import SPECIAL, generate_password

CLASSES = {
    "use_lower_case": set(string.ascii_lowercase),
    "use_upper_case": set(string.ascii_uppercase),
    "use_numbers": set(string.digits),
    "use_special_characters": set(SPECIAL),
}


def policy(low, high, **flags):
    return {"password_min_length": low, "password_max_length": high,
            **{flag: flags.get(flag, False) for flag in CLASSES}}


SHAPES = [flags for n in range(1, 5) for flags in itertools.combinations(CLASSES, n)]


@pytest.mark.parametrize("enabled", SHAPES, ids=lambda flags: "+".join(f[4:] for f in flags))
def test_every_enabled_class_and_no_other(enabled):
    rules = policy(len(enabled), 24, **{flag: True for flag in enabled})
    allowed = set().union(*(CLASSES[flag] for flag in enabled))
    for _ in range(300):
        password = generate_password(rules)
        assert len(enabled) <= len(password) <= 24
        assert set(password) <= allowed
        for flag in enabled:
            assert set(password) & CLASSES[flag], (flag, password)


def test_length_is_spread_over_the_whole_range():
    rules = policy(8, 12, use_lower_case=True, use_numbers=True)
    lengths = {len(generate_password(rules)) for _ in range(500)}
    assert lengths == {8, 9, 10, 11, 12}


def test_fixed_length_and_minimum_equal_to_class_count():
    everything = dict.fromkeys(CLASSES, True)
    assert {len(generate_password(policy(32, 32, **everything))) for _ in range(50)} == {32}
    for _ in range(200):
        password = generate_password(policy(4, 4, **everything))
        assert all(set(password) & chars for chars in CLASSES.values())


def test_class_positions_are_shuffled():
    rules = policy(4, 4, **dict.fromkeys(CLASSES, True))
    firsts = {generate_password(rules)[0] for _ in range(300)}
    assert any(c.isdigit() for c in firsts) and any(c.islower() for c in firsts)


def test_passwords_do_not_repeat():
    rules = policy(16, 16, use_lower_case=True, use_upper_case=True, use_numbers=True)
    assert len({generate_password(rules) for _ in range(1000)}) == 1000


def test_special_characters_are_varied_but_free_of_quotes_and_whitespace():
    assert len(set(SPECIAL)) >= 20
    assert not set(SPECIAL) & set("'\"`\\ \t\n")


@pytest.mark.parametrize("rules, words", [
    (policy(8, 16), "no character class"),
    (policy(17, 16, use_lower_case=True), "greater than password_max_length"),
    (policy(3, 16, **dict.fromkeys(CLASSES, True)), "less than the number of enabled"),
    (policy(0, 0, use_lower_case=True), "at least 1"),
    ({"password_max_length": 8, "use_lower_case": True}, "password_min_length"),
    (policy("x", 8, use_lower_case=True), "integers"),
])
def test_impossible_policies_are_refused(rules, words):
    with pytest.raises(ValueError, match=words):
        generate_password(rules)


@pytest.mark.parametrize("length", [4, 16])
def test_rotation_passwords_pass_the_frequency_test(length):
    """The same chi-squared test as the Vault's generated passwords (tests/vault/test_password_generation.py):
    one generator (common.passwords), uniform over the passwords that hold each enabled class."""
    from secrets_manager_service.passwords import enabled_alphabets
    from tests.vault.test_password_generation import DRAWS, frequencies_pass

    rules = policy(length, length, **dict.fromkeys(CLASSES, True))
    passwords = [generate_password(rules) for _ in range(DRAWS)]
    passed, statistic, critical = frequencies_pass(passwords, enabled_alphabets(rules), length)
    assert passed, f"chi-squared {statistic:.1f} >= {critical:.1f}"
