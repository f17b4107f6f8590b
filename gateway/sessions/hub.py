"""The hub: this node's registry of live sessions, and the owner of their broker tasks.

``Hub`` implements ``ports.SessionHub`` (for the sshd connector adapter) and
``ports.ParticipantHub`` (for the httpd and sshd viewer adapters).

Lifecycle: ``async with Hub(...)`` (or ``await hub.start()`` ... ``await hub.aclose()``) runs
one supervisor task holding a ``TaskGroup``; every broker task and the audit pump are children
of it, so no task outlives the hub. ``aclose`` ends every session ("gateway shutting down"),
waits for their recordings to close (at most ``SHUTDOWN_TIMEOUT_S``, then cancels), and drains
the audit queue. A broker that crashes ends only its own session.

Audit events are emitted synchronously by brokers into a bounded queue that one pump task
appends to the ``AuditLog``, so a slow store never stalls a session's output.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType

from gateway.core.audit import AuditType
from gateway.core.clock import Clock
from gateway.core.errors import Forbidden, NotFound, Unavailable
from gateway.core.ids import SessionId, UserId, new_id
from gateway.core.models import AuditEvent
from gateway.core.modes import Mode
from gateway.core.ports import AuditLog
from gateway.policy import Actor
from gateway.sessions.audit import AUDIT_RECORDING_FAILED, AUDIT_RESUME_REFUSED
from gateway.sessions.broker import Broker, BrokerConfig
from gateway.sessions.events import MarkerEvent
from gateway.sessions.ports import (
    ConnectorHandle,
    ParticipantStream,
    RecorderFactory,
    SessionInfo,
    SessionMeta,
    Uplink,
)
from gateway.sessions.state import EndReason

log = logging.getLogger(__name__)

RESUME_TOKEN_BYTES = 32  # 256 bits
SHUTDOWN_TIMEOUT_S = 10.0  # how long aclose waits for sessions to close their recordings
AUDIT_QUEUE_EVENTS = 10_000  # audit events waiting for the store before new ones are dropped
AUDIT_APPEND_TIMEOUT_S = 5.0  # one store append


class _MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class _WallClock:
    def now(self) -> float:
        return time.time()


class AuditPump:
    """A bounded queue of audit events and the task that appends them to the store."""

    def __init__(self, log_: AuditLog, max_events: int = AUDIT_QUEUE_EVENTS) -> None:
        self._log = log_
        self._max = max_events
        self._queue: deque[AuditEvent] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self.dropped = 0

    def emit(self, event: AuditEvent) -> None:
        if len(self._queue) >= self._max:
            self.dropped += 1
            log.error("audit queue full: dropped %s event on %s", event.type, event.subject)
            return
        self._queue.append(event)
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            while self._queue:
                event = self._queue.popleft()
                try:
                    async with asyncio.timeout(AUDIT_APPEND_TIMEOUT_S):
                        await self._log.append(event)
                except Exception:
                    log.exception("audit append failed: %s on %s", event.type, event.subject)
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()


HOOK_TOKEN_BYTES = 32  # per-session bearer token of the assistant hooks


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Hub:
    """Live sessions on this node (see the module docstring)."""

    def __init__(
        self,
        *,
        recorders: RecorderFactory,
        audit: AuditLog,
        config: BrokerConfig | None = None,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        hook_timeout: Callable[[], int] | None = None,
    ) -> None:
        """``hook_timeout``: the assistants' hook timeout for a new session (from the policy)."""
        self._hook_timeout = hook_timeout
        self._recorders = recorders
        self._audit = AuditPump(audit)
        self._config = config or BrokerConfig()
        self._clock = clock or _MonotonicClock()
        self._wall = wall_clock or _WallClock()
        self._brokers: dict[SessionId, Broker] = {}
        self._hook_tokens: dict[str, SessionId] = {}
        self._tasks: dict[SessionId, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("hub already started")
        self._supervisor = asyncio.create_task(self._supervise(), name="sessions hub")
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._supervisor  # raises what made it stop

    async def aclose(self) -> None:
        if self._supervisor is None:
            return
        self._stopping.set()
        await self._supervisor

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            audit_task = tg.create_task(self._audit.run(), name="audit pump")
            self._ready.set()
            await self._stopping.wait()
            for broker in list(self._brokers.values()):
                broker.end(EndReason.SHUTDOWN)
            waiting = [asyncio.ensure_future(b.wait_finished()) for b in self._brokers.values()]
            if waiting:
                _, pending = await asyncio.wait(waiting, timeout=SHUTDOWN_TIMEOUT_S)
                for future in pending:
                    future.cancel()
                if pending:
                    log.error("%d sessions did not close in time; cancelling them", len(pending))
                    for task in self._tasks.values():
                        task.cancel()
            self._audit.close()
            await audit_task
            self._tg = None

    def _require_running(self) -> asyncio.TaskGroup:
        if self._tg is None or self._stopping.is_set():
            raise Unavailable("the sessions hub is not running")
        return self._tg

    # --- SessionHub (connectors) ---------------------------------------------------------

    async def open_session(self, meta: SessionMeta, uplink: Uplink) -> ConnectorHandle:
        tg = self._require_running()
        session_id = SessionId(new_id("ses"))
        broker: Broker | None = None

        def on_failure(reason: str) -> None:
            if broker is not None:
                broker.recording_failed(reason)

        try:
            recorder = await self._recorders(session_id, meta, on_failure)
        except Unavailable as exc:
            self._audit.emit(self._event(AUDIT_RECORDING_FAILED, meta.owner_id, session_id, exc.message))
            raise
        broker = Broker(
            session_id=session_id,
            meta=meta,
            recorder=recorder,
            uplink=uplink,
            resume_token=secrets.token_urlsafe(RESUME_TOKEN_BYTES),
            clock=self._clock,
            wall_clock=self._wall,
            audit=self._audit.emit,
            config=self._config,
        )
        self._brokers[session_id] = broker
        hook_token = secrets.token_urlsafe(HOOK_TOKEN_BYTES)
        self._hook_tokens[_token_hash(hook_token)] = session_id
        broker.hook_token = hook_token
        broker.hook_timeout_s = self._hook_timeout() if self._hook_timeout is not None else 0
        self._tasks[session_id] = tg.create_task(self._serve(broker), name=f"session {session_id}")
        self._audit.emit(
            AuditEvent(
                ts=self._wall.now(),
                type=AuditType.SESSION_STARTED,
                actor=meta.owner_id,
                subject=session_id,
                outcome="ok",
                detail={
                    "host": meta.host,
                    "cwd": meta.cwd,
                    "command": " ".join(meta.command)[:500],
                    "labels": ",".join(f"{k}={v}" for k, v in sorted(meta.labels.items()))[:500],
                },
            )
        )
        return broker.link()

    async def resume_session(
        self, session_id: SessionId, resume_token: str, owner_id: UserId, uplink: Uplink
    ) -> ConnectorHandle:
        self._require_running()
        broker = self._brokers.get(session_id)
        if broker is None or not broker.live:
            raise NotFound("no live session with this id", code="session_not_found")
        if not broker.check_resume(resume_token, owner_id):
            self._audit.emit(
                self._event(AUDIT_RESUME_REFUSED, owner_id, session_id, "bad resume token or owner")
            )
            raise Forbidden("this connector may not resume the session", code="resume_refused")
        return broker.reconnect(uplink)

    async def _serve(self, broker: Broker) -> None:
        try:
            await broker.run()
        except Exception:  # a broken session must not take the others down with the task group
            log.exception("session %s: broker task failed", broker.session_id)
        finally:
            self._brokers.pop(broker.session_id, None)
            self._tasks.pop(broker.session_id, None)
            # The session's hook token dies with it: an assistant's later calls are refused.
            self._hook_tokens.pop(_token_hash(broker.hook_token), None)

    def session_for_hook_token(self, token: str) -> SessionInfo | None:
        """The live session a hook token was minted for (by hash; unknown or ended: None)."""
        session_id = self._hook_tokens.get(_token_hash(token)) if token else None
        broker = self._brokers.get(session_id) if session_id is not None else None
        return broker.info() if broker is not None and broker.live else None

    def mark(self, session_id: SessionId, label: str) -> None:
        """Put a marker into the session's recording (tool calls, decisions); ignored once ended."""
        broker = self._brokers.get(session_id)
        if broker is not None:
            broker.post(MarkerEvent(label))

    # --- ParticipantHub ------------------------------------------------------------------

    async def attach(
        self,
        session_id: SessionId,
        user_id: UserId,
        user_name: str,
        mode: Mode,
        resume_from: int | None = None,
        *,
        actor: Actor | None = None,
    ) -> ParticipantStream:
        self._require_running()
        return await self.broker(session_id).attach(user_id, user_name, mode, resume_from, actor=actor)

    async def end(self, session_id: SessionId, reason: str) -> None:
        broker = self.broker(session_id)
        broker.end(reason)
        await broker.wait_finished()

    async def wait_closed(self, session_id: SessionId) -> None:
        """Return once the session has ended and its recording is closed (at once if unknown)."""
        broker = self._brokers.get(session_id)
        if broker is not None:
            await broker.wait_finished()

    def sessions(self) -> Sequence[SessionInfo]:
        return [b.info() for b in self._brokers.values() if b.live]

    def session(self, session_id: SessionId) -> SessionInfo:
        return self.broker(session_id).info()

    def broker(self, session_id: SessionId) -> Broker:
        """The live session's broker; ``NotFound`` otherwise."""
        broker = self._brokers.get(session_id)
        if broker is None or not broker.live:
            raise NotFound("no live session with this id", code="session_not_found")
        return broker

    @property
    def audit_dropped(self) -> int:
        return self._audit.dropped

    def _event(self, type_: str, actor: str, session_id: SessionId, why: str) -> AuditEvent:
        return AuditEvent(
            ts=self._wall.now(),
            type=type_,
            actor=actor,
            subject=session_id,
            outcome="fail",
            detail={"why": why},
        )
