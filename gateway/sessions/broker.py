"""The broker: the one task that owns a live session, from its first byte to its end.

Theory of operation
-------------------
Everything that changes a session is an event (``gateway.sessions.events``) in the broker's
inbox, handled one at a time by ``run()``; no locks, no other task touches the state
(ARCHITECTURE.md principle 4). Handlers are synchronous: between two events the broker never
waits for a participant, the disk or the network.

    connector (sshd)  --ConnectorLink-->  inbox  --> SessionState (pure decisions)
    participants      --Stream actions->    |    --> Scrollback ring  --> Stream.next()
    timer (deadline)  --Tick----------->    |    --> SessionRecorder (written off the loop)
    hub / admin       --EndRequest----->    |    --> Uplink (input, end) / AuditSink

Output fan-out. New output is appended once to the scrollback ring (2 MiB) and recorded; each
participant reads the ring at its own cursor, and the broker only wakes it. A participant more
than ``participant_lag_bytes`` behind (not counting the replay it got on joining) is cut off
with "too slow"; it may attach again with ``resume_from`` and lose nothing while its bytes are
still in the ring. So a reader that never reads costs the connector and the others nothing.

Input. A participant's input reaches the uplink only if ``SessionState.participant_input``
says ``Forward`` and the recording has not failed; it is recorded (``i``) before it is sent.
Refusals are counted; the first of each burst is audited, marked in the recording and told to
the participant.

Time. The broker arms one timer at ``SessionState.next_deadline()``; when it fires it posts a
``Tick``, and expiries end the session or remove idle participants. Activity only moves
deadlines later, so the timer is re-armed lazily (only when a deadline moved earlier).

Ending. ``_end`` runs once: every participant gets its ``closed`` frame at once (after the
output already held), the connector is told through ``Uplink.send_end``, the end is audited,
and ``run()`` closes the recording with its end marker before returning.

Flow control. Connector calls are synchronous and never drop output; the adapter awaits
``ConnectorLink.drain()``, which waits while more than ``INBOX_HIGH_WATER_BYTES`` are queued.
Participant actions are limited per participant (``stream.MAX_PENDING_ACTIONS``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import cast

from gateway.core.clock import Clock
from gateway.core.errors import GatewayError, NotFound
from gateway.core.ids import SessionId, UserId, new_id
from gateway.core.modes import Mode
from gateway.policy import Action, Actor, Allow, Key, RequestMode, Review, StepUp, SubmitLine
from gateway.sessions.approval_records import held_action
from gateway.sessions.audit import AuditSink, SessionAudit
from gateway.sessions.events import (
    Attach,
    ConnectorExit,
    ConnectorLost,
    ConnectorOutput,
    ConnectorResize,
    ConnectorResumed,
    ConnectorStop,
    Detach,
    EndRequest,
    Event,
    FlushHeld,
    HeldDecided,
    LinkEvent,
    MarkerEvent,
    ParticipantInput,
    ParticipantModeRequest,
    ParticipantResize,
    ParticipantSubmit,
    ParticipantTouch,
    RecordingFailed,
    Tick,
)
from gateway.sessions.gate import Judgement, PolicyGate
from gateway.sessions.keys import classify
from gateway.sessions.link import ConnectorLink, hash_token
from gateway.sessions.ports import (
    ApprovalPort,
    HeldAction,
    JsonValue,
    ParticipantId,
    SessionInfo,
    SessionMeta,
    SessionRecorder,
    Uplink,
)
from gateway.sessions.redact import HOLD_S, OutputMasker, describe
from gateway.sessions.scrollback import SCROLLBACK_BYTES, Scrollback
from gateway.sessions.state import (
    EndReason,
    Forward,
    GrantExpired,
    Judge,
    LeaveReason,
    Limits,
    ParticipantExpired,
    Refused,
    SessionExpired,
    SessionState,
)
from gateway.sessions.stream import Stream

log = logging.getLogger(__name__)

# 6 MiB behind the head: "too slow". Above what the broker can append between two turns of a
# participant that keeps up (4 MiB inbox + 2 MiB SSH window, measured in bench/), below the ring.
PARTICIPANT_LAG_BYTES = 6 * 1024 * 1024
INBOX_HIGH_WATER_BYTES = 4 * 1024 * 1024  # 4 MiB of unprocessed output: ConnectorLink.drain waits
INBOX_LOW_WATER_BYTES = 1024 * 1024  # 1 MiB: drain returns
YIELD_EVERY_EVENTS = 64  # events handled before letting participants' tasks run
MIN_TIMER_S = 0.01  # never re-arm the deadline timer closer than 10 ms


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Per-session settings: the state machine's limits plus the buffer sizes."""

    limits: Limits = field(default_factory=Limits)
    scrollback_bytes: int = SCROLLBACK_BYTES
    participant_lag_bytes: int = PARTICIPANT_LAG_BYTES
    # Approved execution: the policy gate judges keys and lines; held lines go to approvals.
    gate: PolicyGate | None = None
    approvals: ApprovalPort | None = None


