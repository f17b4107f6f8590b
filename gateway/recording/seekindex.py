"""The seek index of a recording: keyframes (time, byte offset, signed screen snapshot) beside the ``.cast``.

Why: a reviewer jumps to minute 47 of a 100 MB recording. Without an index the player must
read and replay everything before it. With ``<id>.seek`` the server finds the last keyframe at
or before the wanted time, sends its screen snapshot as the first frame and then the events
from the keyframe's byte offset: a few hundred KB read instead of the whole file.

Format (``<id>.seek``, JSON lines, mode 0600, beside the ``.cast``; docs/recording-format.md):

* line 1: ``{"rcgate_seek": 1, "session_id": "ses_…", "cast": "ses_….cast", "key": "SHA256:…"}``
* then one keyframe per line, canonical JSON (as the chain's checkpoints)::

    {"v": 1, "session_id": "ses_…", "seq": 0, "t": 12.5, "line": 57, "offset": 20480,
     "link": "<hex of the cast chain's link_line>", "cols": 80, "rows": 24,
     "screen": "<output that redraws the screen>", "key": "SHA256:…", "sig": "<base64>"}

  ``line``/``offset``/``link``: the state of the cast's hash chain after line ``line`` (the
  next event line starts at byte ``offset``); ``t`` the time of that last line; ``screen`` what
  the terminal showed then (``screen.ScreenState.snapshot``); ``cols``/``rows`` its size.
  ``sig`` is Ed25519 (the recording key) over ``"rcgate-seek-v1\\n"`` + canonical JSON of the
  object without ``sig``.

Keyframes are taken where the cast chain is checkpointed (every 10 s or 256 KiB of a stream,
``recorder``), so each one sits on a line boundary that a signed checkpoint also names, and its
signature binds the snapshot to that exact prefix of the cast (``link``).

Trust: the index is never evidence. ``rcgate recordings verify`` does not read it and the
``.cast`` stays the record (``asciinema cat`` never sees the index). A keyframe is used only
for seeking, and only when its signature verifies with the gateway's public key, its session is
the recording's and its offset is a line start inside the ``.cast``; otherwise the seek falls
back to an earlier keyframe or to the start. A lost, partial or stale index costs only speed:
``build_seek_index`` rebuilds it from the ``.cast`` (``rcgate recordings reindex``).

Writing while recording (``SeekWriter``): the recorder's worker thread hands each batch's ``o``
and ``r`` events and each checkpoint to a queue; a thread of its own feeds the emulator and
writes keyframes, so the emulator (pure Python, ~0.5-1 MB/s) never slows the recording. If it
falls more than ``MAX_BACKLOG_CHARS`` behind (a burst of output), or its file cannot be
written, it stops: the index ends at its last keyframe (seeks later in the recording read more
of the ``.cast``) until it is rebuilt. It never fails the recording.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import collections
import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.recording.asciicast import CastFormatError, parse_resize
from gateway.recording.chain import (
    STREAM_CAST,
    ChainFormatError,
    Signer,
    fingerprint,
    genesis,
    parse_checkpoint,
    split_lines,
)
from gateway.recording.screen import ScreenState

log = logging.getLogger(__name__)

SEEK_VERSION = 1
SEEK_DOMAIN = b"rcgate-seek-v1\n"
SEEK_SUFFIX = ".seek"
MAX_BACKLOG_CHARS = 32 * 1024 * 1024  # the live indexer gives up beyond this much unprocessed output
READ_CHUNK = 256 * 1024


class SeekFile(Protocol):
    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def seek_path_of(cast_path: Path) -> Path:
    """``<id>.seek`` beside ``<id>.cast``."""
    return cast_path.with_name(cast_path.name.removesuffix(".cast") + SEEK_SUFFIX)


def _canonical(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _parse_size(data: str) -> tuple[int, int] | None:
    try:
        cols, rows = parse_resize(data)
    except CastFormatError:
        return None
    return (cols, rows) if cols > 0 and rows > 0 else None


@dataclass(frozen=True, slots=True)
class Keyframe:
    session_id: str
    seq: int
    t: float
    line: int
    offset: int
    link: str
    cols: int
    rows: int
    screen: str
    key: str
    sig: bytes

    def body(self) -> dict[str, object]:
        return {
            "v": SEEK_VERSION,
            "session_id": self.session_id,
            "seq": self.seq,
            "t": self.t,
            "line": self.line,
            "offset": self.offset,
            "link": self.link,
            "cols": self.cols,
            "rows": self.rows,
            "screen": self.screen,
            "key": self.key,
        }

    def verifies(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.sig, SEEK_DOMAIN + _canonical(self.body()))
        except InvalidSignature:
            return False
        return True


def parse_keyframe(raw: bytes) -> Keyframe | None:
    """A keyframe line, or None if it is not one (malformed lines are skipped, never trusted)."""
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict) or obj.get("v") != SEEK_VERSION:
            return None
        kf = Keyframe(
            session_id=str(obj["session_id"]),
            seq=int(obj["seq"]),
            t=float(obj["t"]),
            line=int(obj["line"]),
            offset=int(obj["offset"]),
            link=str(obj["link"]),
            cols=int(obj["cols"]),
            rows=int(obj["rows"]),
            screen=str(obj["screen"]),
            key=str(obj["key"]),
            sig=base64.b64decode(str(obj["sig"]), validate=True),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return kf if kf.offset > 0 and kf.line > 0 and kf.t >= 0 else None


class Keyframer:
    """Feeds a screen with a recording's events and signs a keyframe on request (one owner)."""

    def __init__(self, session_id: str, signer: Signer, cols: int, rows: int) -> None:
        self.session_id = session_id
        self._signer = signer
        self._screen = ScreenState(cols, rows)
        self._seq = 0

    def header(self, cast_name: str) -> bytes:
        head = {"rcgate_seek": SEEK_VERSION, "session_id": self.session_id, "cast": cast_name}
        head["key"] = self._signer.key_id
        return json.dumps(head, separators=(",", ":")).encode("ascii") + b"\n"

    def event(self, code: str, data: str) -> None:
        if code == "o":
            self._screen.feed(data)
        elif code == "r":
            size = _parse_size(data)
            if size is not None:
                self._screen.resize(*size)

    def keyframe(self, t: float, line: int, offset: int, link: bytes) -> bytes:
        cols, rows = self._screen.size
        kf = Keyframe(
            session_id=self.session_id,
            seq=self._seq,
            t=round(t, 6),
            line=line,
            offset=offset,
            link=link.hex(),
            cols=cols,
            rows=rows,
            screen=self._screen.snapshot(),
            key=self._signer.key_id,
            sig=b"",
        )
        sig = self._signer.sign(SEEK_DOMAIN + _canonical(kf.body()))
        self._seq += 1
        obj = kf.body()
        obj["sig"] = base64.b64encode(sig).decode("ascii")
        return _canonical(obj) + b"\n"


