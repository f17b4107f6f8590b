"""The recorder: one session's asciicast v2 file, written from the first byte, off the event loop.

Theory of operation
-------------------
The broker calls ``output``/``input``/``resize``/``marker`` on the event loop; each call only
stamps the event with the injected monotonic clock and appends it to a pending list (no
encoding, no I/O). ``run()`` is the writer loop, run as a task beside the broker: it waits for
pending events, lets a batch form for at most ``batch_window_s`` (cut short when the batch is
big or the recording is closing), then encodes and writes the batch in a worker thread
(``asyncio.to_thread``) as one ``write`` of many lines. So the file is at most about
``batch_window_s`` (< 1 s) behind, there is no fsync per line, and a slow disk never blocks
the loop.

Output is never dropped. If the writer falls behind, consecutive output events are merged
(``COALESCE_AFTER_EVENTS``), which only loses timing detail inside the backlog, and ``drain()``
waits while more than ``DRAIN_BYTES`` are unwritten: the broker passes that on to the
connector (flow control), so the session runs at the speed of its recording. A backlog beyond
``max_backlog_bytes`` means the disk is stuck (or the connector ignores flow control): that
is a failure.

Failure (an ``OSError`` from the file, a write that hangs for ``stall_timeout_s``, or a
backlog over the limit) is reported once through
``on_failure(reason)`` and ``failed`` becomes True; nothing more is written. The broker ends
remote control on it (PRODUCT.md "Recording": fail closed).

``close(end_reason)`` writes what is pending, the tail of any half-received UTF-8 character,
and the end marker ``m "end: <reason>"``, then closes the file.

The file is opened through an injectable ``FileOpener`` (the default creates
``<root>/<yyyy>/<mm>/<session-id>.cast`` with mode 0600, never overwriting), so tests can
inject write errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from gateway.core.clock import Clock
from gateway.core.errors import Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.recording.asciicast import (
    DEFAULT_ENV,
    EventCode,
    Header,
    RcgateMeta,
    TextStream,
    encode_event,
    encode_header,
    format_resize,
    title_for,
)

log = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.2  # a batch forms for at most this long: the file is < 1 s behind
BATCH_BYTES = 256 * 1024  # 256 KiB pending: write now, do not wait for the window
COALESCE_AFTER_EVENTS = 4096  # pending events beyond which consecutive output is merged
DRAIN_BYTES = 8 * 1024 * 1024  # 8 MiB unwritten: ``drain`` waits (the connector slows down)
MAX_BACKLOG_BYTES = 64 * 1024 * 1024  # 64 MiB unwritten despite drain: the disk is stuck, fail closed
STALL_TIMEOUT_S = 30.0  # one batch write taking longer: the disk hangs (e.g. a dead NFS), fail closed
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class RecordingFile(Protocol):
    """What the recorder needs from a file (a ``FileIO`` opened ``"wb"`` fits)."""

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


FileOpener = Callable[[Path], RecordingFile]


def open_recording_file(path: Path) -> RecordingFile:
    """Create ``path`` (and its folders) for writing: owner-only, never over an existing file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    return open(fd, "wb", buffering=0)  # the recorder owns and closes it


def recording_path(root: Path, session_id: SessionId, started_at: float) -> Path:
    """``<root>/<yyyy>/<mm>/<session-id>.cast``, by the UTC month the session started."""
    if not _SAFE_ID.fullmatch(session_id):
        raise ValueError(f"unsafe session id for a file name: {session_id!r}")
    t = time.gmtime(started_at)
    return root / f"{t.tm_year:04d}" / f"{t.tm_mon:02d}" / f"{session_id}.cast"


def _write_all(file: RecordingFile, data: bytes) -> None:
    while data:
        written = file.write(data)
        if not written:
            raise OSError("recording file accepted no bytes")
        data = data[written:]  # a short write is rare on a regular file: copying is fine


def _retrieve(future: asyncio.Future[None]) -> None:
    """Consume the outcome of an abandoned write so that it is not reported as never retrieved."""
    if not future.cancelled():
        future.exception()


class _Pending:
    __slots__ = ("code", "data", "time")

    def __init__(self, t: float, code: EventCode, data: bytes | bytearray | str) -> None:
        self.time = t
        self.code = code
        self.data = data


