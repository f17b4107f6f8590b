"""`rcgate recordings play` output filter: what may reach the reviewer's terminal."""

from __future__ import annotations

import pytest

from gateway.recording.termsafe import TerminalSanitizer, sanitize

DANGEROUS = {
    "osc52 clipboard (BEL)": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "osc52 clipboard (ST)": "\x1b]52;c;cm0gLXJmIH4=\x1b\\",
    "osc0 title": "\x1b]0;pwned\x07",
    "osc1 icon": "\x1b]1;pwned\x07",
    "osc2 title": "\x1b]2;pwned\x1b\\",
    "osc8 link": "\x1b]8;;https://evil.example/\x07",
    "osc4 colour query": "\x1b]4;1;?\x07",
    "osc10 fg query": "\x1b]10;?\x07",
    "osc1337 file": "\x1b]1337;File=name=eA==;inline=1:AAAA\x07",
    "dcs decrqss": "\x1bP$qm\x1b\\",
    "dcs xtgettcap": "\x1bP+q544e\x1b\\",
    "dcs tmux passthrough": "\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\",
    "apc kitty graphics": "\x1b_Gf=100;AAAA\x1b\\",
    "pm": "\x1b^private\x1b\\",
    "sos": "\x1bXstring\x1b\\",
    "8-bit osc": "\x9d52;c;eA==\x07",
    "8-bit dcs": "\x90$qm\x9c",
    "8-bit csi dsr": "\x9b6n",
    "dsr cursor report": "\x1b[6n",
    "dsr status": "\x1b[5n",
    "primary da": "\x1b[c",
    "secondary da": "\x1b[>c",
    "tertiary da": "\x1b[=c",
    "decid": "\x1bZ",
    "window report": "\x1b[14t",
    "window iconify": "\x1b[2t",
    "decrqm": "\x1b[?2004$p",
    "decreqtparm": "\x1b[x",
    "xtversion": "\x1b[>0q",
    "mouse tracking": "\x1b[?1000h",
    "any-event mouse": "\x1b[?1003h",
    "sgr mouse": "\x1b[?1006h",
    "focus reports": "\x1b[?1004h",
    "bracketed paste": "\x1b[?2004h",
    "enq answerback": "\x05",
    "bel": "\x07",
    "media copy": "\x1b[5i",
    "modify other keys": "\x1b[>4;2m",
}

SAFE = {
    "sgr colours": "\x1b[1;31mred\x1b[0m",
    "256 colours": "\x1b[38;5;208mx\x1b[48;2;1;2;3my",
    "cursor moves": "\x1b[10;5H\x1b[2A\x1b[3C\x1b[G\x1b[5d",
    "erase": "\x1b[2J\x1b[K\x1b[1X",
    "scroll region": "\x1b[2;20r",
    "cursor visibility": "\x1b[?25l\x1b[?25h",
    "alternate screen": "\x1b[?1049h\x1b[?1049l",
    "save restore": "\x1b7\x1b8",
    "charset": "\x1b(0qqq\x1b(B",
    "cursor shape": "\x1b[2 q",
    "controls": "a\tb\r\nc\x08d",
}


@pytest.mark.parametrize("seq", DANGEROUS.values(), ids=DANGEROUS.keys())
def test_each_dangerous_sequence_is_removed_whole(seq: str) -> None:
    assert sanitize(f"before{seq}after") == "beforeafter"


@pytest.mark.parametrize("seq", DANGEROUS.values(), ids=DANGEROUS.keys())
def test_split_across_events_at_every_point_it_is_still_removed(seq: str) -> None:
    text = f"A{seq}B"
    for cut in range(len(text) + 1):
        s = TerminalSanitizer()
        assert s.feed(text[:cut]) + s.feed(text[cut:]) == "AB", cut
    s = TerminalSanitizer()
    assert "".join(s.feed(ch) for ch in text) == "AB", "one character per event"


@pytest.mark.parametrize("seq", SAFE.values(), ids=SAFE.keys())
def test_colours_and_cursor_movement_are_kept(seq: str) -> None:
    assert sanitize(seq) == seq
    s = TerminalSanitizer()
    assert "".join(s.feed(ch) for ch in seq) == seq


def test_an_unterminated_string_swallows_until_its_terminator() -> None:
    s = TerminalSanitizer()
    assert s.feed("ok\x1b]52;c;") == "ok"
    assert s.feed("a" * 100_000) == ""
    assert s.feed("\x07\x1b[32mgreen") == "\x1b[32mgreen"


def test_a_huge_csi_is_dropped() -> None:
    assert sanitize("\x1b[" + "1;" * 1000 + "m" + "x") == "x"


def test_can_and_sub_abort_a_sequence() -> None:
    assert sanitize("\x1b[6\x18n") == "n"
