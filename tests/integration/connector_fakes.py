"""Fakes for the sshd/connector tests: a SessionHub that records calls, and a TCP proxy that can cut links.

The hub keeps one output stream per session and gives each connected link its own handle, as
the real hub must: a handle superseded by a resume ignores whatever its old link still says.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.core.errors import Forbidden, NotFound
from gateway.core.ids import SessionId, UserId
from gateway.sessions.ports import SessionMeta, Uplink


@dataclass
class FakeSession:
    id: SessionId
    token: str
    meta: SessionMeta
    uplink: Uplink
    output: bytearray = field(default_factory=bytearray)
    events: list[tuple[object, ...]] = field(default_factory=list)
    generation: int = 0  # bumped by every resume: older handles go quiet
    gaps: int = 0  # output that did not start at `received` (must stay 0)


class FakeHandle:
    def __init__(self, hub: FakeHub, session: FakeSession) -> None:
        self._hub = hub
        self._s = session
        self._generation = session.generation

    @property
    def _live(self) -> bool:
        return self._generation == self._s.generation

    @property
    def session_id(self) -> SessionId:
        return self._s.id

    @property
    def resume_token(self) -> str:
        return self._s.token

    @property
    def hook_timeout_s(self) -> int:
        return 130

    @property
    def hook_token(self) -> str:
        return "hook-" + self._s.token

    @property
    def received(self) -> int:
        return len(self._s.output)

    def _record(self, *event: object) -> None:
        self._s.events.append(event)
        self._hub.changed()

    def output(self, seq: int, data: bytes) -> None:
        if not self._live:
            return
        if seq != len(self._s.output):
            self._s.gaps += 1
        self._s.output += data
        self._record("output", seq, len(data))
        self._hub.on_output(self._s)

    def resize(self, cols: int, rows: int) -> None:
        if self._live:
            self._record("resize", cols, rows)

    def exited(self, code: int) -> None:
        if self._live:
            self._record("exited", code)

    def stopped(self) -> None:
        if self._live:
            self._record("stopped")

    def connector_lost(self) -> None:
        if self._live:
            self._record("lost")

    async def drain(self) -> None:
        if not self._hub.room.is_set():
            self._record("drain-wait")
            await self._hub.room.wait()


class FakeHub:
    """Implements ``SessionHub``; every call is recorded in ``calls``."""

    def __init__(self) -> None:
        self.sessions: dict[SessionId, FakeSession] = {}
        self.calls: list[tuple[str, str]] = []
        self.on_output: Callable[[FakeSession], None] = lambda s: None
        self._changed = asyncio.Event()
        self.room = asyncio.Event()  # clear it to make `drain` wait (a broker that is behind)
        self.room.set()

    def changed(self) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait (event-driven, with a deadline) until ``predicate()`` holds."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def only(self) -> FakeSession:
        (session,) = self.sessions.values()
        return session

    async def open_session(self, meta: SessionMeta, uplink: Uplink) -> FakeHandle:
        sid = SessionId(f"ses_{secrets.token_hex(4)}")
        session = FakeSession(sid, secrets.token_urlsafe(16), meta, uplink)
        self.sessions[sid] = session
        self.calls.append(("open", sid))
        self.changed()
        return FakeHandle(self, session)

    async def resume_session(
        self, session_id: SessionId, resume_token: str, owner_id: UserId, uplink: Uplink
    ) -> FakeHandle:
        self.calls.append(("resume", session_id))
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound("no such session")
        if not hmac.compare_digest(session.token, resume_token) or session.meta.owner_id != owner_id:
            raise Forbidden("this connector cannot resume that session")
        session.generation += 1
        session.uplink = uplink
        self.changed()
        return FakeHandle(self, session)


class TcpProxy:
    """127.0.0.1 forwarder to ``target_port``; ``cut()`` kills every live connection like a network drop."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in (writer, up_writer):
                w.transport.abort()
                self._writers.discard(w)
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    def cut(self) -> None:
        for w in list(self._writers):
            w.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)
