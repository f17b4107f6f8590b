"""The sessions room for real: a Hub, brokers on the running loop, recordings on disk, asciinema.

The connector side is driven through ``ConnectorHandle`` (as the sshd adapter does) and the
participants through ``ParticipantStream`` (as the httpd and sshd viewers do). Waits are on
frames or deadline loops, never bare sleeps.
"""

from __future__ import annotations

import asyncio
import errno
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.core.audit import AuditType
from gateway.core.clock import Clock, FixedClock
from gateway.core.errors import Forbidden, NotFound, PayloadTooLarge, Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.core.models import AuditEvent
from gateway.core.modes import Mode
from gateway.recording.asciicast import Cast, EventCode, parse_cast
from gateway.recording.recorder import RecorderFactory, RecordingFile, open_recording_file
from gateway.sessions.broker import BrokerConfig
from gateway.sessions.hub import Hub
from gateway.sessions.ports import (
    ConnectorHandle,
    Control,
    Output,
    ParticipantStream,
    SessionMeta,
    StreamClosed,
)
from gateway.sessions.state import EndReason, Limits

OWNER = UserId("usr_owner")
META = SessionMeta(
    owner_id=OWNER,
    owner_name="owner",
    host="laptop",
    cwd="/src",
    command=("bash", "-l"),
    labels={"repo": "x"},
)
ASCIINEMA = Path(sys.executable).parent / "asciinema"
WAIT_S = 10.0


class FakeUplink:
    """The connector's side of the broker: what reached the PTY, and the end."""

    def __init__(self) -> None:
        self.inputs: list[bytes] = []
        self.ends: list[str] = []

    def send_input(self, data: bytes) -> None:
        self.inputs.append(data)

    def send_end(self, reason: str) -> None:
        self.ends.append(reason)


