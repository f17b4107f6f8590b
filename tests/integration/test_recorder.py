"""The recorder on a real file system: timing, batching off the loop, slow disks, failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.core.clock import FixedClock
from gateway.core.errors import Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.recording.asciicast import EventCode, parse_cast
from gateway.recording.recorder import (
    COALESCE_AFTER_EVENTS,
    DRAIN_BYTES,
    Recorder,
    RecorderFactory,
    RecordingFile,
    open_recording_file,
    recording_path,
)
from gateway.sessions.ports import SessionMeta

META = SessionMeta(
    owner_id=UserId("usr_o"), owner_name="o", host="h", cwd="/", command=("sh",), cols=90, rows=20
)
SID = SessionId("ses_rec")


class GatedFile:
    """A file whose writes wait for ``gate`` (a stalled disk) and count the write calls."""

    def __init__(self, inner: RecordingFile) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.writes = 0

    def write(self, data: bytes, /) -> int | None:
        self.gate.wait(timeout=30)
        self.writes += 1
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class Opened:
    def __init__(self) -> None:
        self.files: list[GatedFile] = []

    def __call__(self, path: Path) -> RecordingFile:
        self.files.append(GatedFile(open_recording_file(path)))
        return self.files[-1]


@pytest_asyncio.fixture
async def opened() -> AsyncIterator[Opened]:
    o = Opened()
    yield o
    for f in o.files:
        f.gate.set()  # never leave a worker thread parked


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def test_header_and_event_times_come_from_the_injected_clocks(
    tmp_path: Path, clock: FixedClock
) -> None:
    mono = FixedClock(50.0)
    recorder = await RecorderFactory(tmp_path, clock=mono, wall_clock=clock)(SID, META, lambda _: None)
    assert recorder.path == tmp_path / "2026" / "01" / "ses_rec.cast"
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"a")
    mono.advance(1.5)
    recorder.marker("half")
    mono.advance(0.25)
    recorder.resize(100, 30)
    await recorder.close("done")
    await runner
    cast = parse_cast(text_of(recorder.path).splitlines())
    assert (cast.header.width, cast.header.height, cast.header.timestamp) == (90, 20, int(clock.now()))
    assert [(e.time, e.code, e.data) for e in cast.events] == [
        (0.0, EventCode.OUTPUT, "a"),
        (1.5, EventCode.MARKER, "half"),
        (1.75, EventCode.RESIZE, "100x30"),
        (1.75, EventCode.MARKER, "end: done"),
    ]


async def test_a_live_recording_is_on_disk_within_a_second(tmp_path: Path) -> None:
    recorder = await RecorderFactory(tmp_path)(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    try:
        recorder.output(b"visible soon")
        async with asyncio.timeout(1.0):
            while "visible soon" not in text_of(recorder.path):
                await asyncio.sleep(0.01)
    finally:
        await recorder.close("done")
        await runner


async def test_a_stalled_disk_coalesces_output_and_loses_nothing(tmp_path: Path, opened: Opened) -> None:
    recorder = await RecorderFactory(tmp_path, opener=opened, batch_window_s=0.01)(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    (file,) = opened.files
    file.gate.clear()
    recorder.output(b"first ")
    async with asyncio.timeout(5):  # wait until the writer thread is parked on the stalled disk
        while recorder._pending:
            await asyncio.sleep(0.005)
    chunks = [b"%05d\n" % i for i in range(10_000)]
    for chunk in chunks:
        recorder.output(chunk)
    assert len(recorder._pending) <= COALESCE_AFTER_EVENTS + 1, (
        "a backlog is merged, not one object per write"
    )
    file.gate.set()
    await recorder.close("done")
    await runner
    cast = parse_cast(text_of(recorder.path).splitlines())
    assert cast.output_text() == "first " + b"".join(chunks).decode()
    assert not recorder.failed
    assert file.writes < 10, "events are written in batches, not a write per line"


async def test_a_backlog_over_the_limit_fails_closed(tmp_path: Path, opened: Opened) -> None:
    failures: list[str] = []
    factory = RecorderFactory(tmp_path, opener=opened, batch_window_s=0.01, max_backlog_bytes=1000)
    recorder = await factory(SID, META, failures.append)
    runner = asyncio.ensure_future(recorder.run())
    (file,) = opened.files
    file.gate.clear()
    for _ in range(20):
        recorder.output(b"x" * 100)
    assert recorder.failed
    assert len(failures) == 1 and "too slow" in failures[0]
    file.gate.set()
    await recorder.close("done")
    await runner


async def test_a_write_error_is_reported_once(tmp_path: Path) -> None:
    failures: list[str] = []

    class Broken:
        def write(self, data: bytes, /) -> int | None:
            if b', "o", ' in data:
                raise OSError(5, "Input/output error")
            return len(data)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    recorder = await RecorderFactory(tmp_path, opener=lambda _: Broken())(SID, META, failures.append)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"lost")
    async with asyncio.timeout(5):
        await runner
    recorder.output(b"ignored after the failure")
    await recorder.close("done")
    assert recorder.failed
    assert failures == ["recording failed: [Errno 5] Input/output error"]


async def test_an_existing_recording_is_never_overwritten(tmp_path: Path) -> None:
    factory = RecorderFactory(tmp_path)
    first = await factory(SID, META, lambda _: None)
    await first.close("done")
    with pytest.raises(Unavailable, match="recording cannot be written"):
        await factory(SID, META, lambda _: None)
    assert (first.path.stat().st_mode & 0o777) == 0o600


def test_recording_paths_are_by_utc_month_and_safe() -> None:
    assert recording_path(Path("/r"), SID, 1_767_225_599.0) == Path("/r/2025/12/ses_rec.cast")
    with pytest.raises(ValueError, match="unsafe"):
        recording_path(Path("/r"), SessionId("../../etc/passwd"), 0.0)


async def test_close_without_a_running_writer_still_writes_the_end(tmp_path: Path) -> None:
    recorder: Recorder = await RecorderFactory(tmp_path)(SID, META, lambda _: None)
    recorder.output(b"\xe2\x82")  # half a euro sign: flushed as U+FFFD at the end
    await recorder.close("never started")
    cast = parse_cast(text_of(recorder.path).splitlines())
    assert cast.output_text() == "\ufffd"
    assert cast.markers() == ["end: never started"]


async def test_a_hanging_disk_fails_closed(tmp_path: Path, opened: Opened) -> None:
    failures: list[str] = []
    factory = RecorderFactory(tmp_path, opener=opened, batch_window_s=0.01, stall_timeout_s=0.2)
    recorder = await factory(SID, META, failures.append)
    runner = asyncio.ensure_future(recorder.run())
    opened.files[0].gate.clear()  # every write now hangs, without an error
    recorder.output(b"stuck")
    async with asyncio.timeout(5):
        await runner
    assert failures == ["recording failed: a write took over 0.2 s"]
    async with asyncio.timeout(1):
        await recorder.close("done")


async def test_drain_holds_the_writer_back_while_the_disk_is_behind(tmp_path: Path, opened: Opened) -> None:
    recorder = await RecorderFactory(tmp_path, opener=opened, batch_window_s=0.01)(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    (file,) = opened.files
    file.gate.clear()
    recorder.output(b"first")
    async with asyncio.timeout(5):  # the writer thread is parked on the stalled disk
        while recorder._pending:
            await asyncio.sleep(0.005)
    block = b"y" * (1024 * 1024)
    for _ in range(DRAIN_BYTES // len(block) + 1):
        recorder.output(block)
    drain = asyncio.ensure_future(recorder.drain())
    await asyncio.sleep(0.05)
    assert not drain.done(), "over DRAIN_BYTES unwritten: drain waits"
    file.gate.set()
    async with asyncio.timeout(5):
        await drain
    await recorder.close("done")
    await runner
    assert not recorder.failed
