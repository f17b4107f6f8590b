"""Secret redaction in the policy file: which patterns are masked in what participants see and record.

A policy's ``redaction`` section names the built-in patterns it keeps (all, by default) and
adds its own regexes. Each pattern has a name (the audit counts maskings by name, never the
secret) and a Python regular expression over the session's output bytes, decoded as Latin-1
(so every byte is one character; patterns should stay within ASCII). If a pattern has a
group named ``secret``, only that group is masked (``token=(?P<secret>\\w{32})`` keeps
``token=``); otherwise the whole match is.

Custom patterns pass ``patterns.compile_guarded`` (length, no nested quantifier) and must not
match the empty string. The streaming masker that applies them is ``gateway.sessions.redact``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.policy.patterns import compile_guarded
from gateway.policy.rules import RuleId, Spec

MAX_PATTERNS = 64

# The built-in set: (name, regex). Each is anchored on a literal prefix so that scanning
# output without candidates stays fast, and bounded so that a match cannot run away.
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("aws-access-key-id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    (
        "aws-secret-access-key",
        r"(?i:aws_?secret_?access_?key)[\"']?[ \t]{0,8}[:=][ \t]{0,8}[\"']?(?P<secret>[A-Za-z0-9/+]{40})\b",
    ),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b"),
    ("github-fine-grained-token", r"\bgithub_pat_[A-Za-z0-9_]{22,242}\b"),
    ("gitlab-token", r"\bgl(?:pat|dt|ptt|rt|cbt|oas)-[A-Za-z0-9_-]{20,200}"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,250}"),
    ("anthropic-or-openai-key", r"\bsk-(?:ant-(?:api|admin)\d\d-|proj-|svcacct-)?[A-Za-z0-9_-]{32,250}"),
    ("stripe-key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{20,250}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    (
        "private-key-block",
        r"-----BEGIN (?:[A-Z0-9]{1,20}+ ){0,3}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,-]{0,8192}?"
        r"-----END (?:[A-Z0-9]{1,20}+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    ),
    ("bearer-token", r"(?i:\bbearer)[ \t]{1,8}(?P<secret>[A-Za-z0-9._~+/-]{20,1024}={0,2})"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,2048}"),
)
DEFAULT_NAMES = frozenset(name for name, _ in DEFAULT_PATTERNS)


def _pattern(value: object) -> object:
    if isinstance(value, str) and not value.isascii():
        raise ValueError("a redaction pattern must be ASCII (write other characters as \\xNN escapes)")
    compiled = compile_guarded(value)
    if compiled.fullmatch("") is not None:
        raise ValueError("the pattern matches the empty string; it would mask nothing useful")
    return compiled.pattern


PatternText = Annotated[
    str,
    BeforeValidator(_pattern),
    Field(description="A Python regular expression over the output; a `secret` group narrows the mask."),
]


class RedactionPattern(Spec):
    """One custom pattern: its name (counted in the audit, never the secret) and its regex."""

    name: RuleId
    regex: PatternText


class RedactionSpec(Spec):
    """Secrets masked in what remote participants see, in the recording and in its search index.

    The owner's own terminal is never changed.
    """

    enabled: StrictBool = Field(True, description="false: mask nothing (not recommended).")
    defaults: StrictBool = Field(True, description="Use the built-in patterns (cloud keys, tokens, …).")
    disable: tuple[RuleId, ...] = Field((), description="Names of built-in patterns to leave out.")
    patterns: tuple[RedactionPattern, ...] = Field((), max_length=MAX_PATTERNS)

    @field_validator("disable")
    @classmethod
    def _known_defaults(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in DEFAULT_NAMES:
                raise PydanticCustomError(
                    "unknown_redaction",
                    "unknown built-in pattern '{name}' (built-in: {known})",
                    {"name": name, "known": ", ".join(sorted(DEFAULT_NAMES))},
                )
        return names

    @model_validator(mode="after")
    def _unique_names(self) -> RedactionSpec:
        seen = set(DEFAULT_NAMES) if self.defaults else set()
        for p in self.patterns:
            if p.name in seen:
                raise PydanticCustomError(
                    "duplicate_redaction", "redaction pattern name '{name}' is used twice", {"name": p.name}
                )
            seen.add(p.name)
        return self

    def active(self) -> tuple[tuple[str, str], ...]:
        """The (name, regex) pairs in force, built-ins first."""
        if not self.enabled:
            return ()
        builtin = [(n, r) for n, r in DEFAULT_PATTERNS if self.defaults and n not in self.disable]
        return (*builtin, *((p.name, p.regex) for p in self.patterns))


def check_defaults() -> None:
    """Every built-in pattern passes the same checks as a custom one (a unit test calls this)."""
    for _, pattern in DEFAULT_PATTERNS:
        _pattern(re.compile(pattern))