# A queued item: the header (the cast's name), a batch of (code, data) events, or a keyframe.
_Item = str | list[tuple[str, str]] | tuple[float, int, int, bytes]


# --- writing while recording --------------------------------------------------------------------


class SeekWriter:
    """The live seek index of one recording (see the module docstring): a queue and a thread.

    ``events`` and ``keyframe`` are called by the recorder's worker thread and never block on
    the emulator; ``close`` lets the thread finish what is queued and close the file.
    """

    def __init__(self, file: SeekFile, keyframer: Keyframer, cast_name: str) -> None:
        self._file: SeekFile | None = file
        self._keyframer = keyframer
        self._queue: collections.deque[tuple[str, _Item]] = collections.deque()
        self._backlog = 0
        self._cond = threading.Condition()
        self._closed = False
        self._stopped = False
        self.done = threading.Event()
        self._queue.append(("header", cast_name))
        self._thread = threading.Thread(target=self._run, name="rcgate-seek-index", daemon=True)
        self._thread.start()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def events(self, items: list[tuple[str, str]]) -> None:
        if not items or self._stopped:
            return
        size = sum(len(d) for _, d in items)
        with self._cond:
            if self._closed:
                return
            if self._backlog + size > MAX_BACKLOG_CHARS:
                self._give_up("the seek index fell too far behind the recording")
                return
            self._backlog += size
            self._queue.append(("events", items))
            self._cond.notify()

    def keyframe(self, t: float, line: int, offset: int, link: bytes) -> None:
        if self._stopped:
            return
        with self._cond:
            if not self._closed:
                self._queue.append(("keyframe", (t, line, offset, link)))
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the thread has written what was queued and closed the file (tests, shutdown)."""
        return self.done.wait(timeout)

    def _give_up(self, why: str) -> None:
        """Called with ``_cond`` held: drop what is queued; the thread closes the file."""
        if not self._stopped:
            log.warning("seek index stopped: %s (rebuild it with `rcgate recordings reindex`)", why)
        self._stopped = True
        self._queue.clear()
        self._backlog = 0
        self._cond.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed and not self._stopped:
                        self._cond.wait()
                    if self._stopped or (not self._queue and self._closed):
                        return
                    kind, item = self._queue.popleft()
                try:
                    self._handle(kind, item)
                except OSError as exc:
                    with self._cond:
                        self._give_up(f"cannot write it: {exc}")
                    return
                except Exception:
                    log.exception("seek index failed")
                    with self._cond:
                        self._give_up("internal error")
                    return
        finally:
            file, self._file = self._file, None
            if file is not None:
                with contextlib.suppress(Exception):
                    file.close()
            self.done.set()

    def _handle(self, kind: str, item: _Item) -> None:
        file = self._file
        assert file is not None
        if isinstance(item, str):
            _write_all(file, self._keyframer.header(item))
            file.flush()
        elif isinstance(item, list):
            for code, data in item:
                self._keyframer.event(code, data)
            with self._cond:
                self._backlog -= sum(len(d) for _, d in item)
        else:
            t, line, offset, link = item
            _write_all(file, self._keyframer.keyframe(t, line, offset, link))
            file.flush()


def _write_all(file: SeekFile, data: bytes) -> None:
    while data:
        n = file.write(data)
        if not n:
            raise OSError("seek index file accepted no bytes")
        data = data[n:]


# --- rebuilding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildResult:
    keyframes: int
    lines: int
    note: str | None = None  # why the index stops early (the cast does not match its chain)


def _checkpoint_lines(chain: bytes | None, session_id: str) -> dict[int, bytes]:
    """Line -> link of every cast checkpoint (unverified: the links are recomputed and compared)."""
    found: dict[int, bytes] = {}
    if not chain:
        return found
    for raw in split_lines(chain)[0]:
        with contextlib.suppress(ChainFormatError):
            cp = parse_checkpoint(raw)[0]
            if cp.stream == STREAM_CAST and cp.session_id == session_id and cp.line > 1:
                found[cp.line] = cp.link
    return found


def build_seek_index(cast_path: Path, signer: Signer, out: Path | None = None) -> BuildResult:
    """(Re)write the seek index of ``cast_path`` from the ``.cast`` and its ``.chain``.

    A keyframe at every cast checkpoint, its link recomputed from the ``.cast``; where the
    recomputed link differs from the checkpoint's (an altered recording) the index stops.
    Written to a temporary name and renamed (mode 0600).
    """
    out = out or seek_path_of(cast_path)
    session_id = cast_path.name.removesuffix(".cast")
    chain_path = cast_path.with_name(f"{session_id}.chain")
    chain = chain_path.read_bytes() if chain_path.exists() else None
    stops = _checkpoint_lines(chain, session_id)
    cols, rows = 80, 24
    note: str | None = None
    count = 0
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f, cast_path.open("rb") as cast:
            first = cast.readline()
            with contextlib.suppress(ValueError):
                head = json.loads(first)
                if isinstance(head, dict):
                    cols, rows = int(head.get("width", 80)), int(head.get("height", 24))
            framer = Keyframer(session_id, signer, cols, rows)
            f.write(framer.header(cast_path.name))
            link = genesis(session_id, STREAM_CAST)
            link = hashlib.sha256(link + first).digest()
            line, offset, t = 1, len(first), 0.0
            for raw in cast:
                if not raw.endswith(b"\n"):
                    break  # a partial last line (live)
                line += 1
                offset += len(raw)
                link = hashlib.sha256(link + raw).digest()
                with contextlib.suppress(ValueError):
                    event = json.loads(raw)
                    if isinstance(event, list) and len(event) == 3:
                        when, code, data = event
                        if isinstance(when, int | float) and isinstance(code, str) and isinstance(data, str):
                            t = float(when)
                            framer.event(code, data)
                expected = stops.get(line)
                if expected is not None:
                    if expected != link:
                        note = f"line {line} does not match its signed checkpoint: index stops before it"
                        break
                    f.write(framer.keyframe(t, line, offset, link))
                    count += 1
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BuildResult(count, line, note)


# --- reading and seeking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeekIndex:
    """The keyframes of one recording, in order of time (unverified until ``usable``)."""

    keyframes: tuple[Keyframe, ...]
    times: tuple[float, ...]

    @classmethod
    def load(cls, path: Path) -> SeekIndex:
        """The keyframes of ``path``; an empty index if it does not exist. Malformed lines skipped."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls((), ())
        frames: list[Keyframe] = []
        for raw in split_lines(data)[0][1:]:
            kf = parse_keyframe(raw)
            if kf is not None and (not frames or (kf.t >= frames[-1].t and kf.offset > frames[-1].offset)):
                frames.append(kf)
        return cls(tuple(frames), tuple(k.t for k in frames))

    def candidates(self, t: float) -> Iterator[Keyframe]:
        """Keyframes at or before ``t``, latest first."""
        i = bisect.bisect_right(self.times, t)
        for j in range(i - 1, -1, -1):
            yield self.keyframes[j]


