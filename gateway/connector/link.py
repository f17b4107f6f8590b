"""The connector's link to the gateway: one SSH channel of connector_wire frames, kept alive.

Theory of operation
-------------------
Every byte the shared program prints goes into ``OutputBuffer`` first, a bounded window over
the session's output stream addressed by absolute offset (``seq``). A sender task reads from it
at the link's own pace: reads coalesce naturally into frames of up to ``MAX_OUTPUT_CHUNK_BYTES``
when the link is busy.

Back-pressure. While the link is up, a program that prints faster than the gateway takes it
(the gateway in turn waits for its recording) is slowed down instead of cut off: once more than
``LINK_HIGH_WATER_BYTES`` are unsent, ``output_paused()`` tells the PTY side to stop reading
the program's terminal (the program blocks in ``write``, as on a slow terminal), and
``on_room`` resumes it under ``LINK_LOW_WATER_BYTES``. So the recording stays complete however
fast the program prints. While the link is down the program is never paused; if more than
the replay buffer piles up, sharing stops (below).

    connect (certificate) ─► exec rcgate-connector/1 ─► HELLO (resume = None the first time)
        ◄─ WELCOME {session_id, resume_token, link_url, received}
        sender:  OUTPUT from ``received`` on · RESIZE at the offset where it happened · EXIT/STOP
        reader:  INPUT ─► ``on_input`` · END ─► remote control over (the program keeps running)
    link drops ─► back-off 0.5 s → 30 s with jitter ─► reconnect, HELLO with resume ─► WELCOME
        tells where to resend from; if that byte already fell out of the buffer, the recording
        could not be complete: the connector sends STOP and sharing ends (fail closed).

The gateway's certificate refusal and a host key mismatch are permanent: no retry. After the
program exits the link keeps trying for ``EXIT_DELIVERY_TIMEOUT_S`` to deliver the last output
and EXIT, then gives up. Every network await carries a timeout; a dead peer is found by SSH
keepalives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncssh

from gateway.connector.config import Identity
from gateway.protocol import connector_wire as wire

log = logging.getLogger(__name__)

REPLAY_BUFFER_BYTES = 8 * 1024 * 1024  # 8 MiB of output kept for resends after a drop
MAX_OUTPUT_CHUNK_BYTES = wire.MAX_OUTPUT_CHUNK_BYTES  # 256 KiB per OUTPUT frame
READ_CHUNK_BYTES = 64 * 1024
LINK_HIGH_WATER_BYTES = 2 * 1024 * 1024  # unsent output while connected: pause reading the program
LINK_LOW_WATER_BYTES = 512 * 1024  # ... and read again below this
CONNECT_TIMEOUT_S = 15.0  # TCP + SSH handshake + certificate authentication
OPEN_TIMEOUT_S = 10.0  # opening the exec channel
WELCOME_TIMEOUT_S = 15.0  # HELLO → WELCOME (the gateway registers the session and mints a link)
DRAIN_TIMEOUT_S = 60.0  # a gateway that takes no output for a minute is treated as gone
CLOSE_TIMEOUT_S = 5.0  # waiting for the gateway to acknowledge EXIT/STOP by closing the channel
EXIT_DELIVERY_TIMEOUT_S = 10.0  # after the program exits, how long to keep trying to deliver EXIT
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 4


class BacklogLost(Exception):
    """Output the gateway never received fell out of the replay buffer."""


class OutputBuffer:
    """A bounded window over the output stream: bytes ``[base, end)`` by absolute offset."""

    def __init__(self, limit_bytes: int = REPLAY_BUFFER_BYTES) -> None:
        self._buf = bytearray()
        self._base = 0
        self._limit = limit_bytes

    @property
    def base(self) -> int:
        return self._base

    @property
    def end(self) -> int:
        return self._base + len(self._buf)

    def append(self, data: bytes) -> None:
        self._buf += data
        excess = len(self._buf) - self._limit
        if excess > 0:
            del self._buf[:excess]  # CPython trims a bytearray's head in O(1)
            self._base += excess

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` starting at ``offset``; ``BacklogLost`` if it was discarded."""
        if offset < self._base:
            raise BacklogLost(f"output from offset {offset} is gone (buffer starts at {self._base})")
        start = offset - self._base
        return bytes(self._buf[start : start + max_bytes])

    def release(self, offset: int) -> None:
        """The gateway holds everything before ``offset``: forget it."""
        if offset > self._base:
            drop = min(offset, self.end) - self._base
            del self._buf[:drop]
            self._base += drop


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential back-off with jitter: 0.5 s, 1 s, 2 s … capped at 30 s, each in [½, 1] of that."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * (1 << min(attempt, 16)))
    return ceiling * (0.5 + rng.random() / 2)


