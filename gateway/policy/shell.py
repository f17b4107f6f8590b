"""The wrapper-seeing reader of command lines: which programs would this text run?

Theory of operation
-------------------
Command rules match *commands*, not text: ``ls; rm -rf /`` is two commands, and an allow
rule for ``ls`` must not let the second one through. ``parse_shell`` reads a line the way a
POSIX shell would split it, without running or expanding anything, and returns every
command it would run (``ShellParse.commands``) plus the reasons it could not see all of them
(``ShellParse.opaque``). The engine evaluates each command on its own and the most
restrictive answer wins; anything opaque is held for review at least, never allowed.

What it sees:

- words with POSIX quoting: ``'…'``, ``"…"``, backslashes, ``$'…'`` (ANSI-C escapes
  decoded), so ``r'm' -rf`` is ``rm -rf``; a simple word splits exactly as ``shlex.split``;
- separators ``;`` ``&`` ``&&`` ``||`` ``|`` ``|&`` ``(`` ``)`` and newlines: each part is a
  command; redirections are dropped from argv, and writing to a file is a command of its
  own, ``> FILE`` (``echo x > ~/.bashrc`` is ``echo x`` and ``> ~/.bashrc``; ``/dev/null``,
  ``/dev/stdout`` and ``/dev/stderr`` are left out), so an allow rule for ``echo`` does not
  allow writing files;
- command substitution ``$(…)``, backticks, process substitution ``<(…)`` / ``>(…)``:
  the inner text is read as commands too (it runs);
- wrappers, by program name (a bare name, or a path in a system bin folder):
  ``bash|sh|dash|zsh|ksh|… -c TEXT`` (TEXT is read as a line), ``env [opts] [VAR=1] cmd``
  and leading ``VAR=1`` assignments, ``command``, ``builtin``, ``exec``, ``nohup``,
  ``nice``, ``time``, ``timeout``, ``stdbuf``, ``setsid``, ``busybox`` (the wrapper is
  dropped: the command is what it runs); ``sudo`` and ``doas`` (kept *and* seen through, so
  a rule can name ``sudo`` itself), ``xargs cmd`` and ``find … -exec cmd … ;`` (kept and
  seen through), ``eval ARGS`` (read as a line, and opaque);
- a program at another path (``./ls``, ``/tmp/x/rm``) yields two commands, the path as
  written and its base name, and is never treated as a wrapper.

What it cannot see, reported as opaque (so at least review): a shell reading commands from
its input (``… | sh``, ``sh -s``, ``bash`` alone), ``eval``, a command name computed at run
time (``$CMD``, ``$(…)``, globs, ``{a,b}``), here-documents, arithmetic expansion,
``${…}`` holding a substitution, shell control structures (``if``, ``for``, ``while``,
``case``…), unknown options of a wrapper, unterminated quotes or substitutions, a trailing
backslash (the command would continue into the next submission), nesting
deeper than ``MAX_DEPTH``, more than ``MAX_COMMANDS`` commands. Limits that are documented
rather than detected: interpreters (``python -c``, ``perl -e``, ``node -e``), scripts run
from files, aliases and functions defined earlier in the terminal, and programs that run
their arguments in other ways (``git -c alias.x=!…``, ``awk 'BEGIN{system(…)}'``). Write
rules naming those programs. A ``#`` is an ordinary character here (not a comment), so text
after it is still read as commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.policy.lexer import Lexer, Op, Word

MAX_DEPTH = 8
MAX_COMMANDS = 256

SYSTEM_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"})
PRIVILEGE_WRAPPERS = frozenset({"sudo", "doas"})
_CONTROL_WORDS_WITH_COMMAND = frozenset({"if", "then", "else", "elif", "do", "while", "until"})
_CONTROL_WORDS_WITHOUT_COMMAND = frozenset(
    {"for", "select", "case", "esac", "fi", "done", "function", "coproc", "in"}
)
_HARMLESS_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


def _is_assignment(word: Word) -> bool:
    """``NAME=value`` with the name and ``=`` unquoted (``"A=1"`` is a command name)."""
    m = _ASSIGNMENT.match(word.text)
    return m is not None and m.end() <= word.literal_prefix


@dataclass(frozen=True, slots=True)
class Command:
    """One program the line would run, with the wrappers it was found inside (outermost first)."""

    argv: tuple[str, ...]
    via: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The argv joined by single spaces: what command regexes are matched against."""
        return " ".join(self.argv)


@dataclass(frozen=True, slots=True)
class ShellParse:
    """Every command a line would run, and why some of it could not be seen (empty if all was)."""

    commands: tuple[Command, ...]
    opaque: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Options:
    """A wrapper's option syntax: enough to find where the wrapped command starts."""

    flags: str = ""
    with_arg: str = ""
    long_flags: frozenset[str] = frozenset()
    long_with_arg: frozenset[str] = frozenset()