def usable(
    kf: Keyframe, session_id: str, public_key: Ed25519PublicKey, cast_size: int, cast: BinaryIO
) -> bool:
    """Whether a keyframe may start playback: signed by ``public_key``, this session, a line start."""
    if kf.session_id != session_id or kf.offset > cast_size or kf.key != fingerprint(public_key):
        return False
    if not kf.verifies(public_key):
        return False
    cast.seek(kf.offset - 1)
    return cast.read(1) == b"\n"


@dataclass(frozen=True, slots=True)
class SeekStart:
    """Where playback from a time starts: the prefix to send (header + snapshot) and the offset."""

    prefix: bytes
    offset: int
    base_t: float  # times after the prefix are shifted by -base_t
    keyframe: Keyframe | None


def _shift_line(raw: bytes, base_t: float) -> bytes | None:
    """``[t, code, data]`` with ``t - base_t`` (only the time is parsed, not the data)."""
    if not raw.startswith(b"["):
        return None
    comma = raw.find(b",", 1, 40)
    if comma < 0:
        return None
    try:
        t = float(raw[1:comma])
    except ValueError:
        return None
    return b"[" + repr(round(max(t - base_t, 0.0), 6)).encode() + raw[comma:]


def _time_of(raw: bytes) -> float | None:
    comma = raw.find(b",", 1, 40)
    if not raw.startswith(b"[") or comma < 0:
        return None
    try:
        return float(raw[1:comma])
    except ValueError:
        return None


