"""HashiCorp's ACL policy language: a policy's text (HCL, or JSON) parsed into rules, each rule
checked, so that what is stored is exactly what is enforced (after Vault's vault/policy.go).

    path "secret/data/app/*" {
      capabilities = ["read", "list"]
    }

A rule is `{"path": pattern, "capabilities": [...]}`. Patterns are full paths under /v1/
(a leading '/' is dropped, as Vault does); `*` may only end one (any suffix), a segment that
is exactly `+` matches one segment. Keys Vault knows but this server would not enforce
(`allowed_parameters`, `min_wrapping_ttl`, `control_group`, ...) are refused, never stored.
HCL is parsed by python-hcl2 (Vault's policies are HCL 1, whose policy subset HCL 2 reads).
"""
from __future__ import annotations

import hcl2
from lark.exceptions import LarkError, UnexpectedInput

from common import errors, strict_json
from vault_service import names

CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny")
# Vault's pre-0.9 `policy = "..."` shorthand, mapped as vault/policy.go maps it.
OLD_POLICIES = {
    "deny": ("deny",),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}
RULE_KEYS = ("capabilities", "policy", "comment")
# What Vault's path blocks also take; named in the refusal, so the writer knows it was not ignored.
UNENFORCED_KEYS = ("allowed_parameters", "denied_parameters", "required_parameters", "min_wrapping_ttl",
                   "max_wrapping_ttl", "mfa_methods", "control_group", "subscribe_event_types")
TOP_LEVEL_KEYS = ("path", "name")
MAX_POLICY_CHARS = 64 * 1024
MAX_RULES = 1000
_PATTERN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-@ +=/*")
_HCL = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=True)
_BLOCK = "__is_block__"


class PolicyError(errors.ApiError):
    """A policy that does not parse, or a rule this server will not store; the message says which."""

    status, code, default_message = 400, "INVALID_POLICY", "invalid policy"


def parse(text: str) -> list[dict]:
    """The rules of a policy's text, in the order written; PolicyError if anything is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError("'policy' parameter not supplied or empty")
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"failed to parse policy: longer than {MAX_POLICY_CHARS} characters")
    document = _json(text) if text.lstrip().startswith("{") else _hcl(text)
    if not isinstance(document, dict):
        raise PolicyError("failed to parse policy: does not contain a root object")
    unknown = sorted(key for key in document if key not in TOP_LEVEL_KEYS)
    if unknown:
        raise PolicyError(f"failed to parse policy: invalid key {unknown[0]!r} on line 1")
    rules = [_rule(pattern, body) for pattern, body in _path_blocks(document.get("path", []))]
    if len(rules) > MAX_RULES:
        raise PolicyError(f"failed to parse policy: more than {MAX_RULES} path blocks")
    return rules


def _hcl(text: str):
    try:
        return hcl2.loads(text, serialization_options=_HCL)
    except UnexpectedInput as exc:
        raise PolicyError(f"failed to parse policy: at line {exc.line}, column {exc.column}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    except (LarkError, ValueError, TypeError, RecursionError) as exc:
        raise PolicyError(f"failed to parse policy: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None


def _json(text: str):
    try:
        return strict_json.loads(text.encode("utf-8"))
    except errors.ApiError as exc:
        raise PolicyError(f"failed to parse policy: {exc.message}") from None


def _path_blocks(value) -> list[tuple[str, dict]]:
    """(pattern, body) of every path block: HCL gives a list of one-label blocks, JSON (and an
    HCL `path = {...}` attribute) a map of pattern to body."""
    if isinstance(value, dict):
        return [(pattern, body) for pattern, body in value.items()]
    if not isinstance(value, list):
        raise PolicyError("failed to parse policy: 'path' must be blocks: path \"<pattern>\" { ... }")
    blocks = []
    for item in value:
        if not isinstance(item, dict) or len(item) != 1:
            raise PolicyError("failed to parse policy: a path block takes exactly one label, its pattern")
        (pattern, body), = item.items()
        if not isinstance(body, dict) or _BLOCK not in body:
            raise PolicyError(f"failed to parse policy: path {pattern!r}: a path block takes exactly one label, "
                              "its pattern")
        blocks.append((pattern, {key: val for key, val in body.items() if key != _BLOCK}))
    return blocks


def _rule(raw_pattern, body) -> dict:
    pattern = check_pattern(raw_pattern)
    where = f"path {pattern!r}"
    if not isinstance(body, dict):
        raise PolicyError(f"failed to parse policy: {where}: expected a block of settings")
    unenforced = sorted(key for key in body if key in UNENFORCED_KEYS)
    if unenforced:
        raise PolicyError(f"{where}: {', '.join(unenforced)} is not supported by this server: such a rule "
                          "would not be enforced, so it is not stored")
    unknown = sorted(key for key in body if key not in RULE_KEYS)
    if unknown:
        raise PolicyError(f"{where}: invalid key {unknown[0]!r}")
    granted = _capabilities(body.get("capabilities", []), where)
    if "policy" in body:
        old = body["policy"]
        if not isinstance(old, str) or old not in OLD_POLICIES:
            raise PolicyError(f"{where}: invalid policy {old!r}")
        granted |= set(OLD_POLICIES[old])
    if "deny" in granted:  # deny alone: it refuses everything on the path
        granted = {"deny"}
    return {"path": pattern, "capabilities": [c for c in CAPABILITIES if c in granted]}


def _capabilities(value, where: str) -> set[str]:
    if isinstance(value, str):  # Vault's HCL decoding takes one string for a one-item list
        value = [value]
    if not isinstance(value, list):
        raise PolicyError(f"{where}: capabilities must be a list of strings")
    for item in value:
        if not isinstance(item, str) or item not in CAPABILITIES:
            raise PolicyError(f"{where}: invalid capability {item!r}")
    return set(value)


def check_pattern(raw) -> str:
    """A rule's path pattern, normalised (no leading '/'); PolicyError naming what is wrong."""
    if not isinstance(raw, str):
        raise PolicyError("failed to parse policy: a path pattern must be a string")
    pattern = raw[1:] if raw.startswith("/") else raw
    where = f"path {raw!r}"
    if not pattern:
        raise PolicyError(f"{where}: empty pattern")
    if "{{" in pattern or "${" in pattern:
        raise PolicyError(f"{where}: templated policies are not supported by this server")
    if "+*" in pattern:
        raise PolicyError(f"{where}: invalid use of wildcards ('+*' is forbidden)")
    if "*" in pattern[:-1]:
        raise PolicyError(f"{where}: '*' may only end a pattern")
    if not set(pattern) <= _PATTERN_CHARS:
        raise PolicyError(f"{where}: a pattern is '/'-separated segments of letters, digits and ._-@ +=, "
                          "'+' as a whole segment and '*' at the end")
    segments = pattern.split("/")
    if any(segment == "" for segment in segments[:-1]):
        raise PolicyError(f"{where}: empty segment")
    if len(segments) > 2 and segments[2].rstrip("*") in names.RESERVED_PREFIXES:
        raise PolicyError(f"{where}: names the Secrets Manager's reserved secrets ({segments[2].rstrip('*')}/...), "
                          "which only the Secrets Manager reaches")
    return pattern
