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

Tamper evidence (``gateway.recording.chain``). Beside ``<id>.cast`` the recorder writes three
sidecars: ``<id>.chain`` (signed checkpoints of the cast's hash chain), ``<id>.audit.jsonl``
(the session's audit stream: a header line, every marker with its wall time, and the audit
events handed to ``audit()``) and ``<id>.audit.chain``. The worker thread hashes each line
from the very buffer it writes (no second pass), and after a batch is on disk appends a
checkpoint when 10 s have passed since the last one (``CHECKPOINT_INTERVAL_S``; the writer
wakes for it even when the session is quiet) or 256 KiB are unsigned (``CHECKPOINT_BYTES``);
``close`` writes the final checkpoints with the end reason. A checkpoint is written only after
the lines it covers, so a crash leaves at worst an unsigned tail. A failed sidecar write fails
closed like a failed cast write; after a failure nothing more is written (no final checkpoint:
the recording verifies as "unsigned tail").

The seek index (``gateway.recording.seekindex``, ``<id>.seek``): after each batch the output
and resize events go to a ``SeekWriter`` (a queue and a thread with a terminal emulator), and
each cast checkpoint asks it for a signed keyframe at that line. It is not evidence: if it
cannot be created or falls behind it stops, and the recording goes on. ``close`` waits for it
at most ``SEEK_CLOSE_WAIT_S``.

Every file is opened through an injectable ``FileOpener`` (the default creates it with mode
0600, never overwriting): ``opener`` for ``<root>/<yyyy>/<mm>/<session-id>.cast``,
``sidecar_opener`` for the sidecars, so tests can inject write errors into either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import Clock
from gateway.core.errors import Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.core.models import AuditEvent
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
from gateway.recording.chain import STREAM_AUDIT, STREAM_CAST, ChainWriter, Ed25519Signer, Signer
from gateway.recording.seekindex import Keyframer, SeekWriter, seek_path_of

log = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.2  # a batch forms for at most this long: the file is < 1 s behind
BATCH_BYTES = 256 * 1024  # 256 KiB pending: write now, do not wait for the window
COALESCE_AFTER_EVENTS = 4096  # pending events beyond which consecutive output is merged
DRAIN_BYTES = 8 * 1024 * 1024  # 8 MiB unwritten: ``drain`` waits (the connector slows down)
MAX_BACKLOG_BYTES = 64 * 1024 * 1024  # 64 MiB unwritten despite drain: the disk is stuck, fail closed
STALL_TIMEOUT_S = 30.0  # one batch write taking longer: the disk hangs (e.g. a dead NFS), fail closed
CHECKPOINT_INTERVAL_S = 10.0  # unsigned lines get a signed checkpoint at least this often
CHECKPOINT_BYTES = 256 * 1024  # ... or as soon as this much of a stream is unsigned
SEEK_CLOSE_WAIT_S = 5.0  # close() waits this long at most for the seek index to be written
AUDIT_FORMAT_VERSION = 1
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


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
    if not SAFE_ID.fullmatch(session_id):
        raise ValueError(f"unsafe session id for a file name: {session_id!r}")
    t = time.gmtime(started_at)
    return root / f"{t.tm_year:04d}" / f"{t.tm_mon:02d}" / f"{session_id}.cast"


class Sidecars(NamedTuple):
    """The files beside ``<id>.cast``."""

    chain: Path
    audit: Path
    audit_chain: Path


def sidecars_of(cast_path: Path) -> Sidecars:
    """``<id>.chain``, ``<id>.audit.jsonl`` and ``<id>.audit.chain`` next to ``<id>.cast``."""
    stem = cast_path.name.removesuffix(".cast")
    d = cast_path.parent
    return Sidecars(d / f"{stem}.chain", d / f"{stem}.audit.jsonl", d / f"{stem}.audit.chain")


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


class _Files:
    """The four open files of one recording (touched only under the recorder's ``_io_lock``)."""

    __slots__ = ("audit", "audit_chain", "cast", "chain")

    def __init__(
        self, cast: RecordingFile, chain: RecordingFile, audit: RecordingFile, audit_chain: RecordingFile
    ) -> None:
        self.cast = cast
        self.chain = chain
        self.audit = audit
        self.audit_chain = audit_chain

    def close(self) -> None:
        errors: list[BaseException] = []
        for f in (self.cast, self.chain, self.audit, self.audit_chain):
            try:
                f.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def _audit_line(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


class Recorder:
    """One open recording (see the module docstring). Implements ``sessions.ports.SessionRecorder``."""

    def __init__(
        self,
        path: Path,
        files: _Files,
        chains: tuple[ChainWriter, ChainWriter],
        *,
        clock: Clock,
        start: float,
        started_wall: float,
        on_failure: Callable[[str], None],
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        seek: SeekWriter | None = None,
    ) -> None:
        self.path = path
        self.seek = seek
        self._stall_timeout_s = stall_timeout_s
        self._files: _Files | None = files
        self._cast_chain, self._audit_chain = chains
        self._clock = clock
        self._on_failure = on_failure
        self._batch_window_s = batch_window_s
        self._max_backlog = max_backlog_bytes
        self._checkpoint_interval_s = checkpoint_interval_s
        self._start = start
        self._started_wall = started_wall
        self._last_t = 0.0
        self._pending: list[_Pending] = []
        self._pending_audit: list[tuple[float, AuditEvent]] = []
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._finished = asyncio.Event()
        self._writable = asyncio.Event()  # set while the backlog is under DRAIN_BYTES
        self._writable.set()
        self._started = False
        self._closing = False
        self._final_written = False
        self._end: tuple[float, str, str] | None = None  # time, end marker, end reason
        self._failure: str | None = None
        self._io_lock = threading.Lock()  # the files are touched by worker threads, one at a time
        self._flags = threading.Lock()  # guards _writing/_abandoned between loop and worker
        self._writing = False
        self._abandoned = False
        self._out = TextStream()
        self._in = TextStream()
        # Checkpoint timing: written by the worker thread, read by the loop between writes.
        self._last_checkpoint_at = start
        self._unsigned = False

    @classmethod
    async def open(
        cls,
        path: Path,
        header: Header,
        *,
        clock: Clock,
        on_failure: Callable[[str], None],
        signer: Signer,
        started_wall: float,
        opener: FileOpener = open_recording_file,
        sidecar_opener: FileOpener = open_recording_file,
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        seek_index: bool = True,
    ) -> Recorder:
        """Create the files, write the headers and the first checkpoints (in a worker thread).

        ``seek_index``: write the seek index while recording (else it is built afterwards).

        ``Unavailable`` if any file cannot be created or written.
        """
        session_id = header.rcgate.session_id if header.rcgate is not None else path.stem
        cast_chain = ChainWriter(session_id, signer, STREAM_CAST)
        audit_chain = ChainWriter(session_id, signer, STREAM_AUDIT)
        audit_header = {
            "rcgate_audit": AUDIT_FORMAT_VERSION,
            "session_id": session_id,
            "cast": path.name,
            "started": round(started_wall, 3),
        }
        side = sidecars_of(path)

        def create() -> _Files:
            opened: list[RecordingFile] = []
            try:
                for p, open_ in ((path, opener), *((q, sidecar_opener) for q in side)):
                    opened.append(open_(p))
                files = _Files(*opened)
                for data, chain, file, chain_file in (
                    (encode_header(header).encode(), cast_chain, files.cast, files.chain),
                    (_audit_line(audit_header).encode(), audit_chain, files.audit, files.audit_chain),
                ):
                    chain.feed(data, 0.0)
                    _write_all(file, data)
                    file.flush()
                    _write_all(chain_file, chain.checkpoint(started_wall))
                    chain_file.flush()
            except BaseException:
                for f in opened:
                    with contextlib.suppress(Exception):
                        f.close()
                raise
            return files

        def create_seek() -> SeekWriter | None:
            """The seek index is not evidence: if it cannot be created, record without it."""
            try:
                file = sidecar_opener(seek_path_of(path))
            except OSError as exc:
                log.warning("recording %s: no seek index: %s", path, exc)
                return None
            return SeekWriter(file, Keyframer(session_id, signer, header.width, header.height), path.name)

        start = clock.now()
        try:
            files = await asyncio.to_thread(create)
        except OSError as exc:
            message = f"recording cannot be written: {exc.strerror or exc}"
            raise Unavailable(message, code="recording_failed") from exc
        seek = await asyncio.to_thread(create_seek) if seek_index else None
        return cls(
            path,
            files,
            (cast_chain, audit_chain),
            clock=clock,
            start=start,
            started_wall=started_wall,
            on_failure=on_failure,
            batch_window_s=batch_window_s,
            max_backlog_bytes=max_backlog_bytes,
            stall_timeout_s=stall_timeout_s,
            checkpoint_interval_s=checkpoint_interval_s,
            seek=seek,
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

    def audit(self, event: AuditEvent) -> None:
        """Add one of the session's audit events to its audit stream (never blocks)."""
        if self._closing or self._failure is not None:
            return
        self._pending_audit.append((self._elapsed(), event))
        self._wake.set()

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
                await self._wait_for_work()
                if self._wake.is_set() and not self._closing and not self._urgent.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._batch_window_s):
                            await self._urgent.wait()
                self._wake.clear()
                self._urgent.clear()
                batch, audits, final = self._take()
                now = self._clock.now()
                if batch or audits or final or self._checkpoint_due(now):
                    stalled = not await self._write(batch, audits, final, now)
                if final or stalled:
                    break
        finally:
            if not stalled:  # a stalled writer thread holds the files: leave them to the OS
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._close_file)
                if self.seek is not None:  # let the seek index catch up, for a while
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(self.seek.wait, SEEK_CLOSE_WAIT_S)
            self._finished.set()

    async def _wait_for_work(self) -> None:
        """Until something is pending, or until unsigned lines are due for a checkpoint."""
        if not self._unsigned:
            await self._wake.wait()
            return
        due_in = self._last_checkpoint_at + self._checkpoint_interval_s - self._clock.now()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(due_in, 0.0)):
                await self._wake.wait()

    def _checkpoint_due(self, now: float) -> bool:
        return self._unsigned and now - self._last_checkpoint_at >= self._checkpoint_interval_s

    async def _write(
        self, batch: list[_Pending], audits: list[tuple[float, AuditEvent]], final: bool, now: float
    ) -> bool:
        """Write one batch in a worker thread; False if the disk stalled (the write is abandoned)."""
        with self._flags:
            self._writing = True
        write = asyncio.ensure_future(asyncio.to_thread(self._write_job, batch, audits, final, now))
        try:
            async with asyncio.timeout(self._stall_timeout_s):
                await asyncio.shield(write)
        except TimeoutError:
            with self._flags:
                self._abandoned = self._writing  # the thread closes the files if it ever returns
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

    def _write_job(
        self, batch: list[_Pending], audits: list[tuple[float, AuditEvent]], final: bool, now: float
    ) -> None:
        """Worker thread: write, then close the files here if the loop gave up waiting."""
        try:
            self._write_batch(batch, audits, final, now)
        finally:
            with self._flags:
                self._writing = False
                abandoned = self._abandoned
            if abandoned:
                self._close_file()

    async def close(self, end_reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._end = (self._elapsed(), f"end: {end_reason}", end_reason)
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

    def _take(self) -> tuple[list[_Pending], list[tuple[float, AuditEvent]], bool]:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        audits, self._pending_audit = self._pending_audit, []
        self._writable.set()
        final = self._closing and not self._final_written
        self._final_written = self._final_written or final
        return batch, audits, final

    def _encode(
        self, batch: Sequence[_Pending], audits: Sequence[tuple[float, AuditEvent]], final: bool
    ) -> tuple[list[str], float, list[str], float, list[tuple[str, str]]]:
        """Cast lines and audit lines of a batch, each with the time of its last line, and the
        output and resize events for the seek index."""
        lines: list[str] = []
        screen: list[tuple[str, str]] = []
        audit_lines: list[str] = []
        t_cast = t_audit = 0.0
        wall = self._started_wall
        for ev in batch:
            data = ev.data
            if isinstance(data, str):
                lines.append(encode_event(ev.time, ev.code, data))
                if ev.code is EventCode.RESIZE:
                    screen.append(("r", data))
                if ev.code is EventCode.MARKER:
                    audit_lines.append(
                        _audit_line(
                            {
                                "t": round(ev.time, 6),
                                "ts": round(wall + ev.time, 3),
                                "type": "marker",
                                "label": data,
                            }
                        )
                    )
                    t_audit = ev.time
            else:
                text = (self._out if ev.code is EventCode.OUTPUT else self._in).feed(data)
                if not text:
                    continue
                lines.append(encode_event(ev.time, ev.code, text))
                if ev.code is EventCode.OUTPUT:
                    screen.append(("o", text))
            t_cast = ev.time
        for t, event in audits:
            record = event.model_dump(mode="json", exclude={"seq", "subject"}, exclude_none=True)
            audit_lines.append(_audit_line({"t": round(t, 6), **record}))
            t_audit = max(t_audit, t)
        if final and self._end is not None:
            end_time, label, _ = self._end
            for stream, code in ((self._out, EventCode.OUTPUT), (self._in, EventCode.INPUT)):
                tail = stream.finish()
                if tail:
                    lines.append(encode_event(end_time, code, tail))
                    if code is EventCode.OUTPUT:
                        screen.append(("o", tail))
            lines.append(encode_event(end_time, EventCode.MARKER, label))
            audit_lines.append(
                _audit_line(
                    {
                        "t": round(end_time, 6),
                        "ts": round(wall + end_time, 3),
                        "type": "marker",
                        "label": label,
                    }
                )
            )
            t_cast = t_audit = end_time
        return lines, t_cast, audit_lines, t_audit, screen

    def _write_batch(
        self,
        batch: Sequence[_Pending],
        audits: Sequence[tuple[float, AuditEvent]],
        final: bool,
        now: float,
    ) -> None:
        """Encode, hash and write (worker thread): only this thread touches decoders, chains, files."""
        lines, t_cast, audit_lines, t_audit, screen = self._encode(batch, audits, final)
        cast, audit = self._cast_chain, self._audit_chain
        with self._io_lock:
            files = self._files
            if files is None:
                raise OSError("recording file is closed")
            for text, t, chain, file in (
                (lines, t_cast, cast, files.cast),
                (audit_lines, t_audit, audit, files.audit),
            ):
                if text:
                    data = "".join(text).encode()
                    chain.feed(data, t)  # the very bytes written: no second pass over the file
                    _write_all(file, data)
                    file.flush()
            if self.seek is not None:
                self.seek.events(screen)
            self._unsigned = bool(cast.unsigned_lines or audit.unsigned_lines)
            big = max(cast.unsigned_bytes, audit.unsigned_bytes) >= CHECKPOINT_BYTES
            late = now - self._last_checkpoint_at >= self._checkpoint_interval_s
            if not (final or (self._unsigned and (big or late))):
                return
            ts = self._started_wall + (now - self._start)
            end = self._end[2] if final and self._end is not None else None
            for chain, file in ((cast, files.chain), (audit, files.audit_chain)):
                if final or chain.unsigned_lines:
                    keyframe = chain is cast and chain.unsigned_lines > 0 and self.seek is not None
                    t, line, offset, link = chain.t, chain.line, chain.offset, chain.link
                    _write_all(file, chain.checkpoint(ts, final=final, end=end))
                    file.flush()
                    if keyframe and self.seek is not None:  # on the line a signed checkpoint names
                        self.seek.keyframe(t, line, offset, link)
            self._last_checkpoint_at = now
            self._unsigned = False

    def _close_file(self) -> None:
        with self._io_lock:
            files, self._files = self._files, None
            if self.seek is not None:
                self.seek.close()  # its thread writes what is queued, then closes its file
            if files is not None:
                files.close()

    def _fail(self, reason: str) -> None:
        if self._failure is not None:
            return
        self._failure = reason
        self._pending, self._pending_audit, self._pending_bytes = [], [], 0
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
        sidecar_opener: FileOpener = open_recording_file,
        signing_key: Ed25519PrivateKey | None = None,
        env: Mapping[str, str] = DEFAULT_ENV,
        batch_window_s: float = BATCH_WINDOW_S,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        seek_index: bool = True,
    ) -> None:
        """``signing_key``: the gateway's recording key (``keys.load_or_create_signing_key``).
        ``seek_index``: each recorder writes its seek index while recording.

        Without one, an ephemeral key signs this process's recordings (tests, benchmarks): they
        verify only with ``--pubkey`` of that key, which is gone when the process exits.
        """
        if signing_key is None:
            log.warning("recordings are signed with an ephemeral key: pass the gateway's recording key")
            signing_key = Ed25519PrivateKey.generate()
        self.signer = Ed25519Signer(signing_key)
        self._sidecar_opener = sidecar_opener
        self._checkpoint_interval_s = checkpoint_interval_s
        self._seek_index = seek_index
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
            signer=self.signer,
            started_wall=started,
            opener=self._opener,
            sidecar_opener=self._sidecar_opener,
            batch_window_s=self._batch_window_s,
            max_backlog_bytes=self._max_backlog,
            stall_timeout_s=self._stall_timeout_s,
            checkpoint_interval_s=self._checkpoint_interval_s,
            seek_index=self._seek_index,
        )