class CastSeeker:
    """Playback of one ``.cast`` from a time, through its seek index (file I/O: a worker thread)."""

    def __init__(self, cast_path: Path, public_key: Ed25519PublicKey | None, index: SeekIndex) -> None:
        self.cast_path = cast_path
        self.public_key = public_key
        self.index = index
        self.session_id = cast_path.name.removesuffix(".cast")

    def start(self, t: float) -> SeekStart:
        """The keyframe to start from for time ``t`` (or the start of the recording)."""
        with self.cast_path.open("rb") as f:
            header_line = f.readline(1024 * 1024)
            size = os.fstat(f.fileno()).st_size
            chosen: Keyframe | None = None
            if self.public_key is not None and t > 0:
                for kf in self.index.candidates(t):
                    if usable(kf, self.session_id, self.public_key, size, f):
                        chosen = kf
                        break
        if chosen is None:
            return SeekStart(header_line, len(header_line), 0.0, None)
        try:
            header = json.loads(header_line)
        except ValueError:
            header = {}
        if not isinstance(header, dict):
            header = {}
        header["width"], header["height"] = chosen.cols, chosen.rows
        header["rcgate_seek"] = {"from": chosen.t, "line": chosen.line, "offset": chosen.offset}
        prefix = (
            json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
            + b"\n"
            + json.dumps([0.0, "o", chosen.screen], ensure_ascii=False).encode()
            + b"\n"
        )
        return SeekStart(prefix, chosen.offset, chosen.t, chosen)

    def chunks(
        self, start: SeekStart, until: float | None = None, chunk: int = READ_CHUNK
    ) -> Generator[bytes, None, None]:
        """The prefix, then the event lines from ``start.offset`` with shifted times, whole lines only.

        ``until``: stop after the first event later than this (seconds from the recording's start).
        """
        yield start.prefix
        with self.cast_path.open("rb") as f:
            f.seek(start.offset)
            carry = b""
            while True:
                block = f.read(chunk)
                if not block:
                    return
                block = carry + block
                end = block.rfind(b"\n") + 1
                carry = block[end:]
                lines = split_lines(block[:end])[0]
                out: list[bytes] = []
                stop = False
                for raw in lines:
                    if until is not None:
                        when = _time_of(raw)
                        if when is not None and when > until:
                            stop = True
                            break
                    if start.base_t:
                        shifted = _shift_line(raw, start.base_t)
                        if shifted is not None:
                            out.append(shifted)
                    else:
                        out.append(raw)
                if out:
                    yield b"".join(out)
                if stop:
                    return
