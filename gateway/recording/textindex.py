"""The text index of a recording: what was shown and typed, escape sequences stripped, with times.

Built by ``build_index`` from a ``.cast`` and read by ``gateway.recording.search``. One file per
recording (``<id>.idx``): ``MAGIC``, an 8-byte little-endian header length, a JSON header, then
the sections it names. The header holds the ``.cast``'s size and mtime (a changed cast means a
stale index) and, for each stream (``o`` output, ``i`` input, ``m`` markers), where to find:

* ``fold``: the stripped text, UTF-8, case-folded by ``fold``: what a search scans. Escape
  sequences are removed (cursor movements become a space, so words at different screen
  positions stay apart), CR and CRLF become LF, tabs a space, other control characters are
  dropped; input is edited with its backspaces, and Ctrl-C, Ctrl-D and Ctrl-U end a line. A
  sequence split across events is carried over. Only characters whose lower case has the same
  UTF-8 length are folded, so offsets agree with the original text.
* ``text_z`` / ``text_blocks``: the original (unfolded) text for snippets, zlib-compressed in
  ``TEXT_BLOCK`` blocks and the offsets of the blocks; absent when folding changed nothing.
* ``starts`` / ``times``: the time table, int64 byte offsets and float64 seconds. Events are
  grouped while they come within ``GROUP_S`` of the group's first event and stay under
  ``GROUP_BYTES``; each group has one entry: where its text starts and the time of its last
  event. A burst of output is stripped in one pass, and the time of any text is at most
  ``GROUP_S`` after the event that wrote it (when the player seeks there, it is on screen).

The ``.cast`` is read in 8 MiB blocks of whole lines, each parsed with one ``json.loads``. A
partial last line (a live recording) is left for the next build. Index files hold what the
recordings hold: created 0600 in a 0700 folder, written to a temporary name and renamed.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import re
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path

INDEX_VERSION = 2
MAGIC = b"RCGIDX1\n"
STREAMS = ("o", "i", "m")
GROUP_S = 0.1  # events within this of a group's first event share its time entry
GROUP_BYTES = 64 * 1024
READ_BLOCK = 8 * 1024 * 1024
TEXT_BLOCK = 64 * 1024  # the original text is zlib-compressed in blocks of this many bytes
MAX_CARRY = 64 * 1024  # an unterminated escape sequence longer than this is payload, not text

_ESC_MOVE = re.compile(r"\x1b\[[0-?]*[ -/]*[ABCDEFGHJdfr]|\x9b[0-?]*[ -/]*[ABCDEFGHJdfr]")
_ESC_ANY = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC ... BEL | ST
    r"|[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)"  # DCS, SOS, PM, APC ... ST
    r"|[ -/]*[0-~])"  # two- and three-byte sequences (ESC 7, ESC ( B, ESC =)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # 8-bit string sequences
)
_INCOMPLETE = re.compile(
    r"(?:\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b\x9c]*\x1b?|[ -/]*)?"
    r"|\x9b[0-?]*[ -/]*|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*\x1b?)\Z"
)
_SPECIAL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # anything but printable text and LF
_C1 = re.compile(r"[\x90\x98\x9b\x9d\x9e\x9f]")
_OVERSTRIKE = re.compile(r"[^\n\x08]\x08")
_DROP = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INPUT_BREAKS = re.compile(r"[\x03\x04\x15]")
_ERASE = re.compile(r"[\x08\x7f]")


_FOLD_CACHE: dict[int, int | None] = {}


def fold(text: str) -> str:
    """Lower case, keeping every character's UTF-8 length (offsets agree with the original)."""
    if text.isascii():
        return text.lower()
    table: dict[int, int] = {}
    for ch in set(text):
        code = ord(ch)
        if code < 128:
            if "A" <= ch <= "Z":
                table[code] = code + 32
            continue
        low = _FOLD_CACHE.get(code, -1)
        if low == -1:
            lower = ch.lower()
            ok = len(lower) == 1 and lower != ch and len(lower.encode()) == len(ch.encode())
            low = _FOLD_CACHE[code] = ord(lower) if ok else None
        if low is not None:
            table[code] = low
    return text.translate(table)


class Stripper:
    """Removes escape sequences and control characters from one stream, chunk by chunk.

    A sequence split across chunks is carried to the next chunk (up to ``MAX_CARRY``).
    """

    __slots__ = ("_carry", "_input")

    def __init__(self, *, input_stream: bool = False) -> None:
        self._carry = ""
        self._input = input_stream

    def _split_tail(self, text: str) -> tuple[str, str]:
        """``text`` without an unfinished escape sequence at its end, and that sequence.

        A carried sequence longer than ``MAX_CARRY`` keeps only its introducer: what follows
        is a string's payload (a clipboard write, a title), dropped, not text to index.
        """
        last = text.rfind("\x1b")
        if last < 0:
            return text, ""
        # The earlier of the last two ESCs first: an OSC cut between its ESC and '\\' (ST).
        for start in (text.rfind("\x1b", 0, last), last):
            if start >= 0 and _INCOMPLETE.match(text, start):
                tail = text[start:]
                return text[:start], tail if len(tail) <= MAX_CARRY else tail[:2]
        return text, ""

    def feed(self, text: str) -> str:
        if self._carry:
            text, self._carry = self._carry + text, ""
        if self._input:
            text = text.replace("\r", "\n")
        elif "\r\n" in text:
            text = text.replace("\r\n", "\n")
        if _SPECIAL.search(text) is None:  # the common case: plain text (a keystroke, a line)
            return text
        if "\x1b" in text:
            text, self._carry = self._split_tail(text)
            text = _ESC_MOVE.sub(" ", text)
            text = _ESC_ANY.sub("", text)
        elif _C1.search(text):
            text = _ESC_ANY.sub("", _ESC_MOVE.sub(" ", text))
        if self._input:
            text = _INPUT_BREAKS.sub("\n", text)
        else:
            text = text.replace("\r", "\n")
            if "\x08" in text:
                text = _OVERSTRIKE.sub("", text)
        text = text.replace("\t", " ")
        if self._input:
            return _DROP.sub(lambda m: m.group() if m.group() in "\x08\x7f" else "", text)
        return _DROP.sub("", text)