class MemoryAudit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append(self, event: AuditEvent) -> AuditEvent:
        stored = event.model_copy(update={"seq": len(self.events) + 1})
        self.events.append(stored)
        return stored

    async def events_(self) -> list[AuditEvent]:  # pragma: no cover - the port's reader is unused here
        return self.events

    async def events(  # type: ignore[override]
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> Sequence[AuditEvent]:
        return [e for e in self.events if e.seq > after_seq][:limit]

    def of(self, type_: str) -> list[AuditEvent]:
        return [e for e in self.events if e.type == type_]


class FailingFile:
    """A recording file whose writes fail once ``fail`` is set (a full disk)."""

    def __init__(self, inner: RecordingFile) -> None:
        self.inner = inner
        self.fail = False

    def write(self, data: bytes, /) -> int | None:
        if self.fail:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class World:
    """A running hub with its fakes and the recordings folder."""

    def __init__(self, hub: Hub, audit: MemoryAudit, root: Path, files: list[FailingFile]) -> None:
        self.hub = hub
        self.audit = audit
        self.root = root
        self.files = files

    async def share(self, meta: SessionMeta = META) -> tuple[ConnectorHandle, FakeUplink]:
        uplink = FakeUplink()
        return await self.hub.open_session(meta, uplink), uplink

    def recording(self, session_id: SessionId) -> Path:
        (path,) = self.root.glob(f"*/*/{session_id}.cast")
        return path

    def cast(self, session_id: SessionId) -> Cast:
        return parse_cast(self.recording(session_id).read_text(encoding="utf-8").splitlines())

    async def ended(self, session_id: SessionId) -> None:
        async with asyncio.timeout(WAIT_S):
            await self.hub.wait_closed(session_id)


MakeWorld = Callable[..., Awaitable[World]]


@pytest_asyncio.fixture
async def make_world(tmp_path: Path) -> AsyncIterator[MakeWorld]:
    hubs: list[Hub] = []

    async def make(*, limits: Limits | None = None, clock: Clock | None = None, **config: int) -> World:
        audit = MemoryAudit()
        root = tmp_path / f"recordings{len(hubs)}"
        files: list[FailingFile] = []

        def opener(path: Path) -> RecordingFile:
            files.append(FailingFile(open_recording_file(path)))
            return files[-1]

        recorders = RecorderFactory(root, clock=clock, opener=opener, batch_window_s=0.05)
        hub = Hub(
            recorders=recorders,
            audit=audit,
            config=BrokerConfig(limits=limits or Limits(), **config),  # type: ignore[arg-type]
            clock=clock,
        )
        await hub.start()
        hubs.append(hub)
        return World(hub, audit, root, files)

    yield make
    for hub in hubs:
        await hub.aclose()


async def until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll a condition with a deadline (the condition, not the sleep, is what is checked)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def read(stream: ParticipantStream, *, until_seq: int | None = None) -> tuple[bytes, list[Control]]:
    """Frames until ``until_seq`` bytes were seen (or the stream closes): output and controls."""
    data = bytearray()
    controls: list[Control] = []
    first_seq: int | None = None
    async with asyncio.timeout(WAIT_S):
        while True:
            if until_seq is not None and first_seq is not None and first_seq + len(data) >= until_seq:
                return bytes(data), controls
            frame = await stream.next()
            if isinstance(frame, Output):
                if first_seq is None:
                    first_seq = frame.seq
                assert frame.seq == first_seq + len(data), "output frames are contiguous"
                data += frame.data
            else:
                controls.append(frame)
                if frame.kind == "closed":
                    return bytes(data), controls


def kinds(controls: list[Control]) -> list[str]:
    return [c.kind for c in controls]


def closed(controls: list[Control]) -> Control:
    assert controls and controls[-1].kind == "closed", kinds(controls)
    return controls[-1]


# --- fan-out, scrollback, slow participants, resume ------------------------------------------------


async def test_output_fans_out_to_every_participant(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    streams = [
        await world.hub.attach(handle.session_id, UserId(f"u{i}"), f"p{i}", Mode.VIEW_ONLY) for i in range(3)
    ]
    chunks = [f"line {i}\r\n".encode() for i in range(50)]
    seq = 0
    for chunk in chunks:
        handle.output(seq, chunk)
        seq += len(chunk)
    for s in streams:
        data, controls = await read(s, until_seq=seq)
        assert data == b"".join(chunks), "every participant receives every byte, in order"
        assert controls[0].kind == "hello"
        assert "participants" in kinds(controls)
    assert handle.received == seq


async def test_a_joiner_gets_the_current_screen_at_once(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    handle.resize(120, 40)
    handle.output(0, b"\x1b[2J$ make test\r\nok\r\n$ ")
    screen = b"\x1b[2J$ make test\r\nok\r\n$ "
    await until(lambda: world.hub.session(handle.session_id).output_bytes == len(screen))
    stream = await world.hub.attach(handle.session_id, UserId("u"), "late", Mode.VIEW_ONLY)
    hello = await stream.next()
    assert isinstance(hello, Control) and hello.kind == "hello"
    assert (hello.message["cols"], hello.message["rows"], hello.message["seq"]) == (120, 40, 0)
    first = await stream.next()
    assert first == Output(0, screen)


async def test_control_frames_arrive_in_order_with_the_output(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    stream = await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY)
    handle.output(0, b"before")
    handle.resize(132, 50)
    handle.output(6, b"after")
    frames: list[Output | Control] = []
    async with asyncio.timeout(WAIT_S):
        while len([f for f in frames if isinstance(f, Output)]) < 2:
            frame = await stream.next()
            if isinstance(frame, Output) or frame.kind == "resize":
                frames.append(frame)
    resize = Control({"t": "resize", "cols": 132, "rows": 50})
    assert frames == [Output(0, b"before"), resize, Output(6, b"after")]


async def test_a_slow_participant_is_cut_off_while_others_receive_everything(make_world: MakeWorld) -> None:
    # Limits scaled down to the 2 MB this test sends (the shipped ones are 6 MiB lag, 8 MiB ring).
    world = await make_world(participant_lag_bytes=1024 * 1024, scrollback_bytes=2 * 1024 * 1024)
    handle, _ = await world.share()
    sid = handle.session_id
    fast = [await world.hub.attach(sid, UserId(f"f{i}"), f"fast{i}", Mode.VIEW_ONLY) for i in range(2)]
    slow = await world.hub.attach(sid, UserId("s"), "never-reads", Mode.VIEW_ONLY)
    readers = [asyncio.ensure_future(read(s, until_seq=2_000_000)) for s in fast]

    chunks = [f"{i:05d} ".encode().ljust(199, b".") + b"\n" for i in range(10_000)]  # 10,000 x 200 B
    seq = 0
    for chunk in chunks:  # the connector is never slowed: output() does not wait for anyone
        handle.output(seq, chunk)
        seq += len(chunk)
        await handle.drain()
    assert seq == 2_000_000

    for reader in readers:
        data, _ = await reader
        assert data == b"".join(chunks), "fast participants lose nothing beside a stalled one"
    _, controls = await read(slow)
    cut = closed(controls)
    assert cut.message["reason"] == "too slow"
    assert "output" not in kinds(controls)

    resumed = await world.hub.attach(sid, UserId("s"), "never-reads", Mode.VIEW_ONLY, resume_from=0)
    data, controls = await read(resumed, until_seq=seq)
    assert data == b"".join(chunks), "the cut-off participant resumes by seq without losing bytes"
    assert "lost" not in kinds(controls)
    left = [e for e in world.audit.events if e.type == AuditType.PARTICIPANT_LEFT]
    await until(
        lambda: any(e.detail.get("reason") == "too slow" for e in world.audit.of(AuditType.PARTICIPANT_LEFT))
    )
    assert len(left) <= 1


async def test_resume_by_seq_continues_where_the_participant_stopped(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    sid = handle.session_id
    handle.output(0, b"first half|")
    stream = await world.hub.attach(sid, UserId("u"), "p", Mode.VIEW_ONLY)
    data, _ = await read(stream, until_seq=11)
    stream.close()
    handle.output(11, b"second half")
    again = await world.hub.attach(sid, UserId("u"), "p", Mode.VIEW_ONLY, resume_from=len(data))
    rest, controls = await read(again, until_seq=22)
    assert rest == b"second half"
    assert kinds(controls)[0] == "hello" and controls[0].message["seq"] == 11


async def test_resume_from_bytes_that_left_the_ring_says_what_was_lost(make_world: MakeWorld) -> None:
    world = await make_world(scrollback_bytes=1024)
    handle, _ = await world.share()
    for i in range(4):
        handle.output(i * 1000, bytes([65 + i]) * 1000)
    await until(lambda: world.hub.session(handle.session_id).output_bytes == 4000)
    stream = await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY, resume_from=100)
    data, controls = await read(stream, until_seq=4000)
    lost = next(c for c in controls if c.kind == "lost")
    assert lost.message == {"t": "lost", "from": 100, "to": 4000 - 1024}
    assert data == b"C" * 24 + b"D" * 1000


# --- view-only input -------------------------------------------------------------------------


async def test_view_only_input_in_every_form_is_refused_counted_and_never_reaches_the_pty(
    make_world: MakeWorld, clock: FixedClock
) -> None:
    world = await make_world(clock=clock)
    handle, uplink = await world.share()
    sid = handle.session_id
    viewer = await world.hub.attach(sid, UserId("v"), "viewer", Mode.VIEW_ONLY)
    forms = [
        b"ls -la\r",  # typed text
        "héllo".encode(),  # text frame
        b"\xff\x00\x1b\x9b",  # binary frame, not UTF-8
        b"\x1b[200~rm -rf ~\r\x1b[201~",  # bracketed paste
        b"\x03",  # Ctrl-C
        b"\x04",  # Ctrl-D
        b"\x1b[A\x1b[B",  # arrow keys
        b"\r",  # Enter
    ]
    for data in forms:
        await viewer.send_input(data)
    for cols, rows in [(120, 40), (0, 0), (100_000, 100_000)]:
        await viewer.resize(cols, rows)
    with pytest.raises(PayloadTooLarge):
        await viewer.send_input(b"x" * (64 * 1024 + 1))
    for i in range(10_000):  # a flood of small messages
        await viewer.send_input(b"%d" % i)
    # Attaching is handled after every earlier event: a barrier.
    await world.hub.attach(sid, UserId("w"), "witness", Mode.VIEW_ONLY)

    refusals = len(forms) + 3 + 10_000
    assert world.hub.session(sid).refusals == refusals
    assert uplink.inputs == [], "no view-only input of any kind reaches the PTY"

    await world.hub.end(sid, "ended by an admin")
    _, controls = await read(viewer)
    refused = [c for c in controls if c.kind == "refused"]
    assert len(refused) == 1, "told once per burst, not 10,000 times"
    assert refused[0].message["reason"] == "view_only"

    await until(lambda: len(world.audit.of(AuditType.SESSION_ENDED)) == 1)
    audits = world.audit.of(AuditType.INPUT_REFUSED)
    assert len(audits) == 1, "audited once per burst"
    assert audits[0].actor == "v" and audits[0].detail["reason"] == "view_only"
    cast = world.cast(sid)
    assert [m for m in cast.markers() if m.startswith("refused")] == ["refused input from viewer (view_only)"]
    assert not [e for e in cast.events if e.code is EventCode.INPUT]


async def test_refusals_are_audited_again_in_a_new_burst(make_world: MakeWorld, clock: FixedClock) -> None:
    world = await make_world(clock=clock)
    handle, _ = await world.share()
    viewer = await world.hub.attach(handle.session_id, UserId("v"), "viewer", Mode.VIEW_ONLY)
    await viewer.send_input(b"a")
    await viewer.send_input(b"b")
    await until(lambda: world.hub.session(handle.session_id).refusals == 2)
    clock.advance(5.0)
    await viewer.send_input(b"c")
    await world.hub.end(handle.session_id, "done")
    await until(lambda: len(world.audit.of(AuditType.INPUT_REFUSED)) == 2)
    assert [e.detail["unaudited_since_last"] for e in world.audit.of(AuditType.INPUT_REFUSED)] == [0, 1]


async def test_privileged_input_reaches_the_pty_and_is_recorded(make_world: MakeWorld) -> None:
    world = await make_world(limits=Limits(grantable_modes=frozenset(Mode)))
    handle, uplink = await world.share()
    driver = await world.hub.attach(handle.session_id, UserId("d"), "driver", Mode.PRIVILEGED)
    await driver.send_input(b"echo hi\r")
    await until(lambda: uplink.inputs == [b"echo hi\r"])
    await world.hub.end(handle.session_id, "done")
    inputs = [e.data for e in world.cast(handle.session_id).events if e.code is EventCode.INPUT]
    assert inputs == ["echo hi\r"]


async def test_modes_that_cannot_be_granted_are_refused(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    with pytest.raises(Forbidden):
        await world.hub.attach(handle.session_id, UserId("d"), "driver", Mode.PRIVILEGED)
    assert world.hub.session(handle.session_id).participants == ()


# --- ending ----------------------------------------------------------------------------------


async def test_idle_timeout_ends_the_session_with_its_reason_and_an_end_marker(make_world: MakeWorld) -> None:
    world = await make_world(limits=Limits(idle_timeout_s=0.3))
    handle, uplink = await world.share()
    stream = await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY)
    handle.output(0, b"$ ")
    data, controls = await read(stream)
    assert data == b"$ "
    assert closed(controls).message["reason"] == EndReason.IDLE
    assert uplink.ends == [EndReason.IDLE]
    await world.ended(handle.session_id)
    cast = world.cast(handle.session_id)
    assert cast.events[-1].code is EventCode.MARKER
    assert cast.events[-1].data == "end: idle timeout"
    with pytest.raises(StreamClosed):
        await stream.next()
    with pytest.raises(NotFound):
        await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY)


async def test_maximum_length_with_an_injected_clock(make_world: MakeWorld, clock: FixedClock) -> None:
    world = await make_world(
        clock=clock,
        limits=Limits(max_duration_s=3600, idle_timeout_s=10_000, participant_idle_timeout_s=10_000),
    )
    handle, uplink = await world.share()
    stream = await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY)
    clock.advance(3599)
    world.hub.broker(handle.session_id).tick()
    handle.output(0, b"still here")
    await read(stream, until_seq=10)
    clock.advance(1)
    world.hub.broker(handle.session_id).tick()
    _, controls = await read(stream)
    assert closed(controls).message["reason"] == EndReason.MAX_DURATION
    assert uplink.ends == [EndReason.MAX_DURATION]


async def test_participant_idle_timeout_removes_only_that_participant(make_world: MakeWorld) -> None:
    world = await make_world(limits=Limits(participant_idle_timeout_s=0.2))
    handle, _ = await world.share()
    stream = await world.hub.attach(handle.session_id, UserId("u"), "p", Mode.VIEW_ONLY)
    _, controls = await read(stream)
    assert closed(controls).message["reason"] == "participant idle timeout"
    assert world.hub.session(handle.session_id).participants == ()


async def test_owner_exit_disconnects_everyone_after_the_last_output(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, uplink = await world.share()
    streams = [
        await world.hub.attach(handle.session_id, UserId(f"u{i}"), f"p{i}", Mode.VIEW_ONLY) for i in range(2)
    ]
    handle.output(0, b"logout\r\n")
    handle.exited(0)
    for s in streams:
        data, controls = await read(s)
        assert data == b"logout\r\n"
        assert closed(controls).message["reason"] == EndReason.OWNER_EXITED
    assert uplink.ends == [EndReason.OWNER_EXITED]
    await world.ended(handle.session_id)
    assert world.cast(handle.session_id).markers()[-2:] == [
        "owner's program exited with code 0",
        "end: owner's program exited",
    ]


async def test_admin_end_returns_once_the_recording_is_closed(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, uplink = await world.share()
    handle.output(0, b"x")
    await world.hub.end(handle.session_id, "ended by admin alice")
    assert world.cast(handle.session_id).markers()[-1] == "end: ended by admin alice"
    assert uplink.ends == ["ended by admin alice"]
    with pytest.raises(NotFound):
        await world.hub.end(handle.session_id, "again")


async def test_closing_the_hub_ends_every_session(make_world: MakeWorld) -> None:
    world = await make_world()
    handles = [(await world.share())[0] for _ in range(3)]
    await world.hub.aclose()
    for h in handles:
        assert world.cast(h.session_id).markers()[-1] == "end: gateway shutting down"
    assert world.hub.sessions() == []


# --- recording -------------------------------------------------------------------------------


async def test_the_real_asciinema_cli_prints_what_was_output(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    sid = handle.session_id
    viewer = await world.hub.attach(sid, UserId("v"), "viewer", Mode.VIEW_ONLY)
    chunks = [b"$ echo caf", b"\xc3", b"\xa9 \xf0\x9f", b"\x99\x82\r\n", b"caf\xc3\xa9 \xff ok\r\n$ "]
    seq = 0
    for chunk in chunks:
        handle.output(seq, chunk)
        seq += len(chunk)
    handle.resize(100, 30)
    await viewer.send_input(b"ignored")
    await read(viewer, until_seq=seq)
    await world.hub.end(sid, "owner stopped sharing")

    proc = await asyncio.create_subprocess_exec(
        str(ASCIINEMA),
        "cat",
        str(world.recording(sid)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out == b"".join(chunks).decode("utf-8", errors="replace").encode(), (
        "only the invalid byte is replaced"
    )

    cast = world.cast(sid)
    assert cast.header.rcgate is not None and cast.header.rcgate.session_id == sid
    assert cast.header.rcgate.command == ("bash", "-l") and cast.header.rcgate.labels == {"repo": "x"}
    codes = {e.code for e in cast.events}
    assert codes == {EventCode.OUTPUT, EventCode.RESIZE, EventCode.MARKER}
    assert [e.data for e in cast.events if e.code is EventCode.RESIZE] == ["100x30"]
    assert cast.markers()[0] == "join viewer (view_only)"
    assert cast.markers()[-1] == "end: owner stopped sharing"
    times = [e.time for e in cast.events]
    assert times == sorted(times), "event times never go backwards"


async def test_a_write_error_ends_remote_control_and_nothing_more_reaches_the_pty(
    make_world: MakeWorld,
) -> None:
    world = await make_world(limits=Limits(grantable_modes=frozenset(Mode)))
    handle, uplink = await world.share()
    sid = handle.session_id
    driver = await world.hub.attach(sid, UserId("d"), "driver", Mode.PRIVILEGED)
    viewer = await world.hub.attach(sid, UserId("v"), "viewer", Mode.VIEW_ONLY)
    await driver.send_input(b"make\r")
    await until(lambda: uplink.inputs == [b"make\r"])

    (file,) = world.files
    file.fail = True  # the disk is full from now on
    handle.output(0, b"building...\r\n")
    for stream in (driver, viewer):
        _, controls = await read(stream)
        assert closed(controls).message["reason"] == EndReason.RECORDING_FAILED
    assert uplink.ends == [EndReason.RECORDING_FAILED]

    with pytest.raises(StreamClosed):
        await driver.send_input(b"rm -rf /\r")
    with pytest.raises(NotFound):
        await world.hub.attach(sid, UserId("d"), "driver", Mode.PRIVILEGED)
    handle.output(14, b"more")
    assert uplink.inputs == [b"make\r"], "nothing reaches the PTY once the recording failed"
    await world.ended(sid)
    await until(lambda: len(world.audit.of("recording.failed")) == 1)
    assert "No space left" in str(world.audit.of("recording.failed")[0].detail["error"])


async def test_a_recording_that_cannot_be_created_refuses_the_session(
    make_world: MakeWorld, tmp_path: Path
) -> None:
    world = await make_world()
    blocker = world.root
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the recordings folder should be")
    with pytest.raises(Unavailable, match="recording"):
        await world.share()
    await until(lambda: len(world.audit.of("recording.failed")) == 1)
    assert world.hub.sessions() == []


# --- the connector ---------------------------------------------------------------------------


async def test_a_connector_resumes_within_the_grace_period_and_loses_nothing(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    sid = handle.session_id
    viewer = await world.hub.attach(sid, UserId("v"), "viewer", Mode.VIEW_ONLY)
    handle.output(0, b"before ")
    handle.connector_lost()
    await until(lambda: not world.hub.session(sid).connector_online)

    new_uplink = FakeUplink()
    with pytest.raises(Forbidden):
        await world.hub.resume_session(sid, "not-the-token", OWNER, new_uplink)
    with pytest.raises(Forbidden):
        await world.hub.resume_session(sid, handle.resume_token, UserId("usr_other"), new_uplink)
    with pytest.raises(NotFound):
        await world.hub.resume_session(SessionId("ses_nope"), handle.resume_token, OWNER, new_uplink)
    resumed = await world.hub.resume_session(sid, handle.resume_token, OWNER, new_uplink)
    assert resumed.received == 7, "the connector resends from what the gateway holds"
    handle.output(7, b"STALE LINK")  # the old link is inert
    resumed.output(3, b"ore after")  # a resend overlapping what is held is deduplicated
    data, _ = await read(viewer, until_seq=12)
    assert data == b"before after"
    assert world.hub.session(sid).connector_online
    await world.hub.end(sid, "done")
    assert new_uplink.ends == ["done"]
    assert "connector lost" in world.cast(sid).markers()


async def test_a_connector_that_does_not_come_back_ends_the_session(make_world: MakeWorld) -> None:
    world = await make_world(limits=Limits(connector_grace_s=0.2))
    handle, uplink = await world.share()
    viewer = await world.hub.attach(handle.session_id, UserId("v"), "viewer", Mode.VIEW_ONLY)
    handle.connector_lost()
    _, controls = await read(viewer)
    assert closed(controls).message["reason"] == EndReason.CONNECTOR_LOST
    assert uplink.ends == [], "a lost connector is not written to"
    with pytest.raises(NotFound):
        await world.hub.resume_session(handle.session_id, handle.resume_token, OWNER, FakeUplink())


# --- memory ----------------------------------------------------------------------------------


async def test_idle_sessions_and_participants_stay_small(make_world: MakeWorld) -> None:
    """Python heap per idle session / participant (tracemalloc: a floor for RSS, see bench/)."""
    import gc
    import tracemalloc

    world = await make_world()
    await world.share()  # warm up lazy imports and caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        handles = [(await world.share())[0] for _ in range(50)]
        for h in handles:
            h.output(0, b"$ ")
        await until(lambda: all(world.hub.session(h.session_id).output_bytes == 2 for h in handles))
        gc.collect()
        mid = tracemalloc.take_snapshot()
        streams = [
            await world.hub.attach(handles[0].session_id, UserId(f"u{i}"), f"p{i}", Mode.VIEW_ONLY)
            for i in range(100)
        ]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_session = sum(s.size_diff for s in mid.compare_to(before, "filename")) / 50
    per_participant = sum(s.size_diff for s in after.compare_to(mid, "filename")) / 100
    assert per_session < 256 * 1024, f"{per_session:.0f} B per idle session"
    assert per_participant < 64 * 1024, f"{per_participant:.0f} B per idle participant"
    assert len(streams) == 100
    print(f"heap: {per_session:.0f} B per idle session, {per_participant:.0f} B per idle participant")


# --- secret redaction ---------------------------------------------------------------------------------

AWS_KEY = b"AKIAIOSFODNN7EXAMPLE"


async def test_a_secret_split_across_chunks_is_masked_for_participants_and_the_recording(
    make_world: MakeWorld,
) -> None:
    world = await make_world(limits=Limits(grantable_modes=frozenset(Mode)))
    handle, uplink = await world.share()
    sid = handle.session_id
    viewer = await world.hub.attach(sid, UserId("v"), "viewer", Mode.PRIVILEGED)
    chunks = [b"$ cat creds\r\nid=AKIAIOSF", b"ODNN7EX", b"AMPLE\r\n$ "]
    seq = 0
    for chunk in chunks:
        handle.output(seq, chunk)
        seq += len(chunk)
    data, _ = await read(viewer, until_seq=seq)
    assert AWS_KEY not in data and data == b"".join(chunks).replace(AWS_KEY, b"*" * 20)
    # Typed by a participant: reaches the PTY as typed, recorded masked.
    await viewer.send_input(b"export K=" + AWS_KEY + b"\r")
    await until(lambda: uplink.inputs == [b"export K=" + AWS_KEY + b"\r"])
    await world.hub.end(sid, "done")

    raw = world.recording(sid).read_bytes()
    assert AWS_KEY not in raw and b"AKIAIOSF" not in raw
    cast = world.cast(sid)
    assert "redacted 1 secret: aws-access-key-id=1" in cast.markers()
    (event,) = world.audit.of("session.redacted")
    assert event.detail == {"count": 1, "pattern.aws-access-key-id": 1}
    assert AWS_KEY.decode() not in str([e.model_dump() for e in world.audit.events])


async def test_a_held_possible_start_reaches_participants_after_a_short_wait(make_world: MakeWorld) -> None:
    world = await make_world()
    handle, _ = await world.share()
    viewer = await world.hub.attach(handle.session_id, UserId("v"), "viewer", Mode.VIEW_ONLY)
    handle.output(0, b"Type A")  # "A" could begin an AWS key: held back, then flushed
    data, _ = await read(viewer, until_seq=6)
    assert data == b"Type A"
    await world.hub.end(handle.session_id, "done")
    outputs = "".join(e.data for e in world.cast(handle.session_id).events if e.code is EventCode.OUTPUT)
    assert outputs == "Type A"


async def test_the_hook_timeout_comes_from_the_hub_and_reaches_the_connector_handle(tmp_path: Path) -> None:
    recorders = RecorderFactory(tmp_path / "rec", batch_window_s=0.05)
    async with Hub(recorders=recorders, audit=MemoryAudit(), hook_timeout=lambda: 130) as hub:
        handle = await hub.open_session(META, FakeUplink())
        assert handle.hook_timeout_s == 130 and handle.hook_token
        await hub.end(handle.session_id, "done")
