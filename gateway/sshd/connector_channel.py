"""One connector's channel on the gateway: connector_wire frames in, hub calls out, INPUT/END back.

Theory of operation
-------------------
A certificate-authenticated connector runs exec ``rcgate-connector/1`` and the channel turns into
a frame loop (``gateway.protocol.connector_wire``)::

    HELLO  ──► hub.open_session (or hub.resume_session when HELLO.resume is set)
           ◄── WELCOME {session_id, resume_token, hook_token, hook_timeout_s, link_url, received}
    OUTPUT ──► handle.output     (seq checked against this link's expected offset), then
               await handle.drain: the channel is not read while the broker is behind, so
               SSH flow control pushes back to the connector (which buffers, bounded)
    RESIZE ──► handle.resize
    EXIT   ──► handle.exited     then the channel closes
    STOP   ──► handle.stopped    then the channel closes
    EOF / connection lost      ──► handle.connector_lost (the session waits for a resume)

The broker talks back through ``ChannelUplink`` (INPUT, END): plain channel writes that never
block; asyncssh buffers them and a connector that stops reading is dropped once
``UPLINK_BUFFER_LIMIT_BYTES`` pile up. After END the channel closes: the session is over and the
connector keeps its program running locally.

A frame that does not parse, arrives out of place, or leaves a gap in the output offsets drops
the link with one log line (no payload, no token is logged); the connector may resume.

Reads carry no timeout of their own: an idle connector is normal, and a dead one is detected by
the server's SSH keepalives (``KEEPALIVE_INTERVAL_S`` times ``KEEPALIVE_COUNT_MAX`` in ``server.py``).
Every other await (HELLO, hub calls, the link URL) is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

import asyncssh
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core.errors import GatewayError
from gateway.core.ids import SessionId
from gateway.core.models import User
from gateway.core.modes import Mode
from gateway.protocol import connector_wire as wire
from gateway.sessions.ports import ConnectorHandle, SessionHub, SessionMeta

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0  # a connector sends HELLO right after exec; silence means something is wrong
HUB_CALL_TIMEOUT_S = 10.0  # open/resume a session (store round trips)
LINK_URL_TIMEOUT_S = 10.0  # minting the session's first link
HUB_DRAIN_TIMEOUT_S = 30.0  # a broker that takes no output for this long: drop the link (it resumes)
READ_CHUNK_BYTES = 256 * 1024  # 256 KiB per channel read: one coalesced OUTPUT frame
MAX_INPUT_FRAME_BYTES = 64 * 1024  # 64 KiB: larger remote input is split into several INPUT frames
UPLINK_BUFFER_LIMIT_BYTES = 4 * 1024 * 1024  # 4 MiB unread INPUT: the connector is not reading
MAX_TERMINAL_DIM = 10_000  # columns or rows; anything larger is not a terminal

# A link id for the SSH viewer path would never reach this module: viewers get a PTY session.

LinkUrlFor = Callable[[SessionId, User, str], Awaitable[str]]
"""``(session_id, owner, requested_mode) -> url``: the link printed by `rcgate share` ("" for none)."""


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(min_length=1, max_length=128)
    resume_token: str = Field(min_length=1, max_length=256)


class HelloBody(BaseModel):
    """HELLO's JSON body as the gateway accepts it (see ``connector_wire``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    resume: ResumeBody | None = None
    host: str = Field(max_length=253)
    cwd: str = Field(max_length=4096)
    command: list[str] = Field(max_length=256)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    cols: int = Field(ge=1, le=MAX_TERMINAL_DIM)
    rows: int = Field(ge=1, le=MAX_TERMINAL_DIM)
    mode: Mode = Mode.VIEW_ONLY  # the most the printed link may grant


class LinkDropped(Exception):
    """The connector broke the protocol; the message is safe to log (no payload)."""