class _StreamBuilder:
    """Collects one stream's stripped text and its time table while the cast is read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.size = 0  # characters so far
        self.starts: list[int] = []  # character offsets, converted to bytes at the end
        self.times: list[float] = []
        self.stripper = Stripper(input_stream=name == "i")
        self.pending: list[str] = []
        self.pending_bytes = 0
        self.first_t = 0.0
        self.last_t = 0.0

    def add(self, t: float, data: str) -> None:
        if self.pending and (t - self.first_t > GROUP_S or self.pending_bytes > GROUP_BYTES):
            self.flush()
        if not self.pending:
            self.first_t = t
        self.pending.append(data)
        self.pending_bytes += len(data)
        self.last_t = t

    def flush(self) -> None:
        if not self.pending:
            return
        raw = "".join(self.pending)
        self.pending, self.pending_bytes = [], 0
        text = self.stripper.feed(raw)
        if self.name == "i" and _ERASE.search(text):
            text = self._erase(text)
        if not text:
            return
        self.starts.append(self.size)
        self.times.append(self.last_t)
        self.parts.append(text)
        self.size += len(text)

    def _erase(self, text: str) -> str:
        """Apply backspaces: each erases the character before it on the same line."""
        pieces = _ERASE.split(text)
        buf = list(pieces[0])
        for piece in pieces[1:]:
            if buf:
                if buf[-1] != "\n":
                    buf.pop()
            elif self.parts and self.parts[-1][-1:] not in ("", "\n"):
                self.parts[-1] = self.parts[-1][:-1]  # erase into the previous group
                self.size -= 1
            buf.extend(piece)
        return "".join(buf)

    def sections(self) -> dict[str, bytes]:
        """This stream's sections (see the module docstring), by name."""
        text = "".join(self.parts)
        folded_text = fold(text)
        out = {"fold": folded_text.encode("utf-8")}
        if folded_text != text:  # the original, for snippets: compressed blocks
            data = text.encode("utf-8")
            blocks, offsets, pos = [], [0], 0
            for i in range(0, len(data), TEXT_BLOCK):
                z = zlib.compress(data[i : i + TEXT_BLOCK], 1)
                blocks.append(z)
                pos += len(z)
                offsets.append(pos)
            out["text_z"] = b"".join(blocks)
            out["text_blocks"] = array.array("q", offsets).tobytes()
        if text.isascii():
            starts = self.starts
        else:  # character offsets -> byte offsets
            starts, pos, done = [], 0, 0
            for start in self.starts:
                pos += len(text[done:start].encode("utf-8"))
                done = start
                starts.append(pos)
        out["starts"] = array.array("q", starts).tobytes()
        out["times"] = array.array("d", self.times).tobytes()
        return out


def _events(cast_path: Path) -> Iterator[list[object]]:
    """The event arrays of a cast (header skipped; malformed lines skipped), read in blocks."""
    with cast_path.open("rb") as f:
        f.readline()
        carry = b""
        while True:
            block = f.read(READ_BLOCK)
            if not block:
                break
            block = carry + block
            end = block.rfind(b"\n")
            if end < 0:
                carry = block
                continue
            carry = block[end + 1 :]
            yield from _parse_block(block[:end])
        # A partial last line (a live recording) is left for the next build.


def _parse_block(block: bytes) -> list[list[object]]:
    try:
        parsed = json.loads(b"[" + block.replace(b"\n", b",") + b"]")
        if isinstance(parsed, list):
            return [e for e in parsed if isinstance(e, list) and len(e) == 3]
    except ValueError:
        pass
    events: list[list[object]] = []
    for line in block.split(b"\n"):
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, list) and len(event) == 3:
                events.append(event)
    return events


def build_index(cast_path: Path, out: Path) -> None:
    """Write the text index of ``cast_path`` to ``out`` (atomically, mode 0600)."""
    st = cast_path.stat()
    builders = {name: _StreamBuilder(name) for name in STREAMS}
    for t, code, data in _events(cast_path):
        if not isinstance(data, str) or isinstance(t, bool) or not isinstance(t, int | float):
            continue
        b = builders.get(code) if isinstance(code, str) else None
        if b is None:
            continue
        if code == "m":
            b.add(float(t), data + "\n")
            b.flush()
        else:
            b.add(float(t), data)
    header: dict[str, object] = {"v": INDEX_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    sections: list[bytes] = []
    offset = 0
    streams: dict[str, dict[str, list[int]]] = {}
    for name, b in builders.items():
        b.flush()
        entry: dict[str, list[int]] = {}
        for key, blob in b.sections().items():
            entry[key] = [offset, len(blob)]
            sections.append(blob)
            offset += len(blob)
        streams[name] = entry
    header["streams"] = streams
    head = json.dumps(header, separators=(",", ":")).encode("ascii")
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(8, "little") + head)
            for blob in sections:
                f.write(blob)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
