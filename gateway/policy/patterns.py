"""Regular expressions and globs that policy files may hold, checked so that none can stall the engine.

Python's ``re`` backtracks, and has no time limit: a pattern such as ``(a+)+$`` takes time
exponential in the input. A policy file is written by an admin, but it is still input, and
the engine runs it on text that a remote participant chooses. So every pattern is checked
when the policy loads (``compile_guarded``):

- at most ``MAX_PATTERN_CHARS`` characters;
- no *nested quantifier*: a group that repeats without bound (``*``, ``+``, ``{n,}``,
  ``{n,m}`` with m > 1) must not hold a repetition of variable length itself. ``(a+)+``,
  ``(a*b?)*``, ``(\\w+\\s?)+`` are refused; write the inner repetition possessive (``a++``)
  or atomic (``(?>a+)``), which Python 3.11 supports and which cannot backtrack.

It does not detect every slow pattern (overlapping alternatives such as ``(a|a)*`` pass),
which is why the engine also caps what it matches at ``MAX_EVAL_CHARS``.
Globs use ``fnmatch`` rules, case-sensitive, where ``*`` also matches ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

MAX_PATTERN_CHARS = 512
MAX_EVAL_CHARS = 64 * 1024  # 64 KiB: the longest text a regex is run on; longer input is denied


@dataclass(slots=True)
class _Group:
    variable: bool = False  # holds a repetition of variable length that can backtrack
    atomic: bool = False  # (?>…): once matched, never re-entered


@dataclass(frozen=True, slots=True)
class _Quantifier:
    end: int  # index just past the quantifier (and its lazy/possessive suffix)
    variable: bool  # the count of repetitions varies
    repeats: bool  # may repeat more than once with a variable count (the dangerous outer kind)
    possessive: bool


_BRACE = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _quantifier_at(pattern: str, i: int) -> _Quantifier | None:
    if i >= len(pattern):
        return None
    c = pattern[i]
    if c in "*+":
        end, variable, repeats = i + 1, True, True
    elif c == "?":
        end, variable, repeats = i + 1, True, False
    elif c == "{":
        m = _BRACE.match(pattern, i)
        if m is None or (not m.group(1) and not m.group(3)):
            return None  # a literal brace
        low = int(m.group(1) or 0)
        high = None if m.group(2) and not m.group(3) else int(m.group(3) or low)
        end = m.end()
        variable = high is None or high != low
        repeats = variable and (high is None or high > 1)
    else:
        return None
    possessive = end < len(pattern) and pattern[end] == "+"
    if end < len(pattern) and pattern[end] in "?+":
        end += 1
    return _Quantifier(end=end, variable=variable, repeats=repeats, possessive=possessive)


def _skip_class(pattern: str, i: int) -> int:
    """Index just past the character class that opens at ``pattern[i] == '['``."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1  # a leading ] is a literal
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def _skip_group_prefix(pattern: str, i: int) -> int:
    """Index of the group's first atom, past an extension prefix such as ``?:``, ``?P<n>``, ``?i:``.

    The pattern already compiled, so the prefix is well formed.
    """
    if not pattern.startswith("?", i):
        return i
    j = i + 1
    if pattern.startswith("P<", j):
        return pattern.index(">", j) + 1
    if pattern.startswith(("P=", "#"), j):
        return pattern.index(")", j)  # a back-reference or a comment: no atoms, the ')' closes it
    if pattern.startswith("(", j):
        return pattern.index(")", j) + 1  # (?(id)yes|no)
    if pattern.startswith(("<=", "<!"), j):
        return j + 2
    if pattern.startswith((":", ">", "=", "!"), j):
        return j + 1
    while j < len(pattern) and (pattern[j].isalpha() or pattern[j] == "-"):
        j += 1  # inline flags: (?i) or (?i-s:…)
    return j + 1 if pattern.startswith(":", j) else j


def find_nested_quantifier(pattern: str) -> int | None:
    """The index of the first quantifier that repeats a group holding a variable repetition, or None."""
    stack = [_Group()]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
        elif c == "[":
            i = _skip_class(pattern, i)
        elif c == "(":
            stack.append(_Group(atomic=pattern.startswith("(?>", i)))
            i = _skip_group_prefix(pattern, i + 1)
        elif c == ")" and len(stack) > 1:
            group = stack.pop()
            inner = group.variable and not group.atomic
            q = _quantifier_at(pattern, i + 1)
            if q is None:
                stack[-1].variable |= inner
                i += 1
                continue
            if inner and q.repeats and not q.possessive:
                return i + 1
            stack[-1].variable |= inner or (q.variable and not q.possessive)
            i = q.end
        else:
            q = _quantifier_at(pattern, i)
            if q is not None and i > 0:
                stack[-1].variable |= q.variable and not q.possessive
                i = q.end
            else:
                i += 1
    return None


def compile_guarded(pattern: object) -> re.Pattern[str]:
    """Compile a policy regex, refusing over-long patterns and nested quantifiers.

    Raises:
        ValueError: with a message that says what is wrong and how to fix it.
    """
    if isinstance(pattern, re.Pattern):
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise ValueError("a regular expression must be a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"regular expression longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad regular expression: {e}") from None
    at = find_nested_quantifier(pattern)
    if at is not None:
        raise ValueError(
            f"nested quantifier at position {at} could backtrack for a very long time; "
            "make the inner repetition possessive (a++) or atomic ((?>a+))"
        )
    return compiled


def glob_match(pattern: str, value: str) -> bool:
    """Case-sensitive ``fnmatch`` glob (``*``, ``?``, ``[…]``); ``*`` also matches ``/``."""
    return fnmatchcase(value, pattern)
