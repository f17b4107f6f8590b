"""The asciicast v2 codec: header and event lines in, JSON lines out, and back (no I/O, no clock).

Format (https://docs.asciinema.org/manual/asciicast/v2/): the first line is a JSON object
(the header), every following line a JSON array ``[time, code, data]`` where ``time`` is
seconds since the start of the recording and ``code`` is one of

    o   output written to the terminal          data: the text
    i   input that reached the terminal         data: the text
    r   resize                                  data: "COLSxROWS"
    m   marker (join, leave, refusal, end ...)  data: the label

rcgate adds one key to the header, ``"rcgate"``: the session's metadata (id, owner, host, cwd,
command, labels). Readers that do not know it ignore it (``asciinema cat`` 2.4 does).

Terminal bytes are not text: a PTY read may end in the middle of a UTF-8 character, and a
program may write bytes that are not UTF-8 at all. ``TextStream`` decodes incrementally: a
chunk that ends mid-character carries its partial bytes to the next chunk, and only bytes that
can never be valid UTF-8 become U+FFFD.
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core.errors import BadRequest

ASCIICAST_VERSION = 2
TIME_DECIMALS = 6  # microseconds: what asciinema itself writes
DEFAULT_ENV: Mapping[str, str] = {"TERM": "xterm-256color"}


class CastFormatError(BadRequest):
    """A line is not valid asciicast v2 (or not one rcgate can read)."""

    code = "bad_recording"


class EventCode(StrEnum):
    OUTPUT = "o"
    INPUT = "i"
    RESIZE = "r"
    MARKER = "m"


class RcgateMeta(BaseModel):
    """The session metadata rcgate stores in the header under ``"rcgate"``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    session_id: str
    owner_id: str
    owner_name: str
    host: str
    cwd: str
    command: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)


class Header(BaseModel):
    """The first line of a recording. Unknown keys written by other tools are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = ASCIICAST_VERSION
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    timestamp: int | None = None  # seconds since the epoch when the recording started
    title: str | None = None
    env: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENV))
    rcgate: RcgateMeta | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One event line: ``time`` in seconds since the recording started."""

    time: float
    code: EventCode
    data: str


@dataclass(frozen=True, slots=True)
class Cast:
    """A whole recording read back."""

    header: Header
    events: tuple[Event, ...]

    def output_text(self) -> str:
        """Everything written to the terminal, concatenated (what ``asciinema cat`` prints)."""
        return "".join(e.data for e in self.events if e.code is EventCode.OUTPUT)

    def markers(self) -> list[str]:
        return [e.data for e in self.events if e.code is EventCode.MARKER]


def encode_header(header: Header) -> str:
    """The header as one JSON line, newline included."""
    return header.model_dump_json(exclude_none=True) + "\n"


def encode_event(time: float, code: EventCode, data: str) -> str:
    """One event as a JSON line, newline included. ``ensure_ascii=False`` keeps files small."""
    return json.dumps([round(time, TIME_DECIMALS), code.value, data], ensure_ascii=False) + "\n"


def format_resize(cols: int, rows: int) -> str:
    return f"{cols}x{rows}"


def parse_resize(data: str) -> tuple[int, int]:
    cols, sep, rows = data.partition("x")
    if not sep or not cols.isdigit() or not rows.isdigit():
        raise CastFormatError(f"resize data must be COLSxROWS, got {data!r}")
    return int(cols), int(rows)


class TextStream:
    """Incremental UTF-8 decoding of one byte stream (output or input) for event data.

    ``feed`` returns the text the bytes complete, keeping a trailing partial character for the
    next call; ``finish`` flushes what is left (a truncated character becomes U+FFFD).
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes | bytearray) -> str:
        return self._decoder.decode(data, final=False)

    def finish(self) -> str:
        return self._decoder.decode(b"", final=True)


def parse_header(line: str) -> Header:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CastFormatError(f"header is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise CastFormatError("header must be a JSON object")
    if obj.get("version") != ASCIICAST_VERSION:
        raise CastFormatError(f"only asciicast v{ASCIICAST_VERSION} is supported")
    try:
        return Header.model_validate(obj)
    except ValidationError as exc:
        raise CastFormatError(f"bad header: {exc.errors()[0]['msg']}") from exc


def parse_event(line: str) -> Event:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CastFormatError(f"event is not JSON: {exc}") from exc
    if not isinstance(obj, list) or len(obj) != 3:
        raise CastFormatError("event must be a JSON array [time, code, data]")
    time, code, data = obj
    if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time) or time < 0:
        raise CastFormatError(f"event time must be a non-negative number, got {time!r}")
    try:
        event_code = EventCode(code)
    except ValueError:
        raise CastFormatError(f"unknown event code {code!r}") from None
    if not isinstance(data, str):
        raise CastFormatError("event data must be a string")
    if event_code is EventCode.RESIZE:
        parse_resize(data)
    return Event(float(time), event_code, data)


def parse_cast(lines: Iterable[str]) -> Cast:
    """Read a whole recording from its lines (e.g. ``text.splitlines()`` or an open file).

    An empty line ends the event stream, as in asciinema's own reader.
    """
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise CastFormatError("empty recording: no header")
    header = parse_header(first)
    events: list[Event] = []
    for line in it:
        if not line.strip():
            break
        events.append(parse_event(line))
    return Cast(header, tuple(events))


def title_for(owner_name: str, host: str, command: Sequence[str]) -> str:
    """A readable title: ``alice@laptop: claude --resume``."""
    where = f"{owner_name}@{host}"
    return f"{where}: {' '.join(command)}" if command else where