class Broker:
    """Owns one live session; see the module docstring."""

    def __init__(
        self,
        *,
        session_id: SessionId,
        meta: SessionMeta,
        recorder: SessionRecorder,
        uplink: Uplink,
        resume_token: str,
        clock: Clock,
        wall_clock: Clock,
        audit: AuditSink,
        config: BrokerConfig | None = None,
    ) -> None:
        self._config = config or BrokerConfig()
        self._clock = clock
        self._audit = SessionAudit(audit, wall_clock, session_id)
        self._wall = wall_clock
        self._recorder = recorder
        self._uplink: Uplink | None = uplink
        self._token = resume_token
        self._token_hash = hash_token(resume_token)
        self._state = SessionState(session_id, meta, created_at=clock.now(), limits=self._config.limits)
        self._ring = Scrollback(self._config.scrollback_bytes)
        gate = self._config.gate
        self._masker = OutputMasker(gate.redaction if gate is not None else None)
        self._flush_timer: asyncio.TimerHandle | None = None
        self._streams: dict[ParticipantId, Stream] = {}
        self._held: dict[str, tuple[ParticipantId, HeldAction]] = {}
        self.hook_token = ""  # set by the hub; handed to the connector in WELCOME
        self.hook_timeout_s = 0  # set by the hub from the policy; handed to the connector in WELCOME
        self._action_seq = 0
        self._inbox: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._inbox_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._accepting = True
        self._generation = 0
        self._received = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._finished = asyncio.Event()
        self.started_at = wall_clock.now()

    # --- for the hub ---------------------------------------------------------------------

    @property
    def session_id(self) -> SessionId:
        return self._state.session_id

    @property
    def meta(self) -> SessionMeta:
        return self._state.meta

    @property
    def live(self) -> bool:
        return self._accepting

    @property
    def end_reason(self) -> str | None:
        return self._state.end_reason

    @property
    def received(self) -> int:
        """Output bytes accepted from the connector (queued or handled)."""
        return self._received

    def link(self) -> ConnectorLink:
        """The handle of the current connector connection."""
        return ConnectorLink(self, self._generation, self._token)

    def check_resume(self, token: str, owner_id: UserId) -> bool:
        token_ok = hmac.compare_digest(hash_token(token), self._token_hash)
        return token_ok and owner_id == self._state.meta.owner_id

    def reconnect(self, uplink: Uplink) -> ConnectorLink:
        """A resumed connector takes over: older links become inert at once."""
        self._generation += 1
        self.post(ConnectorResumed(self._generation, uplink))
        return self.link()

    def end(self, reason: str) -> None:
        self.post(EndRequest(reason))

    def tick(self) -> None:
        """Check expiries now (the timer does this by itself; tests with a fixed clock call it)."""
        self.post(Tick())

    def recording_failed(self, reason: str) -> None:
        self.post(RecordingFailed(reason))

    async def wait_finished(self) -> None:
        await self._finished.wait()

    def info(self) -> SessionInfo:
        st = self._state
        idle, total = st.remaining(self._clock.now())
        return SessionInfo(
            session_id=st.session_id,
            meta=st.meta,
            started_at=self.started_at,
            cols=st.cols,
            rows=st.rows,
            connector_online=st.connector_online,
            output_bytes=st.output_seq,
            participants=tuple(p.info() for p in st.participants.values()),
            idle_remaining_s=idle,
            max_remaining_s=total,
            refusals=st.refusals,
        )

    # --- inbox ---------------------------------------------------------------------------

    def post(self, event: Event) -> bool:
        if not self._accepting:
            return False
        self._inbox.append(event)
        self._wakeup.set()
        return True

    def connector_event(self, event: LinkEvent) -> None:
        if event.generation != self._generation or not self._accepting:
            return
        if isinstance(event, ConnectorOutput):
            self._received = max(self._received, event.seq + len(event.data))
            self._inbox_bytes += len(event.data)
            if self._inbox_bytes > INBOX_HIGH_WATER_BYTES:
                self._room.clear()
        self.post(event)

    async def drain(self) -> None:
        """Flow control for the connector: wait while the inbox or the recording is behind."""
        while self._accepting:
            if not self._room.is_set():
                await self._room.wait()
                continue
            await self._recorder.drain()
            if self._room.is_set():
                return

    async def attach(
        self,
        user_id: UserId,
        user_name: str,
        mode: Mode,
        resume_from: int | None = None,
        *,
        actor: Actor | None = None,
    ) -> Stream:
        stream = Stream(
            actor=actor,
            session_id=self.session_id,
            participant_id=ParticipantId(new_id("par")),
            user_id=user_id,
            name=user_name,
            mode=mode,
            ring=self._ring,
            post=self.post,
        )
        reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.post(Attach(stream, resume_from, reply)):
            raise NotFound("the session has ended", code="session_ended")
        try:
            await reply
        except asyncio.CancelledError:
            stream.close()
            raise
        return stream

    # --- the task ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the session until it ends, then close its recording."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._recorder.run(), name=f"recorder {self.session_id}")
                try:
                    await self._serve()
                except Exception:
                    log.exception("session %s: broker failed", self.session_id)
                    self._end(EndReason.INTERNAL_ERROR)
                finally:
                    self._stop()
                    await self._recorder.close(self._state.end_reason or EndReason.INTERNAL_ERROR)
        finally:
            self._finished.set()

    async def _serve(self) -> None:
        self._arm_timer()
        while self._state.live:
            if not self._inbox:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            for _ in range(YIELD_EVERY_EVENTS):
                if not self._inbox or not self._state.live:
                    break
                if self._recorder.failed:  # before anything else may reach the uplink
                    self._fail_recording(self._recorder.failure or "the recording could not be written")
                    break
                self._handle(self._inbox.popleft())
            self._arm_timer()
            if self._inbox:
                await asyncio.sleep(0)  # let participants' tasks read what was just added

    def _stop(self) -> None:
        if self._state.live:  # cancelled: still tell everyone
            self._end(EndReason.SHUTDOWN)
        self._accepting = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._room.set()
        while self._inbox:
            event = self._inbox.popleft()
            if isinstance(event, Attach) and not event.reply.done():
                event.reply.set_exception(NotFound("the session has ended", code="session_ended"))

    def _handle(self, event: Event) -> None:
        now = self._clock.now()
        match event:
            case ConnectorOutput():
                self._on_output(event, now)
            case ConnectorResize(_, cols, rows):
                if self._state.connector_resize(cols, rows):
                    self._recorder.resize(cols, rows)
                    self._broadcast({"t": "resize", "cols": cols, "rows": rows})
                else:
                    log.warning("session %s: ignored resize to %dx%d", self.session_id, cols, rows)
            case ConnectorExit(_, code):
                self._flush_output()
                self._recorder.marker(f"owner's program exited with code {code}")
                self._end(EndReason.OWNER_EXITED)
            case ConnectorStop():
                self._end(EndReason.OWNER_STOPPED)
            case ConnectorLost():
                self._uplink = None
                self._state.connector_lost(now)
                self._recorder.marker("connector lost")
                self._audit.connector_lost()
            case ConnectorResumed(_, uplink):
                self._uplink = uplink
                self._state.connector_resumed()
                self._recorder.marker("connector resumed")
                self._audit.connector_resumed(self._received)
            case Attach():
                self._on_attach(event, now)
            case Detach(stream, reason):
                self._remove(stream, reason)
            case ParticipantInput(stream, data):
                stream.action_done()
                self._on_input(stream, data, now)
            case ParticipantSubmit(stream, text):
                stream.action_done()
                self._on_submit(stream, text, now)
            case HeldDecided(action_id, approved, reason):
                self._on_held_decided(action_id, approved, reason)
            case MarkerEvent(label):
                self._recorder.marker(label)
            case ParticipantModeRequest(stream, mode, reason, actor):
                stream.action_done()
                if actor is not None:
                    stream.set_actor(actor)
                self._on_mode_request(stream, mode, reason, now)
            case ParticipantResize(stream, cols, rows):
                stream.action_done()
                verdict = self._state.participant_resize(stream.participant_id, cols, rows, now)
                if isinstance(verdict, Refused):
                    self._refused(stream, verdict, "resize")
            case ParticipantTouch(stream):
                stream.action_done()
                self._state.touch(stream.participant_id, now)
            case Tick():
                self._on_tick(now)
            case EndRequest(reason):
                self._end(reason)
            case RecordingFailed(reason):
                self._fail_recording(reason)
            case FlushHeld():
                self._flush_timer = None
                self._flush_output()

    def _on_output(self, event: ConnectorOutput, now: float) -> None:
        self._inbox_bytes -= len(event.data)
        if self._inbox_bytes <= INBOX_LOW_WATER_BYTES:
            self._room.set()
        placed = self._state.accept_output(event.seq, len(event.data), now)
        if placed.gap:
            log.warning("session %s: %d output bytes missing", self.session_id, placed.gap)
            self._flush_output()
            self._ring.reset(event.seq)
            self._recorder.marker(f"output gap: {placed.gap} bytes missing")
        data = event.data[placed.skip :] if placed.skip else event.data
        if not data:
            return
        self._emit_output(*self._masker.feed(data))
        if self._masker.held and self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(HOLD_S, lambda: self.post(FlushHeld()))

    def _flush_output(self) -> None:
        """Send what the redactor held back (see ``sessions.redact``)."""
        if self._masker.held:
            self._emit_output(*self._masker.flush())

    def _emit_output(self, data: bytes, redacted: Counter[str]) -> None:
        """Output as participants and the recording get it: secrets masked, same length."""
        if data:
            self._ring.append(data)
            self._recorder.output(data)
        if redacted:
            label = describe(redacted)
            self._recorder.marker(label)
            self._audit.redacted(dict(redacted))
        if not data:
            return
        limit = self._config.participant_lag_bytes
        slow = [s for s in self._streams.values() if s.lag() > limit]
        for stream in self._streams.values():
            stream.wake()
        for stream in slow:
            self._remove(stream, LeaveReason.TOO_SLOW)

    def _on_attach(self, event: Attach, now: float) -> None:
        stream, reply = event.stream, event.reply
        if reply.done():  # the caller gave up waiting
            return
        try:
            self._state.attach(stream.participant_id, stream.user_id, stream.name, stream.mode, now)
        except GatewayError as exc:
            stream.finish(exc.message, drain=False)
            reply.set_exception(exc)
            return
        ring = self._ring
        wanted = event.resume_from
        cursor = ring.start if wanted is None else min(max(wanted, ring.start), ring.end)
        stream.begin(cursor)
        idle, total = self._state.remaining(now)
        hello: dict[str, JsonValue] = {
            "t": "hello",
            "session_id": self.session_id,
            "participant_id": stream.participant_id,
            "mode": stream.mode.value,
            "cols": self._state.cols,
            "rows": self._state.rows,
            "seq": cursor,
            "owner": self.meta.owner_name,
            "host": self.meta.host,
            "command": list(self.meta.command),
            "idle_timeout_s": self._state.limits.idle_timeout_s,
            "idle_remaining_s": idle,
            "max_remaining_s": total,
        }
        stream.push(hello, at=cursor)
        if wanted is not None and wanted < ring.start:
            stream.push({"t": "lost", "from": wanted, "to": ring.start}, at=cursor)
        self._streams[stream.participant_id] = stream
        self._broadcast_participants()
        self._recorder.marker(f"join {stream.name} ({stream.mode.value})")
        self._audit.joined(stream, wanted)
        reply.set_result(None)

    def _remove(self, stream: Stream, reason: str) -> None:
        stream.finish(reason, drain=False)
        self._streams.pop(stream.participant_id, None)
        if self._state.detach(stream.participant_id) is None:
            return
        self._broadcast_participants()
        self._recorder.marker(f"leave {stream.name}: {reason}")
        self._audit.left(stream, reason)

    def _forward(self, data: bytes) -> None:
        uplink = self._uplink
        if uplink is None or self._recorder.failed:
            return
        # Recorded (secrets masked) before it reaches the PTY unchanged.
        self._recorder.input(self._masker.mask_once(data)[0])
        try:
            uplink.send_input(data)
        except Exception:
            log.exception("session %s: uplink refused input", self.session_id)

    def _on_input(self, stream: Stream, data: bytes, now: float) -> None:
        verdict = self._state.participant_input(stream.participant_id, now)
        if isinstance(verdict, Forward) and self._uplink is not None:
            self._forward(data)
        elif isinstance(verdict, Judge):
            for key_class, key in classify(data):
                judgement = self._judge(stream, Key(key_class), now)
                if judgement is None or not isinstance(judgement.decision, Allow):
                    self._verdict(stream, "key", key_class.value, judgement, "denied")
                    continue
                self._forward(key)
        elif isinstance(verdict, Refused):
            self._refused(stream, verdict, "input")

    def _judge(self, stream: Stream, action: Action, now: float) -> Judgement | None:
        """The policy's answer, or None (fail closed) when there is no gate or no actor."""
        gate, actor = self._config.gate, stream.actor
        if gate is None or actor is None:
            return None
        try:
            return gate.judge(
                actor,
                meta=self.meta,
                session_id=self.session_id,
                remote=len(self._streams),
                mode=stream.mode,
                action=action,
                now=self._wall.now(),
            )
        except Exception:
            log.exception("session %s: policy failed; denying", self.session_id)
            return None

    def _verdict(
        self,
        stream: Stream,
        kind: str,
        text: str,
        judgement: Judgement | None,
        state: str,
        **extra: JsonValue,
    ) -> None:
        d = judgement.decision if judgement else None
        rule = d.rule if d is not None else "no-policy"
        reason = getattr(d, "reason", "") or ("no policy gate: denied" if d is None else "")
        version = judgement.policy_version if judgement else ""
        self._send(
            stream,
            {
                "t": "verdict",
                "kind": kind,
                "state": state,
                "rule": rule,
                "reason": reason,
                "text": text[:200],
                **extra,
            },
        )
        self._recorder.marker(f"{state} {kind} from {stream.name}: rule {rule} (policy {version})")
        self._audit.decision(stream, kind, state=state, rule=rule, policy_version=version, reason=reason)

    def _on_submit(self, stream: Stream, text: str, now: float) -> None:
        verdict = self._state.participant_input(stream.participant_id, now)
        if isinstance(verdict, Refused):
            self._refused(stream, verdict, "input")
            return
        if isinstance(verdict, Forward):  # privileged: a composed line is just typed
            self._forward(text.replace("\n", "\r").encode() + b"\r")
            return
        judgement = self._judge(stream, SubmitLine(text), now)
        d = judgement.decision if judgement else None
        if isinstance(d, Allow):
            self._verdict(stream, "line", text, judgement, "allowed")
            self._forward(text.replace("\n", "\r").encode() + b"\r")
        elif isinstance(d, Review) and self._config.approvals is not None and judgement is not None:
            self._hold(stream, text, d, judgement.policy_version)
        else:
            self._verdict(stream, "line", text, judgement, "denied")

    def _on_mode_decided(self, pid: ParticipantId, action: HeldAction, approved: bool, reason: str) -> None:
        stream = self._streams.get(pid)
        state = "approved" if approved else "denied"
        self._recorder.marker(f"{state} #{action.seq} ({reason})")
        if stream is None or not self._state.live:
            return
        self._send(
            stream,
            {
                "t": "verdict",
                "kind": "mode",
                "state": state,
                "rule": action.rule,
                "reason": reason,
                "text": action.kind,
                "action_id": action.action_id,
                "seq": action.seq,
            },
        )
        if approved:
            grant = action.grant_s if action.kind == Mode.PRIVILEGED.value else None
            self._set_mode(stream, Mode(action.kind), f"granted ({reason})", grant_s=grant)

    def _hold(self, stream: Stream, text: str, review: Review, version: str, *, kind: str = "line") -> None:
        assert self._config.approvals is not None
        self._action_seq += 1
        seq = self._action_seq
        action = held_action(
            review,
            session_id=self.session_id,
            seq=seq,
            requester_id=stream.user_id,
            requester_name=stream.name,
            owner_id=self.meta.owner_id,
            kind=kind,
            text=text,
            created_at=self._wall.now(),
            policy_version=version,
        )
        self._held[action.action_id] = (stream.participant_id, action)
        self._send(
            stream,
            {
                "t": "verdict",
                "kind": "line",
                "state": "held",
                "rule": review.rule,
                "reason": review.reason,
                "text": text[:200],
                "action_id": action.action_id,
                "seq": seq,
                "timeout_s": review.timeout_s,
            },
        )
        self._recorder.marker(
            f"approval requested #{seq} by {stream.name}: rule {review.rule} (policy {version})"
        )
        self._audit.decision(
            stream, "line", state="held", rule=review.rule, policy_version=version, reason=review.reason
        )

        def decided(aid: str, ok: bool, why: str) -> None:
            self.post(HeldDecided(aid, ok, why))

        self._config.approvals.hold(action, decided)

    # --- mode changes ------------------------------------------------------------------

    def _set_mode(self, stream: Stream, mode: Mode, why: str, *, grant_s: float | None = None) -> None:
        until = self._clock.now() + grant_s if grant_s is not None else None
        if self._state.change_mode(stream.participant_id, mode, grant_until=until) is None:
            return
        stream.set_mode(mode)
        self._recorder.marker(f"mode {stream.name} -> {mode.value}: {why}")
        self._audit.decision(
            stream, "mode", state=mode.value, rule="mode-change", policy_version="", reason=why
        )
        message: dict[str, JsonValue] = {
            "t": "mode",
            "participant_id": stream.participant_id,
            "mode": mode.value,
            "reason": why,
        }
        if grant_s is not None:
            message["grant_s"] = grant_s
        self._send(stream, message)
        holders = [s.name for s in self._streams.values() if s.mode is Mode.PRIVILEGED]
        self._broadcast(
            {
                "t": "privileged",
                "holders": cast(JsonValue, holders),
                "grant_s": grant_s if mode is Mode.PRIVILEGED else None,
            }
        )
        self._broadcast_participants()

    def _on_mode_request(self, stream: Stream, mode: Mode, reason: str, now: float) -> None:
        if stream.participant_id not in self._streams:
            return
        if mode.rank < stream.mode.rank:  # dropping down: always, at once
            self._set_mode(stream, mode, "dropped by the participant")
            return
        if mode is stream.mode:
            return
        judgement = self._judge(stream, RequestMode(mode), now)
        d = judgement.decision if judgement else None
        if isinstance(d, Allow) and mode is not Mode.PRIVILEGED:
            self._set_mode(stream, mode, f"allowed by rule {d.rule}")
        elif isinstance(d, Review) and self._config.approvals is not None and judgement is not None:
            self._hold(
                stream, reason or f"request {mode.value}", d, judgement.policy_version, kind=mode.value
            )
        elif isinstance(d, StepUp):
            self._send(
                stream,
                {
                    "t": "verdict",
                    "kind": "mode",
                    "state": "stepup",
                    "rule": d.rule,
                    "reason": f"present a {' or '.join(d.factors)} first",
                    "text": mode.value,
                    "factors": cast(JsonValue, [f.value for f in d.factors]),
                    "max_age_s": d.max_age_s,
                },
            )
        else:
            # Privileged is never granted without an approver's grant (PRODUCT.md, Modes).
            self._verdict(stream, "mode", mode.value, judgement, "denied")

    def _on_held_decided(self, action_id: str, approved: bool, reason: str) -> None:
        entry = self._held.pop(action_id, None)
        if entry is None:
            return
        pid, action = entry
        if action.kind in (Mode.PRIVILEGED.value, Mode.APPROVED_EXECUTION.value):
            self._on_mode_decided(pid, action, approved, reason)
            return
        state = "approved" if approved else "denied"
        self._recorder.marker(f"{state} #{action.seq} ({reason})")
        stream = self._streams.get(pid)
        if stream is not None:
            self._send(
                stream,
                {
                    "t": "verdict",
                    "kind": "line",
                    "state": state,
                    "rule": action.rule,
                    "reason": reason,
                    "text": action.text[:200],
                    "action_id": action_id,
                    "seq": action.seq,
                },
            )
        if approved and self._state.live:
            self._forward(action.text.replace("\n", "\r").encode() + b"\r")

    def _refused(self, stream: Stream, verdict: Refused, what: str) -> None:
        if not verdict.audit:
            return
        reason = verdict.reason.value
        self._recorder.marker(f"refused {what} from {stream.name} ({reason})")
        self._send(stream, {"t": "refused", "what": what, "reason": reason, "count": verdict.total})
        self._audit.refused(stream, verdict, what)

    def _on_tick(self, now: float) -> None:
        for expiry in self._state.tick(now):
            if isinstance(expiry, SessionExpired):
                self._end(expiry.reason)
                return
            if isinstance(expiry, GrantExpired):
                stream = self._streams.get(expiry.participant_id)
                if stream is not None:
                    self._set_mode(stream, Mode.APPROVED_EXECUTION, "privileged grant expired")
                continue
            if isinstance(expiry, ParticipantExpired):
                stream = self._streams.get(expiry.participant_id)
                if stream is not None:
                    self._remove(stream, LeaveReason.IDLE)
                else:
                    self._state.detach(expiry.participant_id)

    def _fail_recording(self, reason: str) -> None:
        self._state.fail_recording()
        if self._state.live:
            self._audit.recording_failed(reason)
        self._end(EndReason.RECORDING_FAILED)

    def _end(self, reason: str) -> None:
        if self._state.live and not self._recorder.failed:
            self._flush_output()
        if not self._state.end(reason, self._clock.now()):
            return
        for stream in self._streams.values():
            stream.finish(reason, drain=True)
        self._streams.clear()
        approvals = self._config.approvals
        for action_id in list(self._held):
            self._held.pop(action_id)
            if approvals is not None:
                approvals.cancel(action_id, f"session ended: {reason}")
        if self._uplink is not None:
            try:
                self._uplink.send_end(reason)
            except Exception:
                log.exception("session %s: uplink refused the end", self.session_id)
        self._audit.ended(reason, self._state.output_seq, self._state.refusals)

    # --- helpers -------------------------------------------------------------------------

    def _send(self, stream: Stream, message: dict[str, JsonValue], *, replace: bool = False) -> None:
        if not stream.push(message, replace=replace):
            self._remove(stream, LeaveReason.TOO_SLOW)

    def _broadcast(self, message: dict[str, JsonValue], *, replace: bool = False) -> None:
        for stream in list(self._streams.values()):
            self._send(stream, message, replace=replace)

    def _broadcast_participants(self) -> None:
        listed: list[JsonValue] = [
            {"id": p.id, "name": p.name, "mode": p.mode.value} for p in self._state.participants.values()
        ]
        self._broadcast({"t": "participants", "participants": listed}, replace=True)

    def _arm_timer(self) -> None:
        deadline = self._state.next_deadline()
        if deadline is None:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(deadline - self._clock.now(), MIN_TIMER_S)
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.post(Tick())