class Recorder:
    """One open recording (see the module docstring). Implements ``sessions.ports.SessionRecorder``."""

    def __init__(
        self,
        path: Path,
        file: RecordingFile,
        *,
        clock: Clock,
        on_failure: Callable[[str], None],
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.path = path
        self._stall_timeout_s = stall_timeout_s
        self._file: RecordingFile | None = file
        self._clock = clock
        self._on_failure = on_failure
        self._batch_window_s = batch_window_s
        self._max_backlog = max_backlog_bytes
        self._start = clock.now()
        self._last_t = 0.0
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._finished = asyncio.Event()
        self._writable = asyncio.Event()  # set while the backlog is under DRAIN_BYTES
        self._writable.set()
        self._started = False
        self._closing = False
        self._final_written = False
        self._end: tuple[float, str] | None = None
        self._failure: str | None = None
        self._io_lock = threading.Lock()  # the file is touched by worker threads, one at a time
        self._flags = threading.Lock()  # guards _writing/_abandoned between loop and worker
        self._writing = False
        self._abandoned = False
        self._out = TextStream()
        self._in = TextStream()

    @classmethod
    async def open(
        cls,
        path: Path,
        header: Header,
        *,
        clock: Clock,
        on_failure: Callable[[str], None],
        opener: FileOpener = open_recording_file,
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> Recorder:
        """Create the file and write its header (in a worker thread); ``Unavailable`` if it cannot."""

        def create() -> RecordingFile:
            file = opener(path)
            try:
                _write_all(file, encode_header(header).encode())
                file.flush()
            except BaseException:
                file.close()
                raise
            return file

        try:
            file = await asyncio.to_thread(create)
        except OSError as exc:
            message = f"recording cannot be written: {exc.strerror or exc}"
            raise Unavailable(message, code="recording_failed") from exc
        return cls(
            path,
            file,
            clock=clock,
            on_failure=on_failure,
            batch_window_s=batch_window_s,
            max_backlog_bytes=max_backlog_bytes,
            stall_timeout_s=stall_timeout_s,
        )

    # --- SessionRecorder -----------------------------------------------------------------

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def failure(self) -> str | None:
        return self._failure

    def output(self, data: bytes) -> None:
        self._push(EventCode.OUTPUT, data)

    def input(self, data: bytes) -> None:
        self._push(EventCode.INPUT, data)

    def resize(self, cols: int, rows: int) -> None:
        self._push(EventCode.RESIZE, format_resize(cols, rows))

    def marker(self, label: str) -> None:
        self._push(EventCode.MARKER, label)

    async def drain(self) -> None:
        while not self._writable.is_set():
            await self._writable.wait()

    async def run(self) -> None:
        if self._started:  # close() ran it already, or a second caller: wait for the one run
            await self._finished.wait()
            return
        self._started = True
        stalled = False
        try:
            while self._failure is None:
                await self._wake.wait()
                if not self._closing and not self._urgent.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._batch_window_s):
                            await self._urgent.wait()
                self._wake.clear()
                self._urgent.clear()
                batch, final = self._take()
                if batch or final:
                    stalled = not await self._write(batch, final)
                if final or stalled:
                    break
        finally:
            if not stalled:  # a stalled writer thread holds the file: leave it to the OS
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._close_file)
            self._finished.set()

    async def _write(self, batch: list[_Pending], final: bool) -> bool:
        """Write one batch in a worker thread; False if the disk stalled (the write is abandoned)."""
        with self._flags:
            self._writing = True
        write = asyncio.ensure_future(asyncio.to_thread(self._write_job, batch, final))
        try:
            async with asyncio.timeout(self._stall_timeout_s):
                await asyncio.shield(write)
        except TimeoutError:
            with self._flags:
                self._abandoned = self._writing  # the thread closes the file if it ever returns
            if self._abandoned:
                write.add_done_callback(_retrieve)
                self._fail(f"recording failed: a write took over {self._stall_timeout_s:g} s")
                return False
            return await self._write_outcome(write)
        except Exception as exc:  # any failure to write fails closed
            self._fail(f"recording failed: {exc}")
        return True

    async def _write_outcome(self, write: asyncio.Future[None]) -> bool:
        try:
            await write
        except Exception as exc:
            self._fail(f"recording failed: {exc}")
        return True

    def _write_job(self, batch: list[_Pending], final: bool) -> None:
        """Worker thread: write, then close the file here if the loop gave up waiting."""
        try:
            self._write_batch(batch, final)
        finally:
            with self._flags:
                self._writing = False
                abandoned = self._abandoned
            if abandoned:
                self._close_file()

    async def close(self, end_reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._end = (self._elapsed(), f"end: {end_reason}")
            self._wake.set()
            self._urgent.set()
        await self.run()  # returns when the writer loop (started here if it was not yet) is done

    # --- internals -----------------------------------------------------------------------

    def _elapsed(self) -> float:
        self._last_t = max(self._clock.now() - self._start, self._last_t)
        return self._last_t

    def _push(self, code: EventCode, data: bytes | str) -> None:
        if self._closing or self._failure is not None:
            return
        t = self._elapsed()
        self._pending_bytes += len(data)
        if self._pending_bytes > self._max_backlog:
            self._fail(f"recording failed: over {self._max_backlog} bytes unwritten, the disk is too slow")
            return
        pending = self._pending
        last = pending[-1] if pending else None
        if (
            code is EventCode.OUTPUT
            and len(pending) >= COALESCE_AFTER_EVENTS
            and last is not None
            and last.code is EventCode.OUTPUT
        ):
            if not isinstance(last.data, bytearray):
                last.data = bytearray(last.data.encode() if isinstance(last.data, str) else last.data)
            last.data += data if isinstance(data, bytes) else data.encode()
        else:
            pending.append(_Pending(t, code, data))
        self._wake.set()
        if self._pending_bytes >= BATCH_BYTES:
            self._urgent.set()
            if self._pending_bytes > DRAIN_BYTES:
                self._writable.clear()

    def _take(self) -> tuple[list[_Pending], bool]:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._writable.set()
        final = self._closing and not self._final_written
        self._final_written = self._final_written or final
        return batch, final

    def _write_batch(self, batch: Sequence[_Pending], final: bool) -> None:
        """Encode and write (worker thread): only this thread touches the decoders and file."""
        lines: list[str] = []
        for ev in batch:
            data = ev.data
            if isinstance(data, str):
                lines.append(encode_event(ev.time, ev.code, data))
                continue
            text = (self._out if ev.code is EventCode.OUTPUT else self._in).feed(data)
            if text:
                lines.append(encode_event(ev.time, ev.code, text))
        if final and self._end is not None:
            end_time, label = self._end
            for stream, code in ((self._out, EventCode.OUTPUT), (self._in, EventCode.INPUT)):
                tail = stream.finish()
                if tail:
                    lines.append(encode_event(end_time, code, tail))
            lines.append(encode_event(end_time, EventCode.MARKER, label))
        if not lines:
            return
        with self._io_lock:
            if self._file is None:
                raise OSError("recording file is closed")
            _write_all(self._file, "".join(lines).encode())
            self._file.flush()

    def _close_file(self) -> None:
        with self._io_lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()

    def _fail(self, reason: str) -> None:
        if self._failure is not None:
            return
        self._failure = reason
        self._pending, self._pending_bytes = [], 0
        self._writable.set()
        log.error("recording %s failed: %s", self.path, reason)
        self._wake.set()
        self._urgent.set()
        try:
            self._on_failure(reason)
        except Exception:
            log.exception("recording failure callback raised")


class SessionDescription(Protocol):
    """What a recording's header needs to know about its session (``SessionMeta`` fits)."""

    @property
    def owner_id(self) -> UserId: ...

    @property
    def owner_name(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def cwd(self) -> str: ...

    @property
    def command(self) -> Sequence[str]: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def cols(self) -> int: ...

    @property
    def rows(self) -> int: ...


class _MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class _WallClock:
    def now(self) -> float:
        return time.time()


class RecorderFactory:
    """Opens one ``Recorder`` per session under ``root``; fits ``sessions.ports.RecorderFactory``."""

    def __init__(
        self,
        root: Path,
        *,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        opener: FileOpener = open_recording_file,
        env: Mapping[str, str] = DEFAULT_ENV,
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.root = root
        self._stall_timeout_s = stall_timeout_s
        self._clock = clock or _MonotonicClock()
        self._wall = wall_clock or _WallClock()
        self._opener = opener
        self._env = dict(env)
        self._batch_window_s = batch_window_s
        self._max_backlog = max_backlog_bytes

    async def __call__(
        self, session_id: SessionId, meta: SessionDescription, on_failure: Callable[[str], None]
    ) -> Recorder:
        started = self._wall.now()
        width, height = (meta.cols, meta.rows) if meta.cols >= 1 and meta.rows >= 1 else (80, 24)
        header = Header(
            width=width,
            height=height,
            timestamp=int(started),
            title=title_for(meta.owner_name, meta.host, meta.command),
            env=dict(self._env),
            rcgate=RcgateMeta(
                session_id=session_id,
                owner_id=meta.owner_id,
                owner_name=meta.owner_name,
                host=meta.host,
                cwd=meta.cwd,
                command=tuple(meta.command),
                labels=dict(meta.labels),
            ),
        )
        return await Recorder.open(
            recording_path(self.root, session_id, started),
            header,
            clock=self._clock,
            on_failure=on_failure,
            opener=self._opener,
            batch_window_s=self._batch_window_s,
            max_backlog_bytes=self._max_backlog,
            stall_timeout_s=self._stall_timeout_s,
        )
