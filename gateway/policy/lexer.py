"""Shell words and operators: the first half of reading a command line (``gateway.policy.shell``).

``Lexer`` splits text the way a POSIX shell tokenises it, without expanding or running
anything: quotes are removed (``r'm'`` is ``rm``; ``$'\\x72m'`` is decoded), operators and
redirections become ``Op`` tokens, and every command substitution (``$(…)``, backticks,
``<(…)``) is collected with its inner text so the reader can read it as commands too. What it
cannot read (unterminated quotes, here-documents, arithmetic) is reported in ``opaque``.
A ``Word`` is ``computed`` when its value is only known at run time (``$X``, ``$(…)``,
unquoted globs, brace expansion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SEPARATORS = ("&&", "||", "|&", ";;", ";", "&", "|", "(", ")")
REDIRECTS = ("<<<", "<<-", "&>>", "<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">")
WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
_DUPLICATE_FD = re.compile(r"\s*(\d+|-)(?=[\s;&|()<>]|$)")
_ANSI_C = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI_C_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_ANSI_C_SIMPLE |= {"t": "\t", "v": "\v"}


@dataclass(slots=True)
class Word:
    """A shell word with its quotes removed."""

    text: str
    computed: bool  # holds an expansion, substitution or glob: its run-time value is unknown
    literal_prefix: int  # how many leading characters came before any quoting

    @property
    def bare(self) -> bool:
        """No part was quoted: only a bare word can be a reserved word such as ``}`` or ``if``."""
        return self.literal_prefix == len(self.text)


@dataclass(frozen=True, slots=True)
class Op:
    """An operator between words."""

    op: str  # a separator, or "write" / "read": a redirection whose target is the next word


def _decode_ansi_c(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "xuU":
            return chr(min(int(esc[1:], 16), 0x10FFFF))
        if esc[0] in "01234567":
            return chr(int(esc, 8) & 0xFF)
        if esc[0] == "c":
            return chr(ord(esc[1]) & 0x1F)
        if esc in "\\'\"?":
            return esc
        return _ANSI_C_SIMPLE.get(esc, "\\" + esc)  # bash keeps an unknown escape as written

    return _ANSI_C.sub(one, body)


@dataclass(slots=True)
class Lexer:
    """Splits text into words and operators; collects substitutions and opaque constructs."""

    text: str
    i: int = 0
    tokens: list[Word | Op] = field(default_factory=list)
    substitutions: list[tuple[str, str]] = field(default_factory=list)  # (kind, inner text)
    opaque: list[str] = field(default_factory=list)
    buf: list[str] = field(default_factory=list)
    started: bool = False
    quoted: bool = False
    literal_prefix: int = 0
    computed: bool = False
    brace: bool = False

    def run(self) -> None:
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if c in " \t":
                self._flush()
                self.i += 1
            elif c == "\n":
                self._flush()
                self.tokens.append(Op(";"))
                self.i += 1
            elif c == "\\":
                if t.startswith("\\\n", self.i):
                    self.i += 2  # line continuation
                    continue
                if self.i == len(t) - 1:
                    self.opaque.append("a trailing backslash continues into the next input")
                self._take(t[self.i + 1 : self.i + 2], quoted=True)
                self.i += 2
            elif c == "'":
                end = t.find("'", self.i + 1)
                if end < 0:
                    self.opaque.append("unterminated ' quote")
                    end = len(t)
                self._take(t[self.i + 1 : end], quoted=True)
                self.i = end + 1
            elif c == '"':
                self._double_quoted()
            elif c == "`":
                self._backticks()
            elif c == "$":
                self._dollar(in_double=False)
            elif c in "<>" and t.startswith("(", self.i + 1):
                self._substitution(self.i + 1, "<(…)" if c == "<" else ">(…)")
            elif c in "<>" or t.startswith("&>", self.i):
                self._redirect()
            elif c in ";&|()":
                self._flush()
                op = next(s for s in SEPARATORS if t.startswith(s, self.i))
                self.tokens.append(Op(op))
                self.i += len(op)
            else:
                if c in "*?[":
                    self.computed = True  # an unquoted glob
                elif c == "{":
                    self.brace = True
                elif c == "}" and self.brace:
                    self.computed = True  # brace expansion: {rm,-rf,/}
                self._take(c, quoted=False)
                self.i += 1
        self._flush()

    def _take(self, s: str, *, quoted: bool) -> None:
        self.buf.append(s)
        self.started = True
        self.quoted |= quoted
        if not self.quoted:
            self.literal_prefix += len(s)

    def _flush(self) -> None:
        if self.started:
            self.tokens.append(Word("".join(self.buf), self.computed, self.literal_prefix))
        self.buf.clear()
        self.started = self.quoted = self.computed = self.brace = False
        self.literal_prefix = 0

    def _matching_paren(self, start: int) -> int:
        """Index of the ``)`` closing the ``(`` at ``start``, skipping quotes; -1 if none."""
        t, depth, j = self.text, 0, start
        while j < len(t):
            ch = t[j]
            if ch == "\\":
                j += 2
                continue
            if ch in "'`":
                j = t.find(ch, j + 1)
                if j < 0:
                    return -1
            elif ch == '"':
                j += 1
                while j < len(t) and t[j] != '"':
                    j += 2 if t[j] == "\\" else 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        return -1

    def _substitution(self, paren: int, kind: str) -> None:
        end = self._matching_paren(paren)
        if end < 0:
            self.opaque.append(f"unterminated {kind[:-2]}")
            end = len(self.text)  # read the rest as the inner text
        self.substitutions.append((kind, self.text[paren + 1 : end]))
        self._take(self.text[self.i : end + 1], quoted=False)
        self.computed = True
        self.i = end + 1

    def _dollar(self, *, in_double: bool) -> None:
        t, i = self.text, self.i
        nxt = t[i + 1 : i + 2]
        if t.startswith("$((", i):
            end = self._matching_paren(i + 1)
            self.opaque.append("arithmetic expansion $((…))")
            end = len(t) - 1 if end < 0 else end
            self._take(t[i : end + 1], quoted=False)
            self.computed = True
            self.i = end + 1
        elif nxt == "(":
            self._substitution(i + 1, "$(…)")
        elif nxt == "{":
            end = t.find("}", i + 2)
            end = len(t) - 1 if end < 0 else end
            body = t[i + 2 : end]
            if "$(" in body or "`" in body:
                self.opaque.append("a command substitution inside ${…}")
            self._take(t[i : end + 1], quoted=False)
            self.computed = True
            self.i = end + 1
        elif nxt == "'" and not in_double:
            j = i + 2
            while j < len(t) and t[j] != "'":
                j += 2 if t[j] == "\\" else 1
            if j >= len(t):
                self.opaque.append("unterminated $' quote")
            self._take(_decode_ansi_c(t[i + 2 : j]), quoted=True)
            self.i = j + 1
        elif nxt and (nxt.isalnum() or nxt in "_@*#?$!-"):
            j = i + 2
            if nxt.isalpha() or nxt == "_":
                while j < len(t) and (t[j].isalnum() or t[j] == "_"):
                    j += 1
            self._take(t[i:j], quoted=False)
            self.computed = True
            self.i = j
        else:
            self._take("$", quoted=in_double)
            self.i += 1

    def _double_quoted(self) -> None:
        t = self.text
        self.i += 1
        self._take("", quoted=True)
        while self.i < len(t) and t[self.i] != '"':
            c = t[self.i]
            if c == "\\" and t[self.i + 1 : self.i + 2] in ('"', "\\", "$", "`", "\n"):
                self._take(t[self.i + 1].replace("\n", ""), quoted=True)
                self.i += 2
            elif c == "$":
                self._dollar(in_double=True)
            elif c == "`":
                self._backticks()
            else:
                self._take(c, quoted=True)
                self.i += 1
        if self.i >= len(t):
            self.opaque.append('unterminated " quote')
        self.i += 1

    def _backticks(self) -> None:
        t, j = self.text, self.i + 1
        while j < len(t) and t[j] != "`":
            j += 2 if t[j] == "\\" else 1
        if j >= len(t):
            self.opaque.append("unterminated ` substitution")
        inner = re.sub(r"\\([\\`$])", r"\1", t[self.i + 1 : j])
        self.substitutions.append(("`…`", inner))
        self._take(t[self.i : j + 1], quoted=False)
        self.computed = True
        self.i = j + 1

    def _redirect(self) -> None:
        t = self.text
        if self.buf and not self.quoted and "".join(self.buf).isdigit():
            self.buf.clear()  # a file-descriptor number (2>…), not a word
            self.started = False
        self._flush()
        op = next(r for r in REDIRECTS if t.startswith(r, self.i))
        self.i += len(op)
        if op in ("<<", "<<-"):
            self.opaque.append("a here-document")
        if op in (">&", "<&"):
            m = _DUPLICATE_FD.match(t, self.i)
            if m is not None:
                self.i = m.end()  # 2>&1, >&-: duplicates a descriptor, no target word
                return
        self.tokens.append(Op("write" if op in WRITE_REDIRECTS else "read"))
