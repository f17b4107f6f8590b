"""The seams of the sessions room: what adapters (sshd, httpd) call and what they must provide.

Adapters never touch a broker's state: they hand it events (connector output, participant
input) and receive frames through bounded queues.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NewType, Protocol, TypeAlias

from gateway.core.errors import Conflict
from gateway.core.ids import SessionId, UserId
from gateway.core.modes import Mode
from gateway.policy import Actor

ParticipantId = NewType("ParticipantId", str)

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """What a connector registers: who shares what, where."""

    owner_id: UserId
    owner_name: str
    host: str
    cwd: str
    command: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    cols: int = 80
    rows: int = 24


class Uplink(Protocol):
    """The broker's way back to the connector (implemented by the sshd adapter)."""

    def send_input(self, data: bytes) -> None:
        """Forward allowed remote input to the owner's PTY (never blocks)."""

    def send_end(self, reason: str) -> None:
        """Tell the connector remote control ended (the local program keeps running)."""


class ConnectorHandle(Protocol):
    """What the sshd adapter calls for one connected connector."""

    @property
    def session_id(self) -> SessionId: ...

    @property
    def resume_token(self) -> str: ...

    @property
    def hook_token(self) -> str:
        """The bearer token the session's assistant hooks present (revoked when it ends)."""

    @property
    def hook_timeout_s(self) -> int:
        """The hook timeout ``rcgate share`` gives the assistant (policy's longest review + margins;
        0 when the gateway has no policy to say)."""

    @property
    def received(self) -> int:
        """Output bytes the gateway holds: the connector resends from this offset."""

    def output(self, seq: int, data: bytes) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def exited(self, code: int) -> None: ...

    def stopped(self) -> None: ...

    def connector_lost(self) -> None:
        """The SSH link dropped; the session waits for a resume until its grace period ends."""

    async def drain(self) -> None:
        """Wait while the broker holds too much unprocessed output (flow control).

        ``output`` never drops bytes; an adapter that awaits ``drain`` after each output frame
        (and stops reading its channel meanwhile) keeps the gateway's memory bounded.
        """


class SessionHub(Protocol):
    """The registry of live sessions on this node."""

    async def open_session(self, meta: SessionMeta, uplink: Uplink) -> ConnectorHandle: ...

    async def resume_session(
        self, session_id: SessionId, resume_token: str, owner_id: UserId, uplink: Uplink
    ) -> ConnectorHandle:
        """Reattach a connector after a drop; ``NotFound``/``Forbidden`` when it cannot."""


# --- participants: what the httpd and sshd viewer adapters call ---------------------------------


class StreamClosed(Conflict):
    """The participant's stream has ended (its ``closed`` frame says why)."""

    code = "stream_closed"


@dataclass(frozen=True, slots=True)
class Output:
    """Terminal output: ``data`` starts at byte offset ``seq`` of the session's output stream.

    A participant that reconnects passes ``seq + len(data)`` of the last frame it rendered as
    ``resume_from`` and receives the bytes after it.
    """

    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """A control message for the participant, sent as JSON text: ``{"t": kind, ...}``.

    Kinds: ``hello`` (first frame: session, participant id, mode, size, seq, timeouts),
    ``lost`` (the requested bytes fell out of the scrollback: ``from``, ``to``),
    ``participants`` (the current list), ``resize`` (the terminal size changed),
    ``refused`` (input or resize refused: ``what``, ``reason``, ``count``; once per burst),
    ``closed`` (the last frame: ``reason``, ``resume_from``).
    """

    message: dict[str, JsonValue]

    @property
    def kind(self) -> str:
        return str(self.message.get("t"))


Frame = Output | Control


