"""The policy language and the ACL matcher alone (no server): Vault's parsing rules and the
precedence examples of its vault/acl.go, and the LIST rules (trailing '/', what a folder shows)."""
from __future__ import annotations

import pytest

from vault_service.acl import language, matcher
from vault_service.acl.matcher import Acl, names_of


def acl(text: str, *more: str) -> Acl:
    return Acl([(f"p{i}", language.parse(t)) for i, t in enumerate((text, *more))])


def caps(a: Acl, path: str, listing: bool = False) -> list[str]:
    return names_of(a.capabilities(path, listing=listing))


def test_hcl_json_and_the_old_policy_shorthand_parse_to_the_same_rules():
    hcl = 'path "/secret/data/a/*" {\n  capabilities = ["list", "read"]  # comment\n}\n'
    json_text = '{"path": {"secret/data/a/*": {"capabilities": ["read", "list"]}}}'
    old = 'path "secret/data/a/*" { policy = "read" }'
    expected = [{"path": "secret/data/a/*", "capabilities": ["read", "list"]}]
    assert language.parse(hcl) == language.parse(json_text) == language.parse(old) == expected
    assert language.parse('path "x" { capabilities = ["read", "deny"] }') == [{"path": "x", "capabilities": ["deny"]}]


@pytest.mark.parametrize("rules, path, expected", [
    # From vault/acl.go's priority comment.
    (['foo/a*', 'foo/+'], "foo/ab", "foo/a*"),
    (['foo/bar/+/baz', 'foo/+/bar/baz'], "foo/bar/bar/baz", "foo/bar/+/baz"),
    (['foo/+/bar', 'foo/+/ba*'], "foo/x/bar", "foo/+/bar"),
    (['foo/+', 'foo/*'], "foo/x", "foo/+"),
    (['foo/bar/+/baz', 'foo/+/+/baz'], "foo/bar/x/baz", "foo/bar/+/baz"),
    (['foo/+/bar/ba*', 'foo/+/bar/b*'], "foo/x/bar/baz", "foo/+/bar/ba*"),
    # Exact over everything; the longest plain prefix.
    (['foo/*', 'foo/x'], "foo/x", "foo/x"),
    (['foo/*', 'foo/sub/*'], "foo/sub/y", "foo/sub/*"),
])
def test_the_most_specific_rule_wins(rules, path, expected):
    # Each rule gives one distinct capability, so the answer names the winner.
    given = ("read", "update", "delete", "create")
    a = acl("\n".join(f'path "{rule}" {{ capabilities = ["{cap}"] }}' for rule, cap in zip(rules, given)))
    assert caps(a, path) == [given[rules.index(expected)]]


def test_rules_of_one_pattern_merge_and_deny_takes_all():
    a = acl('path "s/x" { capabilities = ["read"] }', 'path "s/x" { capabilities = ["update"] }')
    assert caps(a, "s/x") == ["read", "update"]
    b = acl('path "s/x" { capabilities = ["read"] }', 'path "s/x" { capabilities = ["deny"] }',
            'path "s/x" { capabilities = ["update"] }')
    assert caps(b, "s/x") == ["deny"] and b.capabilities("s/x") == matcher.DENY


def test_a_list_tries_the_path_without_its_trailing_slash():
    a = acl('path "secret/metadata/app" { capabilities = ["list"] }')
    assert caps(a, "secret/metadata/app/", listing=True) == ["list"]
    assert caps(a, "secret/metadata/app/") == ["deny"]
    glob = acl('path "secret/metadata/ap*" { capabilities = ["list"] }')
    assert caps(glob, "secret/metadata/app/", listing=True) == ["list"]


def test_segment_wildcards_are_whole_segments():
    a = acl('path "s/+/x" { capabilities = ["read"] }', 'path "s/+/*" { capabilities = ["list"] }')
    assert caps(a, "s/a/x") == ["read"]
    assert caps(a, "s/a/b/c") == ["list"]
    assert caps(a, "s/a") == ["deny"]  # s/+/* needs a third segment
    literal = acl('path "s/a+b" { capabilities = ["read"] }')  # '+' inside a segment is a character
    assert caps(literal, "s/a+b") == ["read"] and caps(literal, "s/axb") == ["deny"]


def test_what_a_folder_shows_in_a_listing():
    a = acl('path "secret/data/app/one/+/x" { capabilities = ["read"] }',
            'path "secret/data/app/two/*" { capabilities = ["deny"] }')
    assert a.may_reach_under("secret/data/app/one/", matcher.READ)
    assert a.may_reach_under("secret/data/app/", matcher.READ)
    assert not a.may_reach_under("secret/data/app/two/", matcher.READ)
    assert not a.may_reach_under("secret/data/other/", matcher.READ)