def _split_options(args: tuple[str, ...], spec: _Options) -> tuple[set[str], tuple[str, ...]] | None:
    """The options seen and the arguments after them; None at an option ``spec`` does not know."""
    seen: set[str] = set()
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return seen, args[i + 1 :]
        if a.startswith("--"):
            name = a[2:].split("=", 1)[0]
            if name not in spec.long_flags | spec.long_with_arg:
                return None
            seen.add(name)
            i += 2 if name in spec.long_with_arg and "=" not in a else 1
            continue
        if not a.startswith("-") or a == "-":
            return seen, args[i:]
        for j, ch in enumerate(a[1:], start=1):
            seen.add(ch)
            if ch in spec.with_arg:
                i += 1 if j < len(a) - 1 else 2
                break
            if ch not in spec.flags:
                return None
        else:
            i += 1
    return seen, ()


_SUDO = _Options(
    flags="AbBEeHiKklnPSsVv",
    with_arg="CDghpRrTtUu",
    long_flags=frozenset(
        {"askpass", "background", "bell", "edit", "login", "list", "non-interactive", "shell", "stdin"}
    )
    | frozenset({"preserve-env", "preserve-groups", "reset-timestamp", "remove-timestamp", "set-home"}),
    long_with_arg=frozenset(
        {"chdir", "chroot", "close-from", "command-timeout", "group", "host", "other-user", "prompt"}
    )
    | frozenset({"role", "type", "user"}),
)
_DOAS = _Options(flags="Lns", with_arg="Cu")
_TRANSPARENT = {
    "env": _Options(
        flags="i0v",
        with_arg="uCS",
        long_flags=frozenset({"ignore-environment", "null", "debug"}),
        long_with_arg=frozenset({"unset", "chdir", "split-string"}),
    ),
    "command": _Options(flags="pvV"),
    "builtin": _Options(),
    "exec": _Options(flags="cl", with_arg="a"),
    "nohup": _Options(),
    "time": _Options(flags="apqv", with_arg="fo"),
    "nice": _Options(flags="0123456789", with_arg="n", long_with_arg=frozenset({"adjustment"})),
    "timeout": _Options(
        flags="v",
        with_arg="sk",
        long_flags=frozenset({"preserve-status", "foreground", "verbose"}),
        long_with_arg=frozenset({"signal", "kill-after"}),
    ),
    "stdbuf": _Options(with_arg="ioe", long_with_arg=frozenset({"input", "output", "error"})),
    "setsid": _Options(flags="cfw", long_flags=frozenset({"ctty", "fork", "wait"})),
    "busybox": _Options(),
}
_XARGS = _Options(
    flags="0eilprtx",
    with_arg="adEILnPs",
    long_flags=frozenset({"null", "interactive", "no-run-if-empty", "verbose", "exit", "open-tty"}),
    long_with_arg=frozenset({"arg-file", "delimiter", "max-args", "max-lines", "max-procs", "max-chars"})
    | frozenset({"process-slot-var", "replace", "eof"}),
)
_SHELL = _Options(
    flags="abcefhiklmnprstuvxBCEHPT",
    with_arg="oO",
    long_flags=frozenset({"login", "noprofile", "norc", "posix", "restricted", "verbose", "noediting"}),
    long_with_arg=frozenset({"rcfile", "init-file"}),
)
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _program_name(prog: str) -> tuple[str, bool]:
    """The base name of ``prog`` and whether it names a known program (bare, or in a system bin folder)."""
    if "/" not in prog:
        return prog, True
    folder, _, base = prog.rpartition("/")
    return base, (folder or "/") in SYSTEM_BIN_DIRS


