"""Make recorded terminal output safe to write to a reviewer's own terminal (``rcgate recordings play``).

A recording holds whatever a program (or an attacker who controls what it printed) wrote to
the terminal. Replayed verbatim into the reviewer's terminal, some sequences act on the
reviewer's machine: OSC 52 writes the clipboard, OSC 0/1/2 set the window title, OSC 8 makes
links, other OSC strings set colours or report them, DCS/APC/PM/SOS strings talk to the terminal
(tmux passthrough, sixel, kitty graphics, DECRQSS), and queries (``CSI 6n``, ``CSI c``, ``ESC Z``,
``ENQ``, ``CSI 14t``…) make it answer, i.e. type into the reviewer's shell.

``TerminalSanitizer`` is a whitelist: it passes printable text, the harmless C0 controls (BS,
HT, LF, VT, FF, CR, SO, SI), CSI sequences that draw (colours and attributes, cursor movement,
erasing, inserting, scrolling, scroll region, the cursor's shape), mode changes that only affect
drawing (cursor visibility, wrapping, origin, insert, the alternate screen), and the
two-character escapes that draw (save/restore cursor, index, charsets, keypad, reset). Every
string sequence (OSC, DCS, APC, PM, SOS) is removed with its whole payload, and so is every
other sequence and control character: queries, mouse or focus reporting, bracketed paste,
window operations, BEL, ENQ, the 8-bit C1 controls. A sequence split across events (chunks) is
carried over, so splitting cannot smuggle one through. Unbounded parameters are cut off.
"""

from __future__ import annotations

import re

_TEXT = re.compile(r"[^\x00-\x1f\x7f-\x9f]+")
_KEEP_C0 = frozenset("\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f")
# CSI final bytes that only draw (no intermediates): see the module docstring.
_CSI_DRAW = frozenset("@ABCDEFGHIJKLMPSTXZ`abdefgmrsu")
_SAFE_PRIVATE_MODES = frozenset({1, 5, 6, 7, 12, 25, 47, 1047, 1048, 1049})
_SAFE_MODES = frozenset({4, 20})
_ESC_SIMPLE = frozenset("78DEHMc=>NO")
_ESC_CHARSET = frozenset("()*+-./")
_STRING_INTRODUCERS = {"]": "osc", "P": "dcs", "X": "sos", "^": "pm", "_": "apc"}
_C1_STRINGS = {"\x9d": "osc", "\x90": "dcs", "\x98": "sos", "\x9e": "pm", "\x9f": "apc"}
MAX_CSI = 64  # a CSI longer than this is dropped whole


class TerminalSanitizer:
    """Feed output chunk by chunk; each ``feed`` returns what is safe to write (see module doc)."""

    __slots__ = ("_buf", "_state", "_string_esc")

    def __init__(self) -> None:
        self._state = "ground"  # ground | esc | esc_charset | esc_hash | csi | string
        self._buf: list[str] = []  # the CSI (or ESC sequence) collected so far
        self._string_esc = False  # in a string: the last character was ESC

    def feed(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if self._state == "ground":
                m = _TEXT.match(text, i)
                if m is not None:
                    out.append(m.group())
                    i = m.end()
                    continue
                self._control(text[i], out)
            else:
                self._in_sequence(text[i], out)
            i += 1
        return "".join(out)

    def _control(self, ch: str, out: list[str]) -> None:
        if ch == "\x1b":
            self._state, self._buf = "esc", []
        elif ch == "\x9b":
            self._state, self._buf = "csi", []
        elif ch in _C1_STRINGS:
            self._state, self._string_esc = "string", False
        elif ch in _KEEP_C0:
            out.append(ch)
        # everything else (NUL, BEL, ENQ, DEL, other C0 and C1 controls) is dropped

    def _in_sequence(self, ch: str, out: list[str]) -> None:
        state = self._state
        if ch in "\x18\x1a" and state != "string":  # CAN, SUB: abort the sequence
            self._state = "ground"
            return
        if state == "string":
            self._in_string(ch)
        elif state == "esc":
            self._after_esc(ch, out)
        elif state == "csi":
            self._in_csi(ch, out)
        elif state == "esc_charset":
            self._state = "ground"
            if "0" <= ch <= "~":
                out.append("\x1b" + self._buf[0] + ch)
            elif ch == "\x1b":
                self._state, self._buf = "esc", []
        elif state == "esc_hash":
            self._state = "ground"
            if ch in "34568":
                out.append("\x1b#" + ch)
            elif ch == "\x1b":
                self._state, self._buf = "esc", []

    def _after_esc(self, ch: str, out: list[str]) -> None:
        if ch == "[":
            self._state, self._buf = "csi", []
        elif ch in _STRING_INTRODUCERS:
            self._state, self._string_esc = "string", False
        elif ch in _ESC_CHARSET:
            self._state, self._buf = "esc_charset", [ch]
        elif ch == "#":
            self._state = "esc_hash"
        elif ch == "\x1b":
            self._state, self._buf = "esc", []
        else:
            self._state = "ground"
            if ch in _ESC_SIMPLE:
                out.append("\x1b" + ch)
            # anything else (ESC Z asks the terminal to identify itself, ESC % …) is dropped

    def _in_string(self, ch: str) -> None:
        """Inside OSC/DCS/SOS/PM/APC: drop everything up to the terminator (BEL, ST)."""
        if self._string_esc:
            self._string_esc = False
            if ch == "\\":
                self._state = "ground"
                return
            # ESC followed by something else ends the string and starts a new sequence
            self._state, self._buf = "esc", []
            self._after_esc(ch, [])  # a sequence right after a cut string is dropped too
            return
        if ch == "\x1b":
            self._string_esc = True
        elif ch in "\x07\x9c\x18\x1a":  # BEL or ST ends it; CAN or SUB aborts it
            self._state = "ground"

    def _in_csi(self, ch: str, out: list[str]) -> None:
        if "\x40" <= ch <= "\x7e":  # final byte
            self._state = "ground"
            body = "".join(self._buf)
            if len(body) <= MAX_CSI and self._allowed(body, ch):
                out.append("\x1b[" + body + ch)
            return
        if "\x20" <= ch <= "\x3f":  # parameter and intermediate bytes
            if len(self._buf) <= MAX_CSI:
                self._buf.append(ch)
            return
        if ch == "\x1b":
            self._state, self._buf = "esc", []
            return
        if ch in _KEEP_C0:  # terminals execute C0 controls inside a CSI
            out.append(ch)
            return
        self._state = "ground"  # anything else: the sequence is malformed, drop it

    @staticmethod
    def _allowed(body: str, final: str) -> bool:
        intermediates = "".join(c for c in body if "\x20" <= c <= "\x2f")
        params = body[: len(body) - len(intermediates)] if intermediates else body
        if intermediates:
            return (
                intermediates == " " and final == "q" and (params.isdigit() or params == "")
            )  # cursor shape
        if final in "hl":
            private = params.startswith("?")
            digits = params[1:] if private else params
            allowed = _SAFE_PRIVATE_MODES if private else _SAFE_MODES
            try:
                modes = [int(p) for p in digits.split(";")]
            except ValueError:
                return False
            return all(m in allowed for m in modes)
        if params[:1] in ("?", ">", "=", "<"):  # private variants of drawing finals: queries, mostly
            return False
        return final in _CSI_DRAW and all(c in "0123456789;:" for c in params)


def sanitize(text: str) -> str:
    """One whole text made safe (a convenience for tests and single strings)."""
    return TerminalSanitizer().feed(text)
