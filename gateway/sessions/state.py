"""The pure state machine of one live session: participants, modes, output sequence, expiry.

Theory of operation
-------------------
Everything that decides what a session may do lives here, and nothing else: no asyncio, no
clock, no sockets. Every method that depends on time takes ``now`` (monotonic seconds), and
every decision is returned as a value. The broker (``gateway.sessions.broker``) is the only
caller; it owns the I/O (fan-out, recording, the uplink) and acts on what this machine says.

A session is ``live`` until it is ``ended`` with a reason; the transition happens once and
every later action is refused. It ends by:

    cause                                   reason
    no output and no forwarded input for    EndReason.IDLE        (tick)
      ``idle_timeout_s``
    ``max_duration_s`` after it started     EndReason.MAX_DURATION (tick)
    connector gone for ``connector_grace_s`` EndReason.CONNECTOR_LOST (tick)
    owner's program exited / owner stopped  EndReason.OWNER_EXITED / OWNER_STOPPED
    recording could not be written          EndReason.RECORDING_FAILED
    admin or CLI                            any reason text (``end``)

Participants join in a mode. Only the modes in ``Limits.grantable_modes`` may be granted
(``view_only`` unless the gateway runs a policy gate). Every participant action goes through one gate:

    participant_input   view_only            -> Refused(VIEW_ONLY)
                        recording failed     -> Refused(RECORDING_FAILED)
                        connector offline    -> Refused(CONNECTOR_OFFLINE)
                        approved_execution   -> Judge (the broker asks policy about each key
                                                and composed line; fail closed)
                        privileged           -> Forward (counts as session activity)
    participant_resize  view_only            -> Refused(VIEW_ONLY)
                        bad size             -> Refused(BAD_SIZE)
                        otherwise            -> Ignored (the owner's terminal sets the size)

Each refusal is counted (per participant and per session). A refusal is *audited* only if it
opens a burst window: the first refusal, or the first one ``refusal_burst_s`` or more after
the refusal that opened the previous window; it then carries how many refusals were not
audited since. So a participant who holds a key down yields one audit event per window.

Any action by a participant (input, resize, even refused; or ``touch``) resets that
participant's idle timer; ``tick`` expires participants idle for ``participant_idle_timeout_s``.

Output is addressed by byte offset (``seq``): ``accept_output`` compares a chunk's offset with
the bytes already held, so a connector that resends after a reconnect is deduplicated
(``skip``), and a chunk that starts beyond them reports the hole (``gap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.errors import Conflict, Forbidden, NotFound
from gateway.core.ids import SessionId, UserId
from gateway.core.modes import Mode
from gateway.sessions.ports import ParticipantId, ParticipantInfo, SessionMeta

IDLE_TIMEOUT_S = 15 * 60.0  # PRODUCT.md "Expiry": NIST SP 800-63B AAL3 inactivity
MAX_DURATION_S = 8 * 3600.0  # absolute maximum length of remote control
PARTICIPANT_IDLE_TIMEOUT_S = 15 * 60.0
CONNECTOR_GRACE_S = 60.0  # how long a dropped connector may take to resume
REFUSAL_BURST_S = 5.0  # one audit event per burst window of refusals
MAX_TERMINAL_COLS = 1000  # characters; anything larger is a mistake or an attack
MAX_TERMINAL_ROWS = 1000


class Status(StrEnum):
    LIVE = "live"
    ENDED = "ended"


class EndReason(StrEnum):
    """Why remote control ended: shown to participants, sent to the connector, recorded."""

    IDLE = "idle timeout"
    MAX_DURATION = "maximum session length reached"
    OWNER_EXITED = "owner's program exited"
    OWNER_STOPPED = "owner stopped sharing"
    CONNECTOR_LOST = "connector lost"
    RECORDING_FAILED = "recording failed"
    ENDED_BY_ADMIN = "ended by an admin"
    SHUTDOWN = "gateway shutting down"
    INTERNAL_ERROR = "internal error"


class LeaveReason(StrEnum):
    """Why one participant left while the session goes on."""

    LEFT = "left"
    TOO_SLOW = "too slow"
    IDLE = "participant idle timeout"
    REMOVED = "removed"


class RefusalReason(StrEnum):
    VIEW_ONLY = "view_only"
    APPROVAL_UNAVAILABLE = "approval not available"
    RECORDING_FAILED = "recording failed"
    CONNECTOR_OFFLINE = "connector offline"
    BAD_SIZE = "bad terminal size"
    NOT_ATTACHED = "not attached"


@dataclass(frozen=True, slots=True)
class Limits:
    """The timeouts and grants of a session (policy will set them per session later)."""

    idle_timeout_s: float = IDLE_TIMEOUT_S
    max_duration_s: float = MAX_DURATION_S
    participant_idle_timeout_s: float = PARTICIPANT_IDLE_TIMEOUT_S
    connector_grace_s: float = CONNECTOR_GRACE_S
    refusal_burst_s: float = REFUSAL_BURST_S
    grantable_modes: frozenset[Mode] = frozenset({Mode.VIEW_ONLY})


@dataclass(frozen=True, slots=True)
class Forward:
    """Forward the input to the PTY (and record it)."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """Accepted but nothing to do (a participant's resize does not resize the owner's PTY)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Not forwarded. ``audit`` is True for the first refusal of a burst window;
    ``unaudited`` counts the refusals since the previous audited one."""

    reason: RefusalReason
    audit: bool
    total: int
    unaudited: int = 0


@dataclass(frozen=True, slots=True)
class Judge:
    """Approved execution: policy decides each key or composed line before anything is forwarded."""


InputVerdict = Forward | Judge | Refused
ResizeVerdict = Ignored | Refused


@dataclass(frozen=True, slots=True)
class SessionExpired:
    reason: EndReason


@dataclass(frozen=True, slots=True)
class ParticipantExpired:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class GrantExpired:
    """A privileged grant ran out: the participant drops back to approved execution."""

    participant_id: ParticipantId


Expiry = SessionExpired | ParticipantExpired | GrantExpired


@dataclass(frozen=True, slots=True)
class OutputAccepted:
    """``skip`` leading bytes were already held; ``gap`` bytes are missing before the chunk."""

    skip: int
    gap: int


@dataclass(slots=True)
class Participant:
    id: ParticipantId
    user_id: UserId
    name: str
    mode: Mode
    joined_at: float
    last_active: float
    refusals: int = 0
    unaudited: int = 0
    burst_opened_at: float | None = None
    grant_until: float | None = None  # privileged: the grant ends here (then approved execution)

    def info(self) -> ParticipantInfo:
        return ParticipantInfo(self.id, self.user_id, self.name, self.mode)


def valid_size(cols: int, rows: int) -> bool:
    return 1 <= cols <= MAX_TERMINAL_COLS and 1 <= rows <= MAX_TERMINAL_ROWS


@dataclass(slots=True)
class SessionState:
    """One session's state; see the module docstring for the rules."""

    session_id: SessionId
    meta: SessionMeta
    created_at: float
    limits: Limits = field(default_factory=Limits)
    status: Status = Status.LIVE
    end_reason: str | None = None
    ended_at: float | None = None
    output_seq: int = 0  # bytes of output held: the offset of the next byte
    last_activity: float = 0.0
    cols: int = 80
    rows: int = 24
    connector_online: bool = True
    connector_lost_at: float | None = None
    recording_failed: bool = False
    refusals: int = 0
    participants: dict[ParticipantId, Participant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last_activity = self.created_at
        if valid_size(self.meta.cols, self.meta.rows):
            self.cols, self.rows = self.meta.cols, self.meta.rows

    @property
    def live(self) -> bool:
        return self.status is Status.LIVE

    # --- connector side ------------------------------------------------------------------

    def accept_output(self, seq: int, size: int, now: float) -> OutputAccepted:
        """Place a chunk of ``size`` bytes starting at offset ``seq`` in the output stream."""
        if not self.live:
            return OutputAccepted(skip=size, gap=0)
        skip = min(max(self.output_seq - seq, 0), size)
        gap = max(seq - self.output_seq, 0)
        fresh = size - skip
        if fresh > 0:
            self.output_seq += gap + fresh
            self.last_activity = now
        return OutputAccepted(skip=skip, gap=gap)

    def connector_resize(self, cols: int, rows: int) -> bool:
        """The owner's terminal changed size; False (and no change) for an absurd size."""
        if not self.live or not valid_size(cols, rows):
            return False
        self.cols, self.rows = cols, rows
        return True

    def connector_lost(self, now: float) -> None:
        if self.live and self.connector_online:
            self.connector_online = False
            self.connector_lost_at = now

    def connector_resumed(self) -> None:
        if self.live:
            self.connector_online = True
            self.connector_lost_at = None

    def fail_recording(self) -> None:
        self.recording_failed = True

    # --- participants --------------------------------------------------------------------

    def attach(self, pid: ParticipantId, user_id: UserId, name: str, mode: Mode, now: float) -> Participant:
        if not self.live:
            raise NotFound("the session has ended", code="session_ended")
        if mode not in self.limits.grantable_modes:
            raise Forbidden(f"mode {mode.value} cannot be granted on this session", code="mode_not_grantable")
        if pid in self.participants:
            raise Conflict("participant already attached")
        p = Participant(pid, user_id, name, mode, joined_at=now, last_active=now)
        self.participants[pid] = p
        return p

    def detach(self, pid: ParticipantId) -> Participant | None:
        return self.participants.pop(pid, None)

    def touch(self, pid: ParticipantId, now: float) -> None:
        p = self.participants.get(pid)
        if p is not None:
            p.last_active = now

    def participant_input(self, pid: ParticipantId, now: float) -> InputVerdict:
        """The single gate for remote input (see the table in the module docstring)."""
        p = self.participants.get(pid)
        if p is None or not self.live:
            return Refused(RefusalReason.NOT_ATTACHED, audit=False, total=self.refusals)
        p.last_active = now
        if p.mode is Mode.VIEW_ONLY:
            return self._refuse(p, RefusalReason.VIEW_ONLY, now)
        if self.recording_failed:
            return self._refuse(p, RefusalReason.RECORDING_FAILED, now)
        if not self.connector_online:
            return self._refuse(p, RefusalReason.CONNECTOR_OFFLINE, now)
        self.last_activity = now
        if p.mode is Mode.APPROVED_EXECUTION:
            return Judge()
        return Forward()

    def participant_resize(self, pid: ParticipantId, cols: int, rows: int, now: float) -> ResizeVerdict:
        p = self.participants.get(pid)
        if p is None or not self.live:
            return Refused(RefusalReason.NOT_ATTACHED, audit=False, total=self.refusals)
        p.last_active = now
        if p.mode is Mode.VIEW_ONLY:
            return self._refuse(p, RefusalReason.VIEW_ONLY, now)
        if not valid_size(cols, rows):
            return self._refuse(p, RefusalReason.BAD_SIZE, now)
        return Ignored()

    def _refuse(self, p: Participant, reason: RefusalReason, now: float) -> Refused:
        p.refusals += 1
        self.refusals += 1
        opened = p.burst_opened_at
        if opened is None or now - opened >= self.limits.refusal_burst_s:
            unaudited, p.unaudited, p.burst_opened_at = p.unaudited, 0, now
            return Refused(reason, audit=True, total=p.refusals, unaudited=unaudited)
        p.unaudited += 1
        return Refused(reason, audit=False, total=p.refusals)

    # --- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> list[Expiry]:
        """What has expired at ``now``: the session (then nothing else), or participants."""
        if not self.live:
            return []
        reason = self._session_expiry(now)
        if reason is not None:
            return [SessionExpired(reason)]
        limit = self.limits.participant_idle_timeout_s
        expired: list[Expiry] = [
            GrantExpired(p.id)
            for p in self.participants.values()
            if p.grant_until is not None and now >= p.grant_until
        ]
        expired += [
            ParticipantExpired(p.id) for p in self.participants.values() if now - p.last_active >= limit
        ]
        return expired

    def change_mode(
        self, pid: ParticipantId, mode: Mode, *, grant_until: float | None = None
    ) -> Participant | None:
        """Move a participant to ``mode`` (a grant of privileged mode carries its end)."""
        p = self.participants.get(pid)
        if p is None or not self.live:
            return None
        p.mode = mode
        p.grant_until = grant_until if mode is Mode.PRIVILEGED else None
        return p

    def _session_expiry(self, now: float) -> EndReason | None:
        if now - self.created_at >= self.limits.max_duration_s:
            return EndReason.MAX_DURATION
        if (
            self.connector_lost_at is not None
            and now - self.connector_lost_at >= self.limits.connector_grace_s
        ):
            return EndReason.CONNECTOR_LOST
        if now - self.last_activity >= self.limits.idle_timeout_s:
            return EndReason.IDLE
        return None

    def next_deadline(self) -> float | None:
        """The earliest instant at which ``tick`` may report an expiry (None once ended)."""
        if not self.live:
            return None
        deadlines = [
            self.created_at + self.limits.max_duration_s,
            self.last_activity + self.limits.idle_timeout_s,
        ]
        if self.connector_lost_at is not None:
            deadlines.append(self.connector_lost_at + self.limits.connector_grace_s)
        if self.participants:
            oldest = min(p.last_active for p in self.participants.values())
            deadlines.append(oldest + self.limits.participant_idle_timeout_s)
            deadlines += [p.grant_until for p in self.participants.values() if p.grant_until is not None]
        return min(deadlines)

    def remaining(self, now: float) -> tuple[float, float]:
        """Seconds left before the idle timeout and before the maximum length."""
        idle = self.last_activity + self.limits.idle_timeout_s - now
        total = self.created_at + self.limits.max_duration_s - now
        return max(idle, 0.0), max(total, 0.0)

    # --- ending --------------------------------------------------------------------------

    def end(self, reason: str, now: float) -> bool:
        """End remote control; True if this call ended it (later calls change nothing)."""
        if not self.live:
            return False
        self.status = Status.ENDED
        self.end_reason = reason
        self.ended_at = now
        return True
