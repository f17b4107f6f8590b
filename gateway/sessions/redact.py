"""Streaming secret masking of a session's output, for participants, the recording and its index.

The broker passes every output chunk through one ``Redactor`` before the scrollback ring and
the recorder see it; the owner's terminal got the bytes already, unchanged, on the
workstation. A secret is masked byte for byte (``*``; CR and LF kept), so the stream keeps
its length: sequence numbers, resume offsets and the terminal layout stay as they were.

Secrets split across chunks. Each chunk is searched together with the bytes held back from
the last one and the last ``LOOKBEHIND_BYTES`` sent, with the ``regex`` module's *partial*
matching: where a match could still start at the end of what arrived (``AKIAIOSF`` with the
rest still to come), or a match of variable length reaches that end (a bearer token may go
on), the bytes from its start are held back and the rest goes out. A possible start shorter
than ``HOLD_MIN_BYTES`` is not held (a typed ``A`` or ``x`` echoes at once): it goes out, and
if a secret follows, the lookbehind finds the match and masks everything after those few
bytes, which are a pattern's literal prefix (``AKIA``, ``ghp_``, ``xoxb-``). The broker
flushes what is held after ``HOLD_S`` without new output and at the end of the session.
Flushing masks every complete match, and a partial match of at least ``MASK_PARTIAL_BYTES``
(a cut-off secret is still a secret); a shorter one goes out as it is. What is held is bounded
by the longest text a pattern can match, capped at ``MAX_HOLD_BYTES``.

Each chunk's maskings are counted by pattern name (``counts``); the secret is never kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex

from gateway.policy.redaction import RedactionSpec

HOLD_S = 0.25  # flush what is held back after this long without new output
MASK_PARTIAL_BYTES = 12  # a partial match this long is masked when flushed
HOLD_MIN_BYTES = 6  # a possible start shorter than this is sent at once (typing stays live)
LOOKBEHIND_BYTES = 16  # sent bytes searched again with the next chunk (> both of the above)
MAX_HOLD_BYTES = 32 * 1024  # longer than the longest default pattern (a private-key block)
MASK = 0x2A  # "*"
KEEP = frozenset(b"\r\n")
TRUNCATED = "truncated"  # the count name of a partial match masked when flushed


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: regex.Pattern[bytes]
    width: int  # the longest match (capped): partial matches are looked for in this tail only


def _width(rx: str) -> int:
    """The longest text ``rx`` can match, at most ``MAX_HOLD_BYTES``."""
    try:
        _, high = re._parser.parse(rx).getwidth()  # type: ignore[attr-defined]
    except Exception:
        return MAX_HOLD_BYTES
    return min(int(high), MAX_HOLD_BYTES)


class Redactor:
    """Masks the secrets of ``patterns`` ((name, regex) pairs) in one byte stream."""

    __slots__ = ("_behind", "_held", "_rules")

    def __init__(self, patterns: Iterable[tuple[str, str]]) -> None:
        self._rules = tuple(
            _Rule(name, regex.compile(rx.encode("ascii"), regex.VERSION0), _width(rx))
            for name, rx in patterns
        )
        self._held = b""
        self._behind = b""  # the last bytes sent (unmasked), searched again with the next chunk

    @property
    def active(self) -> bool:
        return bool(self._rules)

    @property
    def held(self) -> int:
        """Bytes held back, waiting for more output or a flush."""
        return len(self._held)

    def feed(self, data: bytes) -> tuple[bytes, Counter[str]]:
        """What may go out now of the held bytes and ``data``, and the maskings in it."""
        if not self._rules:
            return data, Counter()
        buf = self._held + data if self._held else data
        return self._scan(buf, final=False)

    def flush(self) -> tuple[bytes, Counter[str]]:
        """Everything held, masked as well as can be told without the rest."""
        held, self._held = self._held, b""
        if not held:
            return b"", Counter()
        return self._scan(held, final=True)

    def mask_once(self, data: bytes) -> tuple[bytes, Counter[str]]:
        """Mask the complete matches of one self-contained piece (a line of input); holds nothing."""
        if not self._rules:
            return data, Counter()
        out = bytearray(data)
        counts: Counter[str] = Counter()
        for rule in self._rules:
            for m in rule.pattern.finditer(data):
                if m.end() > m.start():
                    _mask_into(out, *_secret_span(m))
                    counts[rule.name] += 1
        return bytes(out), counts

    def _scan(self, new: bytes, *, final: bool) -> tuple[bytes, Counter[str]]:
        """Mask and send ``new`` (held bytes and fresh data) but what must wait; searched together
        with the last ``LOOKBEHIND_BYTES`` already sent, so that a secret whose first bytes went
        out (a short possible start is never held) is still masked in what follows."""
        behind = len(self._behind)
        buf = self._behind + new
        size = len(buf)
        found: list[tuple[int, int, str, regex.Match[bytes]]] = []
        hold = size
        partial: list[tuple[int, int]] = []  # (start, end) of a match cut off at the end
        for rule in self._rules:
            for m in rule.pattern.finditer(buf):
                if m.end() > max(m.start(), behind):  # not empty, not wholly sent before
                    found.append((m.start(), m.end(), rule.name, m))
            tail = self._tail_match(rule, buf)
            if tail is not None:
                start, end, cut = tail
                if final:
                    if cut:
                        partial.append((start, end))
                elif size - start >= HOLD_MIN_BYTES:  # shorter: sent now, masked later if need be
                    hold = min(hold, max(start, behind))
        # A complete match that the hold point cuts is held whole (it is found again later).
        moved = True
        while moved and hold < size:
            moved = False
            for start, end, _, _ in found:
                if start < hold < end and max(start, behind) < hold:
                    hold, moved = max(start, behind), True
        out = bytearray(buf[behind:hold])
        counts: Counter[str] = Counter()
        for _, end, name, m in found:
            if end <= hold:
                s, e = _secret_span(m)
                _mask_into(out, s - behind, e - behind)
                counts[name] += 1
        for start, end in partial:
            if end - start >= MASK_PARTIAL_BYTES:
                _mask_into(out, start - behind, end - behind)
                counts[TRUNCATED] += 1
        self._held = buf[hold:]
        self._behind = buf[:hold][-LOOKBEHIND_BYTES:]
        return bytes(out), counts

    @staticmethod
    def _tail_match(rule: _Rule, buf: bytes) -> tuple[int, int, bool] | None:
        """A match of ``rule`` that reaches the end of ``buf``: (start, end, cut off), if any."""
        size = len(buf)
        pos = max(size - rule.width, 0)
        while pos < size:
            m = rule.pattern.search(buf, pos, partial=True)
            if m is None or m.start() >= size:
                return None
            if m.partial or m.end() == size:
                return m.start(), m.end(), bool(m.partial)
            pos = max(m.end(), m.start() + 1)
        return None


def _secret_span(m: regex.Match[bytes]) -> tuple[int, int]:
    if "secret" in m.re.groupindex and m.start("secret") >= 0:
        return m.span("secret")
    return m.span()


def _mask_into(out: bytearray, start: int, end: int) -> None:
    for i in range(max(start, 0), min(end, len(out))):
        if out[i] not in KEEP:
            out[i] = MASK


class OutputMasker:
    """A session's redactor, kept in step with the policy in force.

    ``patterns_of`` returns (policy version, its redaction section), a cheap lookup made for every
    chunk; the section's patterns are compiled only when the version changes, and what the old
    redactor held is flushed and a new one takes over. Without a policy the built-in set applies.
    """

    __slots__ = ("_patterns_of", "_redactor", "_version")

    def __init__(self, patterns_of: Callable[[], tuple[str, RedactionSpec]] | None) -> None:
        self._patterns_of = patterns_of
        self._version, spec = patterns_of() if patterns_of is not None else ("", RedactionSpec())
        self._redactor = Redactor(spec.active())

    @property
    def held(self) -> int:
        return self._redactor.held

    def feed(self, data: bytes) -> tuple[bytes, Counter[str]]:
        before, counts = self._refresh()
        out, more = self._redactor.feed(data)
        return before + out, counts + more

    def flush(self) -> tuple[bytes, Counter[str]]:
        return self._redactor.flush()

    def mask_once(self, data: bytes) -> tuple[bytes, Counter[str]]:
        return self._redactor.mask_once(data)

    def _refresh(self) -> tuple[bytes, Counter[str]]:
        if self._patterns_of is None:
            return b"", Counter()
        version, spec = self._patterns_of()
        if version == self._version:
            return b"", Counter()
        flushed = self._redactor.flush()
        self._version, self._redactor = version, Redactor(spec.active())
        return flushed


def describe(counts: Counter[str]) -> str:
    """The marker ``redacted 2 secrets: aws-access-key-id=1, github-token=1``; never the text."""
    total = sum(counts.values())
    parts = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    return f"redacted {total} secret{'s' if total != 1 else ''}: {parts}"
