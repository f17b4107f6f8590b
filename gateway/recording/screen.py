"""A terminal screen kept in step with a recording's output, and a snapshot that redraws it.

The emulator is pyte (a VT100/VT220 emulator in pure Python). ``ScreenState.feed`` takes the
``o`` events' text in order (a sequence split across events is carried by pyte's parser),
``resize`` takes ``r`` events, and ``snapshot()`` returns one string of output that, written to
an empty terminal of the same size, reproduces what is on the screen: the alternate screen if
one is in use, every row with its SGR colours and attributes, the scroll region, the cursor
position and visibility, and the attributes the next output will be drawn with.

A snapshot is what the seek index stores (``gateway.recording.seekindex``): the player starts
from it, then plays the events after it. Limits (documented in docs/recording-format.md): pyte
keeps one screen, so the main screen under an alternate screen is not kept; charsets (line
drawing), tab stops and the window title are not reproduced. Speed: roughly 0.5-1 MB/s of
output in CPython, so the live seek index runs in its own thread (see ``seekindex``).
"""

from __future__ import annotations

import pyte
from pyte import graphics, modes
from pyte.screens import Char
from wcwidth import wcwidth

MAX_COLS = 1000
MAX_ROWS = 500

_FG = {name: code for code, name in {**graphics.FG_ANSI, **graphics.FG_AIXTERM}.items()}
_BG = {name: code for code, name in {**graphics.BG_ANSI, **graphics.BG_AIXTERM}.items()}
_BG["brightmagenta"] = 105  # pyte 0.8.2 spells it "bfightmagenta"
_INDEX_256: dict[str, int] = {}
for _i, _hex in enumerate(graphics.FG_BG_256):
    _INDEX_256.setdefault(_hex, _i)

ALT_SCREEN_MODES = (1049, 1047, 47)


def _colour(value: str, table: dict[str, int], extended: int) -> str:
    if value == "default":
        return ""
    code = table.get(value)
    if code is not None:
        return str(code)
    index = _INDEX_256.get(value)
    if index is not None:
        return f"{extended};5;{index}"
    if len(value) == 6:
        try:
            r, g, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
        except ValueError:
            return ""
        return f"{extended};2;{r};{g};{b}"
    return ""


def sgr_of(char: Char) -> str:
    """The SGR sequence (from a reset) that draws with ``char``'s colours and attributes."""
    parts = ["0"]
    if char.bold:
        parts.append("1")
    if char.italics:
        parts.append("3")
    if char.underscore:
        parts.append("4")
    if char.blink:
        parts.append("5")
    if char.reverse:
        parts.append("7")
    if char.strikethrough:
        parts.append("9")
    fg = _colour(char.fg, _FG, 38)
    bg = _colour(char.bg, _BG, 48)
    parts += [p for p in (fg, bg) if p]
    return "\x1b[" + ";".join(parts) + "m"


def _style(char: Char) -> tuple[object, ...]:
    return char[1:]


class ScreenState:
    """One terminal screen fed with a recording's output (not thread-safe: one owner)."""

    __slots__ = ("_screen", "_stream")

    def __init__(self, cols: int, rows: int) -> None:
        cols, rows = self._clamp(cols, rows)
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.Stream(self._screen)

    @staticmethod
    def _clamp(cols: int, rows: int) -> tuple[int, int]:
        return max(1, min(cols, MAX_COLS)), max(1, min(rows, MAX_ROWS))

    @property
    def size(self) -> tuple[int, int]:
        return self._screen.columns, self._screen.lines

    def feed(self, text: str) -> None:
        self._stream.feed(text)

    def resize(self, cols: int, rows: int) -> None:
        cols, rows = self._clamp(cols, rows)
        self._screen.resize(lines=rows, columns=cols)

    def display(self) -> list[str]:
        """The screen's text, one string per row (for tests and diagnostics)."""
        return list(self._screen.display)

    def cursor(self) -> tuple[int, int, bool]:
        """Cursor column, row (0-based) and whether it is shown."""
        c = self._screen.cursor
        return c.x, c.y, modes.DECTCEM in self._screen.mode

    def snapshot(self) -> str:
        """Output that redraws this screen on an empty terminal of the same size (see module doc)."""
        screen = self._screen
        out: list[str] = []
        alt = any((m << 5) in screen.mode for m in ALT_SCREEN_MODES)
        if alt:
            out.append("\x1b[?1049h")
        out.append("\x1b[0m\x1b[r\x1b[H\x1b[2J")
        default = screen.default_char
        cols = screen.columns
        for y in range(screen.lines):
            row = screen.buffer[y]
            cells = [row[x] for x in range(cols)]  # defaultdict: reading fills in default cells
            end = cols
            while end > 0 and cells[end - 1] == default:
                end -= 1
            if end == 0:
                continue
            style: tuple[object, ...] | None = None
            at = -1  # the column the next character would be drawn at (-1: not positioned yet)
            for x in range(end):
                ch = cells[x]
                data = ch.data
                if data == "":  # the right half of a wide character (or one cut in half): skip
                    continue
                if at != x:
                    out.append(f"\x1b[{y + 1};{x + 1}H")
                if _style(ch) != style:
                    style = _style(ch)
                    out.append(sgr_of(ch))
                out.append(data if data.isprintable() else " ")
                at = x + max(wcwidth(data), 1)
            out.append("\x1b[0m")
        if screen.margins is not None:
            out.append(f"\x1b[{screen.margins.top + 1};{screen.margins.bottom + 1}r")
        cursor = screen.cursor
        out.append(f"\x1b[{cursor.y + 1};{cursor.x + 1}H")
        if modes.DECTCEM not in screen.mode:
            out.append("\x1b[?25l")
        if modes.DECAWM not in screen.mode:
            out.append("\x1b[?7l")
        attrs = cursor.attrs
        if _style(attrs) != _style(default):
            out.append(sgr_of(attrs))
        return "".join(out)
