"""A caller's policies compiled into one ACL: which capabilities it has on a path, decided as
HashiCorp Vault's vault/acl.go decides.

- Rules with the same pattern, from any of the caller's policies, merge: their capabilities
  add up, and a `deny` among them leaves only `deny`.
- An exact pattern (no wildcard) wins over every other; a LIST also tries the path without
  its trailing '/'.
- Otherwise, among the prefix rules (`foo/*`) and segment-wildcard rules (`foo/+/bar`) that
  match, the most specific wins: the one whose first wildcard comes later; then one without
  a trailing `*`; then fewer `+` segments; then the longer pattern; then the larger string.
- `deny` on the winning rule refuses everything; no matching rule grants nothing.
"""
from __future__ import annotations

from typing import NamedTuple

DENY, CREATE, READ, UPDATE, DELETE, LIST, SUDO, PATCH = (1 << bit for bit in range(8))
BITS = {"deny": DENY, "create": CREATE, "read": READ, "update": UPDATE, "delete": DELETE, "list": LIST,
        "sudo": SUDO, "patch": PATCH}
# The order Vault reports them in before sorting (vault/acl.go: Capabilities).
_REPORTED = ("sudo", "read", "list", "update", "delete", "create", "patch")


def names_of(bits: int) -> list[str]:
    """Capability names, sorted as Vault's sys/capabilities answers them; ["deny"] for none."""
    if bits & DENY or not bits & ~DENY:
        return ["deny"]
    return sorted(name for name in _REPORTED if bits & BITS[name])


def _merged(existing: int | None, added: int) -> int:
    if existing is None:
        return added
    if existing & DENY or added & DENY:
        return DENY
    return existing | added


class _Wildcard(NamedTuple):
    """A non-exact rule, with what Vault ranks matches by (larger is more specific)."""

    rank: tuple
    parts: tuple[str, ...]  # the pattern without a trailing '*', split on '/'
    is_prefix: bool
    bits: int


class Acl:
    """The compiled rules of a set of policies (named in `policies`, for audit events)."""

    def __init__(self, policies: list[tuple[str, list[dict]]]):
        self.policies = tuple(name for name, _ in policies)
        by_pattern: dict[str, int] = {}
        for _, rules in policies:
            for rule in rules:
                bits = 0
                for capability in rule["capabilities"]:
                    bits |= BITS[capability]
                by_pattern[rule["path"]] = _merged(by_pattern.get(rule["path"]), bits)
        self._exact: dict[str, int] = {}
        self._prefixes: list[tuple[str, int]] = []  # (prefix, bits), longest first
        segment_rules: list[_Wildcard] = []
        for pattern, bits in by_pattern.items():
            has_segment_wildcard = pattern == "+" or pattern.startswith("+/") or "/+" in pattern
            is_prefix = pattern.endswith("*")
            stem = pattern[:-1] if is_prefix else pattern
            if has_segment_wildcard:
                parts = tuple(stem.split("/"))
                rank = (pattern.index("+"), not is_prefix, -parts.count("+"), len(stem), stem)
                segment_rules.append(_Wildcard(rank, parts, is_prefix, bits))
            elif is_prefix:
                self._prefixes.append((stem, bits))
            else:
                self._exact[pattern] = bits
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)
        self._segment_rules = tuple(segment_rules)

    def capabilities(self, path: str, *, listing: bool = False) -> int:
        """The capability bits the winning rule gives on `path` (0: no rule matches)."""
        bits = self._exact.get(path)
        if bits is not None:
            return bits
        if listing:
            trimmed = path[:-1] if path.endswith("/") else path
            bits = self._exact.get(trimmed)
            if bits is not None:
                return bits
            # A LIST first tries without its trailing '/': a `foo*` rule may match `foo` there.
            if trimmed != path:
                found = self._non_exact(trimmed)
                if found is not None:
                    return found
        found = self._non_exact(path)
        return 0 if found is None else found

    def _non_exact(self, path: str) -> int | None:
        best_rank, best_bits = None, None
        for prefix, bits in self._prefixes:
            if path.startswith(prefix):
                if not self._segment_rules:
                    return bits
                best_rank, best_bits = (len(prefix), False, 0, len(prefix), prefix), bits
                break
        if self._segment_rules:
            parts = path.split("/")
            for rule in self._segment_rules:
                if (best_rank is None or rule.rank > best_rank) and _segments_match(rule, parts):
                    best_rank, best_bits = rule.rank, rule.bits
        return best_bits

    def may_reach_under(self, prefix: str, wanted: int) -> bool:
        """Whether some rule that is not a deny gives one of `wanted` on a path below `prefix`
        (which ends in '/'): LIST shows a folder only to a caller who could use something in it."""
        if self.capabilities(prefix, listing=True) & wanted and not self.capabilities(prefix, listing=True) & DENY:
            return True
        for pattern, bits in self._exact.items():
            if bits & wanted and not bits & DENY and pattern.startswith(prefix):
                return True
        for stem, bits in self._prefixes:
            if bits & wanted and not bits & DENY and (stem.startswith(prefix) or prefix.startswith(stem)):
                return True
        prefix_parts = prefix.split("/")[:-1]
        for rule in self._segment_rules:
            if rule.bits & wanted and not rule.bits & DENY and _could_match_below(rule, prefix_parts):
                return True
        return False


def _segments_match(rule: _Wildcard, parts: list[str]) -> bool:
    pattern = rule.parts
    if len(parts) < len(pattern) or (not rule.is_prefix and len(parts) != len(pattern)):
        return False
    last = len(pattern) - 1
    for index, part in enumerate(pattern):
        if part == "+" or part == parts[index]:
            continue
        if rule.is_prefix and index == last and parts[index].startswith(part):
            continue
        return False
    return True


def _could_match_below(rule: _Wildcard, prefix_parts: list[str]) -> bool:
    """Whether the rule matches some path made of `prefix_parts` and at least one more segment."""
    pattern = rule.parts
    last = len(pattern) - 1
    for index, part in enumerate(prefix_parts):
        if index > last:
            return rule.is_prefix  # the pattern's '*' takes the rest
        if part == pattern[index] or pattern[index] == "+":
            continue
        return rule.is_prefix and index == last and part.startswith(pattern[index])
    return len(pattern) > len(prefix_parts) or rule.is_prefix