class ParticipantStream(Protocol):
    """One participant's attachment to one session (returned by ``ParticipantHub.attach``)."""

    @property
    def participant_id(self) -> ParticipantId: ...

    @property
    def session_id(self) -> SessionId: ...

    @property
    def mode(self) -> Mode: ...

    @property
    def closed_reason(self) -> str | None:
        """Why the stream ended, once it has."""

    async def next(self) -> Frame:
        """The next frame; after the ``closed`` control frame, raises ``StreamClosed``."""

    async def send_input(self, data: bytes) -> None:
        """Offer input; the broker decides (view_only: refused and counted, never forwarded).

        Waits while this participant has too many actions in flight (backpressure);
        ``PayloadTooLarge`` over the size limit, ``StreamClosed`` once closed.
        """

    async def resize(self, cols: int, rows: int) -> None:
        """Report the participant's terminal size (refused and counted for view_only)."""

    async def submit(self, text: str) -> None:
        """A composed text: one action that policy allows, denies or holds (approved execution)."""

    async def request_mode(self, mode: Mode, reason: str, *, actor: Actor | None = None) -> None:
        """Ask to move up a mode (policy + approval as configured) or drop down (at once)."""

    def touch(self) -> None:
        """The person is active (keeps the participant idle timer from expiring)."""

    def close(self) -> None:
        """Leave the session (idempotent)."""


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    participant_id: ParticipantId
    user_id: UserId
    name: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A snapshot of one live session, for lists and admin pages."""

    session_id: SessionId
    meta: SessionMeta
    started_at: float  # wall clock, seconds since the epoch
    cols: int
    rows: int
    connector_online: bool
    output_bytes: int
    participants: tuple[ParticipantInfo, ...]
    idle_remaining_s: float
    max_remaining_s: float
    refusals: int = 0  # participant actions refused so far (view_only input, bad resizes ...)


class ParticipantHub(Protocol):
    """Participant-side operations on this node's live sessions."""

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
        """Join after the adapter checked the link, the login and policy.

        ``actor`` (the user's role, groups, factor state) is what the policy gate judges the
        participant's actions with; approved execution needs it.

        ``NotFound`` if the session is not live, ``Forbidden`` if ``mode`` cannot be granted.
        """

    async def end(self, session_id: SessionId, reason: str) -> None:
        """End remote control now (admin, CLI); returns when the recording is closed."""

    def sessions(self) -> Sequence[SessionInfo]: ...

    def session(self, session_id: SessionId) -> SessionInfo:
        """``NotFound`` if the session is not live on this node."""

    def session_for_hook_token(self, token: str) -> SessionInfo | None:
        """The live session whose assistant hooks present ``token`` (None: unknown or ended)."""

    def mark(self, session_id: SessionId, label: str) -> None:
        """A marker in the session's recording (an assistant's tool call and its decision)."""


# --- recording: what the sessions room needs from gateway.recording ----------------------------


class SessionRecorder(Protocol):
    """One session's recording. Calls never block; writing happens off the event loop."""

    @property
    def failed(self) -> bool:
        """True once a write failed: nothing more may happen remotely (fail closed)."""

    @property
    def failure(self) -> str | None:
        """Why it failed (for the audit event), once it has."""

    def output(self, data: bytes) -> None: ...

    def input(self, data: bytes) -> None:
        """Remote input that reached the PTY."""

    def resize(self, cols: int, rows: int) -> None: ...

    def marker(self, label: str) -> None: ...

    async def drain(self) -> None:
        """Wait while too much is unwritten (the broker's flow control waits on it)."""

    async def run(self) -> None:
        """The writer loop; returns after ``close`` (or a failure)."""

    async def close(self, end_reason: str) -> None:
        """Write the end marker, flush and close the file."""


class RecorderFactory(Protocol):
    """Opens the recording of a new session (the file exists when this returns)."""

    async def __call__(
        self, session_id: SessionId, meta: SessionMeta, on_failure: Callable[[str], None]
    ) -> SessionRecorder: ...


# --- approvals: held actions (approved execution, privileged requests, tool calls) ---------------


@dataclass(frozen=True, slots=True)
class HeldAction:
    """An action policy sent to review: the exact thing an approver signs.

    ``digest`` is ``approval_records.action_digest`` of (session_id, seq, requester_id, kind, text):
    the WebAuthn challenge of an approval is derived from it, so the signature proves who
    approved exactly what.
    """

    action_id: str
    session_id: SessionId
    seq: int  # the session's action sequence number
    requester_id: UserId
    requester_name: str
    owner_id: UserId
    kind: str  # "line" | "key" | "privileged" | "tool"
    text: str  # the exact submitted text (or key name, or tool call JSON)
    rule: str
    reason: str
    approver_users: tuple[str, ...]
    approver_groups: tuple[str, ...]
    approver_roles: tuple[str, ...]
    approver_owner: bool
    quorum: int
    allow_self_approval: bool
    timeout_s: float
    created_at: float  # wall clock
    policy_version: str
    digest: str
    grant_s: float = 15 * 60  # a privileged grant lasts this long once approved (policy's max_grant_s)


Decided = Callable[[str, bool, str], None]
"""``(action_id, approved, reason)``: called once per held action (approval, denial or timeout)."""


class ApprovalPort(Protocol):
    """Where the broker sends actions policy holds for review (implemented by the approvals service)."""

    def hold(self, action: HeldAction, on_decided: Decided) -> None:
        """Queue for approvers; ``on_decided`` is called once, from the event loop, never re-entrantly."""

    def cancel(self, action_id: str, reason: str) -> None:
        """The session ended or the requester left: deny what is still pending."""
