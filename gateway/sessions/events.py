"""What a session's broker consumes: typed events from the connector, participants and timers.

Adapters never change a session directly: their calls become one of these events in the
broker's queue (ARCHITECTURE.md principle 4), and the broker's task handles them in order.
Connector events carry the ``generation`` of the connection that sent them, so a link that
was replaced by a resume can no longer affect the session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.modes import Mode
from gateway.policy import Actor
from gateway.sessions.ports import Uplink

if TYPE_CHECKING:
    from gateway.sessions.stream import Stream


@dataclass(frozen=True, slots=True)
class ConnectorOutput:
    generation: int
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectorResize:
    generation: int
    cols: int
    rows: int


@dataclass(frozen=True, slots=True)
class ConnectorExit:
    generation: int
    code: int


@dataclass(frozen=True, slots=True)
class ConnectorStop:
    generation: int


@dataclass(frozen=True, slots=True)
class ConnectorLost:
    generation: int


@dataclass(frozen=True, slots=True)
class ConnectorResumed:
    generation: int
    uplink: Uplink


@dataclass(frozen=True, slots=True)
class Attach:
    stream: Stream
    resume_from: int | None
    reply: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Detach:
    stream: Stream
    reason: str


@dataclass(frozen=True, slots=True)
class ParticipantInput:
    stream: Stream
    data: bytes


@dataclass(frozen=True, slots=True)
class ParticipantSubmit:
    """A composed text from the composer (approved execution): one action, however many lines."""

    stream: Stream
    text: str


@dataclass(frozen=True, slots=True)
class ParticipantModeRequest:
    stream: Stream
    mode: Mode
    reason: str
    actor: Actor | None = None  # the participant's factor state now (a step-up may have refreshed it)


@dataclass(frozen=True, slots=True)
class MarkerEvent:
    """A marker from outside the session's participants (an assistant's tool call, its decision)."""

    label: str


@dataclass(frozen=True, slots=True)
class HeldDecided:
    """An approver (or the timeout) decided a held action."""

    action_id: str
    approved: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ParticipantResize:
    stream: Stream
    cols: int
    rows: int


@dataclass(frozen=True, slots=True)
class ParticipantTouch:
    stream: Stream


@dataclass(frozen=True, slots=True)
class Tick:
    """Check expiries now (posted by the broker's timer, or by a test)."""


@dataclass(frozen=True, slots=True)
class EndRequest:
    reason: str


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class FlushHeld:
    """Output held back by the redactor waited long enough: send it (masked as well as can be)."""


LinkEvent = ConnectorOutput | ConnectorResize | ConnectorExit | ConnectorStop | ConnectorLost
"""What a connector link posts (a resume is posted by the broker itself)."""
ConnectorEvent = LinkEvent | ConnectorResumed
ParticipantEvent = Attach | Detach | ParticipantInput | ParticipantResize | ParticipantTouch
Event = (
    ConnectorEvent
    | ParticipantEvent
    | ParticipantSubmit
    | ParticipantModeRequest
    | HeldDecided
    | MarkerEvent
    | Tick
    | EndRequest
    | RecordingFailed
    | FlushHeld
)