@dataclass(slots=True)
class _Reader:
    commands: list[Command] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)

    def line(self, text: str, via: tuple[str, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            self.opaque.append(f"wrappers nested more than {MAX_DEPTH} deep")
            return
        lexer = Lexer(text)
        lexer.run()
        self.opaque += lexer.opaque
        current: list[Word] = []
        target: str | None = None
        for tok in [*lexer.tokens, Op(";")]:
            if isinstance(tok, Word):
                if target is None:
                    current.append(tok)
                elif target == "write" and tok.text not in _HARMLESS_TARGETS:
                    self._emit((">", tok.text), (*via, "redirect"))  # writing a file is an action too
                if target is not None:
                    target = None  # a redirection's file name, not an argument
            elif tok.op in ("write", "read"):
                target = tok.op
            else:
                target = None
                if current:
                    self._simple(current, via, depth)
                current = []
        for kind, inner in lexer.substitutions:
            self.line(inner, (*via, kind), depth + 1)

    def _simple(self, words: list[Word], via: tuple[str, ...], depth: int) -> None:
        while words and words[0].bare and words[0].text in ("!", "{", "}"):
            words = words[1:]
        while words and words[-1].bare and words[-1].text == "}":
            words = words[:-1]
        if not words:
            return
        if words[0].bare and words[0].text in _CONTROL_WORDS_WITH_COMMAND | _CONTROL_WORDS_WITHOUT_COMMAND:
            self.opaque.append(f"a shell control structure ({words[0].text} …)")
            if words[0].text in _CONTROL_WORDS_WITHOUT_COMMAND:
                return
            self._simple(words[1:], via, depth)
            return
        assignments = 0
        while assignments < len(words) and _is_assignment(words[assignments]):
            assignments += 1
        if assignments == len(words):
            self._emit(tuple(w.text for w in words), via)  # only sets variables: rules still see it
            return
        words = words[assignments:]
        if words[0].computed:
            self.opaque.append(f"the command name is computed when it runs ({words[0].text})")
        self._unwrap(tuple(w.text for w in words), via, depth)

    def _emit(self, argv: tuple[str, ...], via: tuple[str, ...]) -> None:
        if len(self.commands) >= MAX_COMMANDS:
            self.opaque.append(f"more than {MAX_COMMANDS} commands")
            return
        self.commands.append(Command(argv, via))

    def _unwrap(self, argv: tuple[str, ...], via: tuple[str, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            self.opaque.append(f"wrappers nested more than {MAX_DEPTH} deep")
            self._emit(argv, via)
            return
        name, known = _program_name(argv[0])
        if not known:
            self._emit(argv, via)  # the path as written, and below, the name it claims
        argv = (name, *argv[1:])
        args = argv[1:]
        inner_via = (*via, name)
        if name in SHELLS:
            self._shell(argv, via, depth, keep_outer=not known)
        elif name in PRIVILEGE_WRAPPERS:
            self._emit(argv, via)
            split = _split_options(args, _SUDO if name == "sudo" else _DOAS)
            if split is None:
                self.opaque.append(f"options of {name} that policy cannot read")
            elif split[1] and not {"e", "edit", "l", "list"} & split[0]:
                if {"s", "i", "shell", "login"} & split[0]:
                    self.line(" ".join(split[1]), inner_via, depth + 1)  # run through a shell
                else:
                    self._unwrap(split[1], inner_via, depth + 1)
        elif name in _TRANSPARENT:
            self._transparent(argv, via, depth, keep_outer=not known)
        elif name == "xargs":
            self._emit(argv, via)
            split = _split_options(args, _XARGS)
            if split is None:
                self.opaque.append("options of xargs that policy cannot read")
            elif split[1]:
                self._unwrap(split[1], inner_via, depth + 1)
        elif name == "find":
            self._emit(argv, via)
            for k, a in enumerate(args):
                if a in _FIND_EXEC and k + 1 < len(args):
                    inner = args[k + 1 :]
                    end = next((n for n, x in enumerate(inner) if x in (";", "+")), len(inner))
                    if end:
                        self._unwrap(inner[:end], (*via, f"find {a}"), depth + 1)
        elif name == "eval":
            self._emit(argv, via)
            self.opaque.append("eval runs text that is built when it runs")
            if args:
                self.line(" ".join(args), inner_via, depth + 1)
        else:
            self._emit(argv, via)

    def _shell(self, argv: tuple[str, ...], via: tuple[str, ...], depth: int, *, keep_outer: bool) -> None:
        name = argv[0]
        split = _split_options(argv[1:], _SHELL)
        if keep_outer or split is None or "c" not in split[0]:
            self._emit(argv, via)
        if split is None:
            self.opaque.append(f"options of {name} that policy cannot read")
        elif "c" in split[0]:
            if split[1]:
                self.line(split[1][0], (*via, f"{name} -c"), depth + 1)
            else:
                self.opaque.append(f"{name} -c without a command")
        elif "s" in split[0] or "i" in split[0] or not split[1]:
            self.opaque.append(f"{name} reads commands from its input")

    def _transparent(
        self, argv: tuple[str, ...], via: tuple[str, ...], depth: int, *, keep_outer: bool
    ) -> None:
        name, args = argv[0], argv[1:]
        if name == "env" and args[:1] == ("-",):
            args = args[1:]
        split = _split_options(args, _TRANSPARENT[name])
        if split is None:
            self.opaque.append(f"options of {name} that policy cannot read")
            self._emit(argv, via)
            return
        seen, rest = split
        if name == "env":
            while rest and _ASSIGNMENT.match(rest[0]):
                rest = rest[1:]
            if "S" in seen or "split-string" in seen:
                self.opaque.append("env -S splits a string that policy does not read")
        elif name == "timeout":
            rest = rest[1:]  # the duration
        elif name == "command" and {"v", "V"} & seen:
            rest = ()  # only looks the name up
        if keep_outer or not rest:
            self._emit(argv, via)
        if rest:
            self._unwrap(rest, (*via, name), depth + 1)


def parse_shell(text: str) -> ShellParse:
    """Every command ``text`` would run if a POSIX shell ran it, and what could not be seen.

    Pure: nothing is run or expanded; ``$X`` stays as written.
    """
    reader = _Reader()
    reader.line(text, (), 0)
    return ShellParse(tuple(reader.commands), tuple(dict.fromkeys(reader.opaque)))
