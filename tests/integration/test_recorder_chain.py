"""The recorder's tamper evidence on a real file system: sidecars, checkpoint timing, failures."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import FixedClock
from gateway.core.errors import Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.core.models import AuditEvent
from gateway.recording.chain import STREAM_AUDIT, Outcome, Report, verify
from gateway.recording.recorder import (
    CHECKPOINT_BYTES,
    Recorder,
    RecorderFactory,
    RecordingFile,
    open_recording_file,
    sidecars_of,
)
from gateway.sessions.ports import SessionMeta

META = SessionMeta(owner_id=UserId("usr_o"), owner_name="o", host="h", cwd="/", command=("sh",))
SID = SessionId("ses_chain")
KEY = Ed25519PrivateKey.generate()
ASCIINEMA = Path(sys.executable).parent / "asciinema"


def check(recorder: Recorder, stream: str = "cast") -> Report:
    side = sidecars_of(recorder.path)
    if stream == STREAM_AUDIT:
        return verify(side.audit.read_bytes(), side.audit_chain.read_bytes(), KEY.public_key(), stream=stream)
    return verify(recorder.path.read_bytes(), side.chain.read_bytes(), KEY.public_key())


def checkpoints(recorder: Recorder) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in sidecars_of(recorder.path).chain.read_bytes().splitlines()]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_closed_recording_and_its_audit_stream_verify_intact(tmp_path: Path) -> None:
    recorder = await RecorderFactory(tmp_path, signing_key=KEY)(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"$ make\r\n")
    recorder.marker("join bob (view_only)")
    joined = AuditEvent(ts=1.5, type="participant.joined", actor="usr_b", subject=SID, detail={"mode": "x"})
    recorder.audit(joined)
    recorder.input(b"q")
    await recorder.close("owner stopped sharing")
    await runner

    cast, audit = check(recorder), check(recorder, STREAM_AUDIT)
    assert cast.outcome is Outcome.INTACT and cast.end_reason == "owner stopped sharing"
    assert audit.outcome is Outcome.INTACT
    side = sidecars_of(recorder.path)
    records = [json.loads(ln) for ln in side.audit.read_text().splitlines()]
    assert records[0] == {
        "rcgate_audit": 1,
        "session_id": SID,
        "cast": "ses_chain.cast",
        "started": records[0]["started"],
    }
    assert [(r["type"], r.get("label") or r.get("actor")) for r in records[1:]] == [
        ("marker", "join bob (view_only)"),
        ("participant.joined", "usr_b"),
        ("marker", "end: owner stopped sharing"),
    ]
    for p in (recorder.path, *side):
        assert p.stat().st_mode & 0o777 == 0o600, p


async def test_checkpoints_come_every_interval_not_every_batch(tmp_path: Path) -> None:
    mono = FixedClock(100.0)
    factory = RecorderFactory(tmp_path, clock=mono, signing_key=KEY, batch_window_s=0.01)
    recorder = await factory(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    assert len(checkpoints(recorder)) == 1, "the header is signed as soon as the file exists"
    size = recorder.path.stat().st_size
    recorder.output(b"a")
    await until(lambda: recorder.path.stat().st_size > size)
    mono.advance(5)
    recorder.output(b"b")
    await until(lambda: b'"b"' in recorder.path.read_bytes())
    assert len(checkpoints(recorder)) == 1, "5 s after the last checkpoint: not yet"
    mono.advance(5)
    recorder.output(b"c")
    await until(lambda: len(checkpoints(recorder)) == 2)
    cp = checkpoints(recorder)[1]
    assert (cp["line"], cp["t"], cp["final"]) == (4, 10.0, False)
    report = check(recorder)
    assert report.outcome is Outcome.TRUNCATED_TAIL and report.tail_lines == 0, "live: signed so far"
    await recorder.close("done")
    await runner
    assert checkpoints(recorder)[-1]["final"] is True
    assert check(recorder).outcome is Outcome.INTACT


async def test_a_quiet_session_gets_its_checkpoint_without_new_output(tmp_path: Path) -> None:
    factory = RecorderFactory(tmp_path, signing_key=KEY, batch_window_s=0.01, checkpoint_interval_s=0.1)
    recorder = await factory(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"the last words before a long silence")
    await until(lambda: len(checkpoints(recorder)) == 2)
    assert check(recorder).tail_lines == 0
    await recorder.close("done")
    await runner


async def test_256_kib_unsigned_is_signed_at_once(tmp_path: Path) -> None:
    mono = FixedClock(100.0)
    factory = RecorderFactory(tmp_path, clock=mono, signing_key=KEY, batch_window_s=0.01)
    recorder = await factory(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    for _ in range(CHECKPOINT_BYTES // 4096 + 1):
        recorder.output(b"x" * 4096)
    await until(lambda: len(checkpoints(recorder)) == 2)
    await recorder.close("done")
    await runner
    assert check(recorder).outcome is Outcome.INTACT


async def test_a_recorder_that_never_closes_leaves_an_unsigned_tail(tmp_path: Path) -> None:
    factory = RecorderFactory(tmp_path, signing_key=KEY, batch_window_s=0.01)
    recorder = await factory(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"one\r\n")
    recorder.output(b"two\r\n")
    await until(lambda: b"two" in recorder.path.read_bytes())
    runner.cancel()  # the gateway dies: no final checkpoint
    with pytest.raises(asyncio.CancelledError):
        await runner
    report = check(recorder)
    assert report.outcome is Outcome.TRUNCATED_TAIL and report.exit_code == 2
    assert "unsigned tail of 2 lines" in report.message


class FailAfter:
    """A sidecar whose writes fail after ``ok`` successful ones (a disk that fills up)."""

    def __init__(self, inner: RecordingFile, ok: int) -> None:
        self.inner = inner
        self.ok = ok

    def write(self, data: bytes, /) -> int | None:
        if self.ok <= 0:
            raise OSError(28, "No space left on device")
        self.ok -= 1
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


async def test_a_chain_that_cannot_be_written_fails_closed(tmp_path: Path) -> None:
    failures: list[str] = []

    def opener(path: Path) -> RecordingFile:
        inner = open_recording_file(path)
        return FailAfter(inner, 1) if path.name.endswith(".chain") else inner

    factory = RecorderFactory(tmp_path, signing_key=KEY, sidecar_opener=opener, checkpoint_interval_s=0)
    recorder = await factory(SID, META, failures.append)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"this line cannot be signed")
    async with asyncio.timeout(5):
        await runner
    assert recorder.failed
    assert failures == ["recording failed: [Errno 28] No space left on device"]
    await recorder.close("done")
    assert check(recorder).outcome is Outcome.TRUNCATED_TAIL, "what was signed still verifies"


async def test_a_sidecar_that_cannot_be_created_refuses_the_recording(tmp_path: Path) -> None:
    def opener(path: Path) -> RecordingFile:
        if path.name.endswith(".audit.jsonl"):
            raise PermissionError(13, "Permission denied")
        return open_recording_file(path)

    with pytest.raises(Unavailable, match="Permission denied"):
        await RecorderFactory(tmp_path, signing_key=KEY, sidecar_opener=opener)(SID, META, lambda _: None)


async def test_the_real_asciinema_cat_reads_a_chained_recording(tmp_path: Path) -> None:
    factory = RecorderFactory(tmp_path, signing_key=KEY, batch_window_s=0.01, checkpoint_interval_s=0)
    recorder = await factory(SID, META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    chunks = [b"$ echo caf\xc3\xa9\r\n", b"caf\xc3\xa9\r\n", b"$ "]
    for chunk in chunks:  # one batch each, so one checkpoint each
        size = recorder.path.stat().st_size
        recorder.output(chunk)
        await until(lambda: recorder.path.stat().st_size > size)
    await recorder.close("done")
    await runner
    assert len(checkpoints(recorder)) >= 3, "several checkpoints were written beside it"
    proc = await asyncio.create_subprocess_exec(
        str(ASCIINEMA),
        "cat",
        str(recorder.path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out == b"".join(chunks)
    assert check(recorder).outcome is Outcome.INTACT