@dataclass(frozen=True, slots=True)
class ShareInfo:
    """What HELLO tells the gateway about the shared program."""

    host: str
    cwd: str
    command: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    mode: str = "view_only"


class _Permanent(Exception):
    """A failure that retrying cannot fix; the message is for the owner."""


class _Over(Exception):
    """The link ended on purpose (END, EXIT or STOP delivered); the message is for the owner."""

    def __init__(self, message: str, *, notify: bool = False) -> None:
        super().__init__(message)
        self.notify = notify


def _to_notice(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class GatewayLink:
    """Keeps one session's link to the gateway up until the session ends."""

    def __init__(
        self,
        identity: Identity,
        info: ShareInfo,
        *,
        size: tuple[int, int],
        on_notice: Callable[[str], None],
        buffer_limit_bytes: int = REPLAY_BUFFER_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self._identity = identity
        self._info = info
        self._size = size
        self._notice = on_notice
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._buf = OutputBuffer(buffer_limit_bytes)
        self._wake = asyncio.Event()
        self._resize_due: tuple[int, int, int] | None = None  # (offset, cols, rows)
        self._final: wire.Exit | wire.Stop | None = None
        self._final_deadline: float | None = None
        self._session: tuple[str, str] | None = None  # (session_id, resume_token)
        self._welcomes = 0
        self._final_sent = False
        self.on_input: Callable[[bytes], None] = lambda data: None
        self.on_link: Callable[[str], None] = lambda url: None
        self.on_room: Callable[[], None] = lambda: None  # the program's output may be read again
        self._sent = 0  # the sender's offset while connected
        self._connected = False
        self._pausing = False
        self.welcomed = asyncio.Event()
        self.hook_token = ""  # the session's assistant-hook token (RCGATE_HOOK_TOKEN), from WELCOME
        self.hook_timeout_s = 0  # the assistant's hook timeout the gateway asks for (0: not said)
        self.link_url = ""
        self.outcome: str | None = None  # why the link ended, once it has
        self.failed = False  # True when it ended on an error (refused, lost), not on purpose

    # -- called by the PTY side (never block) ------------------------------------------------

    def output_paused(self) -> bool:
        """Whether the PTY side should stop reading the program for now (see back-pressure)."""
        if self._connected and self.outcome is None and self._buf.end - self._sent > LINK_HIGH_WATER_BYTES:
            self._pausing = True
        return self._pausing

    def _room(self, *, unsent: int | None = None) -> None:
        if self._pausing and (unsent is None or unsent <= LINK_LOW_WATER_BYTES):
            self._pausing = False
            self.on_room()

    def push_output(self, data: bytes) -> None:
        if self.outcome is None:
            self._buf.append(data)
            self._wake.set()

    def resize(self, cols: int, rows: int) -> None:
        self._size = (cols, rows)
        if self.outcome is None:
            self._resize_due = (self._buf.end, cols, rows)
            self._wake.set()

    def finish(self, exit_code: int) -> None:
        """The program ended: deliver the rest of its output, then EXIT."""
        self._set_final(wire.Exit(exit_code))

    def stop(self) -> None:
        """The owner stops sharing: deliver the output so far, then STOP."""
        self._set_final(wire.Stop())

    def _set_final(self, frame: wire.Exit | wire.Stop) -> None:
        if self._final is None:
            self._final = frame
            self._final_deadline = asyncio.get_running_loop().time() + EXIT_DELIVERY_TIMEOUT_S
            self._wake.set()

    # -- the connection loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect; returns when the link is over (see ``outcome``).

        Never raises: whatever goes wrong with the link, the program keeps running locally.
        """
        try:
            await self._run()
        except Exception as exc:  # a bug here must not take the owner's program down
            log.exception("gateway link failed")
            self._give_up(f"internal error ({type(exc).__name__})")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            welcomes_before = self._welcomes
            try:
                await self._connect_once()
            except _Over as exc:
                self.outcome = _to_notice(exc)
                if exc.notify:
                    self._notice(f"rcgate: {self.outcome} (the program keeps running here)")
                return
            except _Permanent as exc:
                self._give_up(_to_notice(exc))
                return
            except (OSError, asyncssh.Error, TimeoutError, wire.WireError) as exc:
                log.info("gateway link dropped: %s", _to_notice(exc))
            if self._welcomes != welcomes_before:
                attempt = 0  # this attempt got through: a fresh outage starts the back-off anew
            delay = backoff_delay(attempt, self._rng)
            attempt += 1
            if self._final_deadline is not None:
                left = self._final_deadline - loop.time()
                if left <= 0:
                    self._give_up("could not reach the gateway to end the session")
                    return
                delay = min(delay, left)
            if attempt == 1 and self._session is not None:
                self._notice("rcgate: lost the link to the gateway; reconnecting (the program keeps running)")
            await asyncio.sleep(delay)

    def _give_up(self, reason: str) -> None:
        self.outcome = reason
        self.failed = True
        self._notice(f"rcgate: sharing stopped: {reason}")

    def _client_keys(self) -> list[tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]]:
        return [(self._identity.key, self._identity.certificate)]

    def _known_hosts(
        self,
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] | None:
        pinned = self._identity.gateway.ssh_host_key
        if not pinned:
            return None
        return ([asyncssh.import_public_key(pinned)], [], [])

    async def _connect_once(self) -> None:
        gw = self._identity.gateway
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    gw.ssh_host,
                    gw.ssh_port,
                    username=gw.user,
                    client_keys=self._client_keys(),
                    known_hosts=self._known_hosts(),
                    agent_path=None,
                    config=[],  # the user's ~/.ssh/config must not change who we are
                    preferred_auth="publickey",
                    password_auth=False,
                    kbdint_auth=False,
                    gss_host=None,
                    keepalive_interval=KEEPALIVE_INTERVAL_S,
                    keepalive_count_max=KEEPALIVE_COUNT_MAX,
                ),
                CONNECT_TIMEOUT_S,
            )
        except asyncssh.PermissionDenied:
            raise _Permanent("the gateway refused the connector certificate: run `rcgate login`") from None
        except asyncssh.HostKeyNotVerifiable:
            raise _Permanent("the gateway's SSH host key does not match the one saved at login") from None
        try:
            writer, reader, _ = await asyncio.wait_for(
                conn.open_session(command=wire.EXEC_COMMAND, encoding=None), OPEN_TIMEOUT_S
            )
            await self._serve(reader, writer)
        finally:
            conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT_S)

    def _hello(self) -> wire.Hello:
        resume = None
        if self._session is not None:
            resume = {"session_id": self._session[0], "resume_token": self._session[1]}
        return wire.Hello(
            {
                "version": 1,
                "resume": resume,
                "host": self._info.host,
                "cwd": self._info.cwd,
                "command": list(self._info.command),
                "labels": dict(self._info.labels),
                "cols": self._size[0],
                "rows": self._size[1],
                "mode": self._info.mode,
            }
        )

    async def _serve(self, reader: asyncssh.SSHReader[bytes], writer: asyncssh.SSHWriter[bytes]) -> None:
        decoder = wire.Decoder()
        resuming = self._session is not None
        writer.write(wire.encode(self._hello()))
        first, rest = await asyncio.wait_for(self._first_frames(reader, decoder), WELCOME_TIMEOUT_S)
        if isinstance(first, wire.End):
            raise _Over(f"remote control ended: {first.reason}", notify=True)
        welcome = first.info
        try:
            session_id, token, received = (
                str(welcome["session_id"]),
                str(welcome["resume_token"]),
                int(welcome["received"]),
            )
        except (KeyError, TypeError, ValueError):
            raise wire.WireError("malformed WELCOME") from None
        if received > self._buf.end:
            raise wire.WireError(f"the gateway claims {received} bytes, only {self._buf.end} were sent")
        self._session = (session_id, token)
        if received < self._buf.base:
            self._final_sent = True
            writer.write(wire.encode(wire.Stop()))
            await self._close_channel(writer)
            raise _Permanent(
                f"more than {REPLAY_BUFFER_BYTES // (1024 * 1024)} MiB of output piled up while the"
                " gateway was unreachable; the recording would have a gap"
            )
        self._buf.release(received)
        self._welcomes += 1
        if resuming:
            log.info("gateway link resumed at offset %d", received)
            self._notice("rcgate: link to the gateway restored")
            if self._resize_due is None:
                self._resize_due = (received, *self._size)  # the size may have changed meanwhile
        else:
            self.link_url = str(welcome.get("link_url") or "")
            self.hook_token = str(welcome.get("hook_token") or "")
            timeout = welcome.get("hook_timeout_s")
            self.hook_timeout_s = timeout if isinstance(timeout, int) and timeout > 0 else 0
            self.welcomed.set()
            if self.link_url:
                self.on_link(self.link_url)
        for frame in rest:
            self._on_gateway_frame(frame)
        await self._pump(reader, writer, decoder, received)

    async def _first_frames(
        self, reader: asyncssh.SSHReader[bytes], decoder: wire.Decoder
    ) -> tuple[wire.Welcome | wire.End, list[wire.Frame]]:
        frames: list[wire.Frame] = []
        while not frames:
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                raise ConnectionResetError("the gateway closed the link before WELCOME")
            frames = decoder.feed(data)
        first = frames[0]
        if not isinstance(first, (wire.Welcome, wire.End)):
            raise wire.WireError(f"expected WELCOME, got {type(first).__name__.upper()}")
        return first, frames[1:]

    def _on_gateway_frame(self, frame: wire.Frame) -> None:
        match frame:
            case wire.Input(data):
                self.on_input(data)
            case wire.End(reason):
                raise _Over(f"remote control ended: {reason}", notify=True)
            case _:
                raise wire.WireError(f"unexpected {type(frame).__name__.upper()} from the gateway")

    async def _pump(
        self,
        reader: asyncssh.SSHReader[bytes],
        writer: asyncssh.SSHWriter[bytes],
        decoder: wire.Decoder,
        sent: int,
    ) -> None:
        receiving = asyncio.ensure_future(self._receive(reader, decoder))
        sending = asyncio.ensure_future(self._send(writer, sent))
        self._sent, self._connected = sent, True
        try:
            done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done and receiving.exception() is None:
                await sending  # the gateway closed after our EXIT/STOP: let the sender conclude
                done = {receiving, sending}
            for task in (sending, receiving):  # a finished sender wins over the reader's EOF
                if task in done:
                    task.result()
        finally:
            self._connected = False
            self._room()  # never leave the program paused while there is no link to wait for
            for task in (receiving, sending):
                task.cancel()
            await asyncio.gather(receiving, sending, return_exceptions=True)

    async def _receive(self, reader: asyncssh.SSHReader[bytes], decoder: wire.Decoder) -> None:
        while True:
            data = await reader.read(READ_CHUNK_BYTES)  # liveness: SSH keepalives
            if not data:
                if self._final_sent:
                    return  # expected: the gateway closes once it has our EXIT/STOP
                raise ConnectionResetError("the gateway closed the link")
            for frame in decoder.feed(data):
                self._on_gateway_frame(frame)

    async def _send(self, writer: asyncssh.SSHWriter[bytes], sent: int) -> None:
        while True:
            due = self._resize_due
            if due is not None and sent >= due[0]:
                self._resize_due = None
                writer.write(wire.encode(wire.Resize(due[1], due[2])))
                continue
            stop_at = self._buf.end if due is None else min(due[0], self._buf.end)
            if sent < stop_at:
                try:
                    chunk = self._buf.read(sent, min(MAX_OUTPUT_CHUNK_BYTES, stop_at - sent))
                except BacklogLost:
                    self._final_sent = True
                    writer.write(wire.encode(wire.Stop()))
                    await self._close_channel(writer)
                    raise _Permanent(
                        "the gateway fell too far behind; the recording would have a gap"
                    ) from None
                writer.write(wire.encode(wire.Output(sent, chunk)))
                sent += len(chunk)
                await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT_S)
                self._sent = sent
                self._room(unsent=self._buf.end - sent)
                continue
            if self._final is not None:
                self._final_sent = True
                writer.write(wire.encode(self._final))
                await self._close_channel(writer)
                if isinstance(self._final, wire.Exit):
                    raise _Over(f"the program exited with status {self._final.code}")
                raise _Over("sharing stopped by the owner")
            self._wake.clear()  # no await since the checks above: a set() cannot be missed
            await self._wake.wait()

    @staticmethod
    async def _close_channel(writer: asyncssh.SSHWriter[bytes]) -> None:
        """Flush, then wait until the gateway closes the channel: it has read everything."""
        await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT_S)
        writer.write_eof()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.channel.wait_closed(), CLOSE_TIMEOUT_S)
