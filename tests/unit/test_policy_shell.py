"""The wrapper-seeing command reader and the regex guard, as tables (and one property against shlex)."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.patterns import compile_guarded, find_nested_quantifier
from gateway.policy.shell import MAX_COMMANDS, MAX_DEPTH, parse_shell

# (line, the commands it runs as "text <via>", whether something is opaque)
READS = [
    pytest.param("ls -la", ["ls -la"], False, id="simple"),
    pytest.param("ls; rm -rf /", ["ls", "rm -rf /"], False, id="semicolon"),
    pytest.param("a && b || c | d |& e & f", ["a", "b", "c", "d", "e", "f"], False, id="every separator"),
    pytest.param("(cd x && rm y)", ["cd x", "rm y"], False, id="subshell"),
    pytest.param("{ ls; }", ["ls"], False, id="group"),
    pytest.param('bash -c "rm -rf build"', ["rm -rf build <bash -c>"], False, id="bash -c"),
    pytest.param("bash -lc 'a; b'", ["a <bash -c>", "b <bash -c>"], False, id="combined shell flags"),
    pytest.param("sh -c", [], True, id="sh -c without text"),
    pytest.param("echo x | sh", ["echo x", "sh"], True, id="pipe into sh"),
    pytest.param("bash -s", ["bash -s"], True, id="shell reading stdin"),
    pytest.param("bash deploy.sh", ["bash deploy.sh"], False, id="shell running a script file"),
    pytest.param("env -i A=1 B=2 ls", ["ls <env>"], False, id="env with assignments"),
    pytest.param("env -S 'rm -rf /'", ["env -S rm -rf /"], True, id="env -S is opaque"),
    pytest.param("env --bogus ls", ["env --bogus ls"], True, id="unknown wrapper option"),
    pytest.param("A=1 B=2 ls", ["ls"], False, id="leading assignments"),
    pytest.param("A=1", ["A=1"], False, id="assignment only is still seen"),
    pytest.param("sudo -u root -E ls", ["sudo -u root -E ls", "ls <sudo>"], False, id="sudo kept and seen"),
    pytest.param(
        "sudo -s 'rm -rf /'", ["sudo -s rm -rf /", "rm -rf / <sudo>"], False, id="sudo -s via shell"
    ),
    pytest.param("sudo -e /etc/hosts", ["sudo -e /etc/hosts"], False, id="sudoedit runs no command"),
    pytest.param("doas -u root id", ["doas -u root id", "id <doas>"], False, id="doas"),
    pytest.param("timeout -s KILL 5 nice -n 2 make", ["make <timeout nice>"], False, id="timeout and nice"),
    pytest.param("command -v rm", ["command -v rm"], False, id="command -v only looks up"),
    pytest.param("xargs rm -f", ["xargs rm -f", "rm -f <xargs>"], False, id="xargs"),
    pytest.param(
        "find . -exec rm {} \\;", ["find . -exec rm {} ;", "rm {} <find -exec>"], False, id="find -exec"
    ),
    pytest.param("eval 'rm x'", ["eval rm x", "rm x <eval>"], True, id="eval is read and opaque"),
    pytest.param(
        "echo $(rm -rf /)", ["echo $(rm -rf /)", "rm -rf / <$(…)>"], False, id="command substitution"
    ),
    pytest.param('echo "$(id)"', ["echo $(id)", "id <$(…)>"], False, id="substitution in double quotes"),
    pytest.param("echo '$(id)'", ["echo $(id)"], False, id="single quotes are literal"),
    pytest.param("echo `id`", ["echo `id`", "id <`…`>"], False, id="backticks"),
    pytest.param("diff <(ls a) b", ["diff <(ls a) b", "ls a <<(…)>"], False, id="process substitution"),
    pytest.param("$CMD x", ["$CMD x"], True, id="computed command name"),
    pytest.param("r*m x", ["r*m x"], True, id="glob command name"),
    pytest.param("{rm,-rf,/}", ["{rm,-rf,/}", "}"], True, id="brace expansion"),
    pytest.param("r'm' \"-rf\" \\/", ["rm -rf /"], False, id="quotes removed"),
    pytest.param("ls $'\\x2dla'", ["ls -la"], False, id="ansi-c quoting decoded"),
    pytest.param("/usr/bin/rm x", ["rm x"], False, id="system path is the program"),
    pytest.param("./rm x", ["./rm x", "rm x"], False, id="other path yields both"),
    pytest.param(
        "/tmp/bash -c ls", ["/tmp/bash -c ls", "bash -c ls", "ls <bash -c>"], False, id="fake shell kept"
    ),
    pytest.param("ls > out 2>&1", ["> out <redirect>", "ls"], False, id="write redirection is a command"),
    pytest.param("ls 2>/dev/null < in", ["ls"], False, id="harmless and read redirections"),
    pytest.param("cat <<EOF", ["cat"], True, id="here-document"),
    pytest.param("echo $((1+2))", ["echo $((1+2))"], True, id="arithmetic"),
    pytest.param("echo ${X:-$(id)}", ["echo ${X:-$(id)}"], True, id="substitution inside ${}"),
    pytest.param("for f in *; do rm $f; done", ["rm $f"], True, id="control structure"),
    pytest.param("echo 'open", ["echo open"], True, id="unterminated quote"),
    pytest.param("echo $(id", ["echo $(id", "id <$(…)>"], True, id="unterminated substitution"),
    pytest.param("ls # ; rm x", ["ls #", "rm x"], False, id="hash is not a comment"),
    pytest.param("ls \\\n-l", ["ls -l"], False, id="line continuation"),
    pytest.param("printf '}'", ["printf }"], False, id="a quoted brace is an argument"),
    pytest.param('"A=1" ls', ["A=1 ls"], False, id="a quoted assignment is a command name"),
    pytest.param('A="x y" ls', ["ls"], False, id="an assignment with a quoted value"),
    pytest.param('"if" x', ["if x"], False, id="a quoted reserved word is a command"),
    pytest.param("ls; }", ["ls"], False, id="closing brace"),
    pytest.param(";", [], False, id="no command at all"),
    pytest.param("A=1 B=2", ["A=1 B=2"], False, id="assignments only"),
    pytest.param(
        r"printf $'\101\q\\\'\"\t\x41\u00e9\cA'",
        ["printf A\\q\\'\"\tA\u00e9\x01"],
        False,
        id="ansi-c escapes",
    ),
    pytest.param("bash -c $'ls\\nrm x'", ["ls <bash -c>", "rm x <bash -c>"], False, id="newline separates"),
    pytest.param(
        """echo $(echo ")" 'a)' \\))""",
        ["""echo $(echo ")" 'a)' \\))""", "echo ) a) ) <$(…)>"],
        False,
        id="parens quoted inside a substitution",
    ),
    pytest.param("echo $ x", ["echo $ x"], False, id="a lone dollar"),
    pytest.param("echo $1 $? $@", ["echo $1 $? $@"], False, id="special parameters as arguments"),
    pytest.param('echo "`id`"', ["echo `id`", "id <`…`>"], False, id="backticks in double quotes"),
    pytest.param("echo $'open", ["echo open"], True, id="unterminated ansi-c quote"),
    pytest.param('echo "open', ["echo open"], True, id="unterminated double quote"),
    pytest.param("echo `id", ["echo `id", "id <`…`>"], True, id="unterminated backtick"),
    pytest.param(
        "echo $(echo 'x", ["echo $(echo 'x", "echo x <$(…)>"], True, id="quote open in substitution"
    ),
    pytest.param("sudo -- ls", ["sudo -- ls", "ls <sudo>"], False, id="sudo end of options"),
    pytest.param("sudo --user=root ls", ["sudo --user=root ls", "ls <sudo>"], False, id="sudo long option ="),
    pytest.param(
        "sudo --user root ls", ["sudo --user root ls", "ls <sudo>"], False, id="sudo long option arg"
    ),
    pytest.param("sudo -Z ls", ["sudo -Z ls"], True, id="sudo unknown option"),
    pytest.param("xargs --bogus rm", ["xargs --bogus rm"], True, id="xargs unknown option"),
    pytest.param("nice --bogus x", ["nice --bogus x"], True, id="transparent wrapper unknown option"),
    pytest.param("env - ls", ["ls <env>"], False, id="env dash"),
    pytest.param("{ ls }", ["ls"], False, id="group braces on one command"),
    pytest.param("bash --bogus x", ["bash --bogus x"], True, id="shell unknown option"),
]


def shown(line: str) -> tuple[list[str], bool]:
    parsed = parse_shell(line)
    texts = [c.text + (f" <{' '.join(c.via)}>" if c.via else "") for c in parsed.commands]
    return texts, bool(parsed.opaque)


@pytest.mark.parametrize(("line", "commands", "opaque"), READS)
def test_reader_sees_what_runs(line: str, commands: list[str], opaque: bool) -> None:
    assert shown(line) == (commands, opaque)


def test_nesting_deeper_than_the_limit_is_opaque() -> None:
    line = "ls"
    for _ in range(MAX_DEPTH + 2):
        line = f"sh -c {shlex.quote(line)}"
    parsed = parse_shell(line)
    assert any("nested" in r for r in parsed.opaque)


def test_wrappers_nested_deeper_than_the_limit_are_opaque() -> None:
    parsed = parse_shell("sudo " * (MAX_DEPTH + 4) + "ls")
    assert f"wrappers nested more than {MAX_DEPTH} deep" in parsed.opaque


def test_more_commands_than_the_limit_is_opaque() -> None:
    parsed = parse_shell(";".join(["ls"] * (MAX_COMMANDS + 5)))
    assert len(parsed.commands) == MAX_COMMANDS
    assert parsed.opaque == (f"more than {MAX_COMMANDS} commands",)


@given(st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x24F), max_size=10), max_size=6))
def test_quoted_words_come_back_exactly(words: list[str]) -> None:
    line = "printf " + " ".join(shlex.quote(w) for w in words)
    assert parse_shell(line).commands[0].argv == ("printf", *words)


@given(st.text(alphabet="ab -'\"\\", max_size=20))
def test_plain_quoting_splits_as_shlex_does(tail: str) -> None:
    line = "printf " + tail
    try:
        expected = tuple(shlex.split(line))
    except ValueError:
        return  # unterminated quotes: shlex refuses, the reader reports them opaque
    parsed = parse_shell(line)
    assert not parsed.opaque
    assert parsed.commands[0].argv == expected


# --- the regex guard ----------------------------------------------------------------------

GUARD = [
    pytest.param("(a+)+", True, id="classic nested plus"),
    pytest.param("(a*b?)*", True, id="variable inner, star outer"),
    pytest.param(r"(\w+\s?)+$", True, id="word list"),
    pytest.param("(?:a+)+", True, id="non-capturing group"),
    pytest.param("((a+)b)+", True, id="nested two deep"),
    pytest.param("(a{1,3})+", True, id="bounded inner range"),
    pytest.param("(a+){2,}", True, id="open brace outer"),
    pytest.param("^ls( -[a-z]++)*$", False, id="possessive inner"),
    pytest.param("(?>a+)+", False, id="atomic group"),
    pytest.param("(a+)++", False, id="possessive outer"),
    pytest.param(r"(\d+\.){3}\d+", False, id="fixed outer count"),
    pytest.param("(foo|bar)+", False, id="alternation of literals"),
    pytest.param("(a+)?", False, id="optional outer"),
    pytest.param("[(]+a+", False, id="paren in a class"),
    pytest.param(r"\(a+\)+", False, id="escaped parens"),
    pytest.param("(?i)rm -rf", False, id="inline flags"),
    pytest.param("(?P<n>a)(?P=n)+", False, id="back-reference"),
    pytest.param("(a{x})+", False, id="a literal brace is no quantifier"),
    pytest.param("([^]a]+)+", True, id="class opening with ^]"),
    pytest.param("([]a]+)+", True, id="class opening with ]"),
    pytest.param("(a)?(?(1)b+|c)+", True, id="conditional group"),
    pytest.param("(?<=a)(b+)+", True, id="after a lookbehind"),
    pytest.param("(?#note)(a+)+", True, id="after a comment"),
]


@pytest.mark.parametrize(("pattern", "refused"), GUARD)
def test_regex_guard(pattern: str, refused: bool) -> None:
    assert (find_nested_quantifier(pattern) is not None) is refused


def test_guard_refuses_bad_and_long_patterns_with_reasons() -> None:
    with pytest.raises(ValueError, match="bad regular expression"):
        compile_guarded("(")
    with pytest.raises(ValueError, match="longer than 512"):
        compile_guarded("a" * 513)
    with pytest.raises(ValueError, match="must be a string"):
        compile_guarded(5)
    assert compile_guarded("^ls$").search("ls")
    assert compile_guarded(re.compile("^ls$")).pattern == "^ls$"