class ChannelUplink:
    """The broker's way back to one connector channel (implements ``sessions.ports.Uplink``)."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes], label: str) -> None:
        self._writer = writer
        self._label = label
        self.closed = False

    def _write(self, frame: bytes) -> None:
        if self.closed:
            return
        channel = self._writer.channel
        if channel.get_write_buffer_size() > UPLINK_BUFFER_LIMIT_BYTES:
            log.warning("connector %s does not read its input; dropping the link", self._label)
            self.close()
            return
        try:
            self._writer.write(frame)
        except (BrokenPipeError, OSError, asyncssh.Error):
            self.closed = True

    def send_input(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_INPUT_FRAME_BYTES):
            self._write(wire.encode(wire.Input(data[start : start + MAX_INPUT_FRAME_BYTES])))

    def send_end(self, reason: str) -> None:
        self._write(wire.encode(wire.End(reason)))
        self.close()

    def close(self) -> None:
        """Close the channel once what is buffered has been sent (asyncssh flushes first)."""
        if not self.closed:
            self.closed = True
            self._writer.channel.close()


def exit_channel(writer: asyncssh.SSHWriter[bytes], status: int) -> None:
    """Send an exit status and close the (server) channel behind ``writer``."""
    channel = writer.channel
    if isinstance(channel, asyncssh.SSHServerChannel):
        channel.exit(status)
    else:  # pragma: no cover - the gateway only serves server channels
        channel.close()


def _meta_of(hello: HelloBody, user: User) -> SessionMeta:
    return SessionMeta(
        owner_id=user.id,
        owner_name=user.name,
        host=hello.host,
        cwd=hello.cwd,
        command=tuple(hello.command),
        labels=dict(hello.labels),
        cols=hello.cols,
        rows=hello.rows,
    )


class ConnectorChannel:
    """Runs the frame loop of one connector channel until EXIT, STOP, END or a drop."""

    def __init__(
        self,
        *,
        user: User,
        hub: SessionHub,
        link_url_for: LinkUrlFor,
        reader: asyncssh.SSHReader[bytes],
        writer: asyncssh.SSHWriter[bytes],
        peer: str,
    ) -> None:
        self._user = user
        self._hub = hub
        self._link_url_for = link_url_for
        self._reader = reader
        self._writer = writer
        self._label = f"{user.name}@{peer}"
        self._decoder = wire.Decoder()
        self._frames: deque[wire.Frame] = deque()
        self._uplink = ChannelUplink(writer, self._label)

    async def _next_frame(self) -> wire.Frame | None:
        """The next frame, or None when the connector closed or the connection is gone."""
        while not self._frames:
            try:
                data = await self._reader.read(READ_CHUNK_BYTES)
            except (asyncssh.BreakReceived, asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                continue  # out-of-band channel requests mean nothing on this channel
            except (asyncssh.Error, OSError):
                return None
            if not data:
                return None
            try:
                self._frames.extend(self._decoder.feed(data))
            except wire.WireError as exc:
                raise LinkDropped(str(exc)) from None
        return self._frames.popleft()

    async def run(self) -> None:
        """Serve the channel; never raises for connector misbehaviour (it is logged)."""
        handle: ConnectorHandle | None = None
        try:
            handle = await self._start()
            if handle is not None:
                await self._stream(handle)
        except LinkDropped as exc:
            log.warning("connector %s: protocol error, link dropped: %s", self._label, exc)
            if handle is not None:
                handle.connector_lost()
            self._writer.channel.get_connection().disconnect(
                asyncssh.DISC_PROTOCOL_ERROR, "rcgate connector protocol error"
            )
        except Exception:  # a bug must not leave the session waiting on a half-served channel
            log.exception("connector %s: internal error, link dropped", self._label)
            if handle is not None:
                handle.connector_lost()
        finally:
            self._uplink.close()

    async def _start(self) -> ConnectorHandle | None:
        try:
            first = await asyncio.wait_for(self._next_frame(), HELLO_TIMEOUT_S)
        except TimeoutError:
            raise LinkDropped(f"no HELLO within {HELLO_TIMEOUT_S:g} s") from None
        if first is None:
            return None
        if not isinstance(first, wire.Hello):
            raise LinkDropped(f"expected HELLO, got {type(first).__name__.upper()}")
        try:
            hello = HelloBody.model_validate(first.info)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) or "(body)" for e in exc.errors())
            raise LinkDropped(f"invalid HELLO ({fields})") from None
        link_url = ""
        try:
            if hello.resume is not None:
                handle = await asyncio.wait_for(
                    self._hub.resume_session(
                        SessionId(hello.resume.session_id),
                        hello.resume.resume_token,
                        self._user.id,
                        self._uplink,
                    ),
                    HUB_CALL_TIMEOUT_S,
                )
            else:
                handle = await asyncio.wait_for(
                    self._hub.open_session(_meta_of(hello, self._user), self._uplink), HUB_CALL_TIMEOUT_S
                )
                link_url = await asyncio.wait_for(
                    self._link_url_for(handle.session_id, self._user, hello.mode), LINK_URL_TIMEOUT_S
                )
        except GatewayError as exc:
            log.info("connector %s refused: %s", self._label, exc.code)
            self._uplink.send_end(exc.message)
            return None
        except TimeoutError:
            log.warning("connector %s: the session hub did not answer in time", self._label)
            self._uplink.send_end("the gateway is busy; try again")
            return None
        action = "resumed" if hello.resume is not None else "opened"
        log.info(
            "connector %s %s session %s at offset %d", self._label, action, handle.session_id, handle.received
        )
        welcome = {
            "session_id": handle.session_id,
            "resume_token": handle.resume_token,
            "hook_token": handle.hook_token,
            "hook_timeout_s": handle.hook_timeout_s,
            "link_url": link_url,
            "received": handle.received,
        }
        self._writer.write(wire.encode(wire.Welcome(welcome)))
        return handle

    async def _stream(self, handle: ConnectorHandle) -> None:
        expected = handle.received  # the next output offset this link must deliver
        while True:
            frame = await self._next_frame()
            match frame:
                case None:
                    if not self._uplink.closed:
                        log.info("connector %s lost (session %s)", self._label, handle.session_id)
                        handle.connector_lost()
                    return
                case wire.Output(seq, data):
                    if seq > expected:
                        raise LinkDropped(f"output gap: offset {seq}, expected {expected}")
                    skip = expected - seq  # a resend that overlaps what this link already delivered
                    if skip < len(data):
                        handle.output(expected, data[skip:])
                        expected = seq + len(data)
                        try:
                            await asyncio.wait_for(handle.drain(), HUB_DRAIN_TIMEOUT_S)
                        except TimeoutError:
                            raise LinkDropped(
                                f"the session took no output for {HUB_DRAIN_TIMEOUT_S:g} s"
                            ) from None
                case wire.Resize(cols, rows):
                    if 1 <= cols <= MAX_TERMINAL_DIM and 1 <= rows <= MAX_TERMINAL_DIM:
                        handle.resize(cols, rows)
                    else:
                        log.info("connector %s: ignored resize to %dx%d", self._label, cols, rows)
                case wire.Exit(code):
                    log.info("connector %s: program exited with %d", self._label, code)
                    handle.exited(code)
                    self._uplink.closed = True
                    exit_channel(self._writer, 0)
                    return
                case wire.Stop():
                    log.info("connector %s stopped sharing session %s", self._label, handle.session_id)
                    handle.stopped()
                    self._uplink.closed = True
                    exit_channel(self._writer, 0)
                    return
                case _:
                    raise LinkDropped(f"unexpected {type(frame).__name__.upper()} frame from a connector")
