"""A participant's stream: frames out of one session, actions into its broker.

Output is not copied per participant. The stream keeps a cursor (a seq) into the session's
scrollback ring and ``next()`` reads from it; the broker only wakes the stream when new bytes
arrive and cuts it off ("too slow") when it lags more than the session allows. So a
participant's "queue" is a bounded window of the shared ring plus a short deque of control
frames, and a slow one costs nothing to the connector or the others (ARCHITECTURE.md,
asyncio conventions; sshx ``session.rs`` ``add_data``).

Control frames carry the seq at which they happened and are delivered in order with the
output, e.g. a resize arrives after the bytes printed before it.

Actions (input, resize, touch) go into the broker's queue. Each stream may have at most
``MAX_PENDING_ACTIONS`` of them in flight; ``send_input`` and ``resize`` wait for room, so a
flooding participant slows only itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.core.errors import PayloadTooLarge
from gateway.core.ids import SessionId, UserId
from gateway.core.modes import Mode
from gateway.policy import Actor
from gateway.sessions.events import (
    Detach,
    Event,
    ParticipantInput,
    ParticipantModeRequest,
    ParticipantResize,
    ParticipantSubmit,
    ParticipantTouch,
)
from gateway.sessions.ports import Control, Frame, JsonValue, Output, ParticipantId, StreamClosed
from gateway.sessions.scrollback import Scrollback
from gateway.sessions.state import LeaveReason

MAX_INPUT_BYTES = 64 * 1024  # 64 KiB per input message; a paste larger than this is split
MAX_OUTPUT_FRAME_BYTES = 256 * 1024  # 256 KiB per output frame (RECIPES §5: coalesce writes)
MAX_PENDING_ACTIONS = 64  # actions in the broker's queue per participant before senders wait
MAX_PENDING_CONTROLS = 256  # control frames a participant may leave unread before it is cut off


class Stream:
    """One participant's attachment; implements ``ports.ParticipantStream``."""

    __slots__ = (
        "_actor",
        "_base",
        "_controls",
        "_cursor",
        "_done",
        "_drain_to",
        "_final_reason",
        "_mode",
        "_name",
        "_participant_id",
        "_pending",
        "_post",
        "_ring",
        "_room",
        "_session_id",
        "_user_id",
        "_wake",
    )

    def __init__(
        self,
        *,
        session_id: SessionId,
        participant_id: ParticipantId,
        user_id: UserId,
        name: str,
        mode: Mode,
        ring: Scrollback,
        post: Callable[[Event], bool],
        actor: Actor | None = None,
    ) -> None:
        self._actor = actor
        self._session_id = session_id
        self._participant_id = participant_id
        self._user_id = user_id
        self._name = name
        self._mode = mode
        self._ring = ring
        self._post = post
        self._cursor = ring.end
        self._base = ring.end
        self._controls: deque[tuple[int, Control]] = deque()
        self._final_reason: str | None = None  # set when closing; the closed frame is pending
        self._drain_to: int | None = None  # deliver output up to here before the closed frame
        self._done = False  # the closed frame was delivered (or the participant left)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._pending = 0

    # --- ParticipantStream ---------------------------------------------------------------

    @property
    def participant_id(self) -> ParticipantId:
        return self._participant_id

    @property
    def session_id(self) -> SessionId:
        return self._session_id

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Called by the broker only, when a mode change took effect."""
        self._mode = mode

    @property
    def user_id(self) -> UserId:
        return self._user_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed_reason(self) -> str | None:
        return self._final_reason

    async def next(self) -> Frame:
        while True:
            frame = self._poll()
            if frame is not None:
                return frame
            self._wake.clear()
            await self._wake.wait()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Frame:
        try:
            return await self.next()
        except StreamClosed:
            raise StopAsyncIteration from None

    async def send_input(self, data: bytes) -> None:
        if len(data) > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"input over {MAX_INPUT_BYTES} bytes")
        if data:
            await self._act(ParticipantInput(self, data))

    async def resize(self, cols: int, rows: int) -> None:
        await self._act(ParticipantResize(self, cols, rows))

    async def request_mode(self, mode: Mode, reason: str, *, actor: Actor | None = None) -> None:
        """Ask to move up (policy, maybe approval) or drop down (always, at once)."""
        await self._act(ParticipantModeRequest(self, mode, reason[:500], actor))

    def set_actor(self, actor: Actor) -> None:
        """Called by the broker only: the participant's newer factor state."""
        self._actor = actor

    async def submit(self, text: str) -> None:
        """A composed text (approved execution): policy decides it as one action."""
        if len(text.encode()) > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"input over {MAX_INPUT_BYTES} bytes")
        await self._act(ParticipantSubmit(self, text))

    @property
    def actor(self) -> Actor | None:
        """Who this participant is to policy (role, groups, factor state at join)."""
        return self._actor

    def touch(self) -> None:
        # Idempotent: when the participant already has actions in flight, one more is pointless.
        if self._final_reason is not None or self._pending >= MAX_PENDING_ACTIONS:
            return
        if self._post(ParticipantTouch(self)):
            self._pending += 1

    def close(self) -> None:
        if self._final_reason is not None:
            return
        self._final_reason = LeaveReason.LEFT
        self._done = True
        self._controls.clear()
        self._post(Detach(self, LeaveReason.LEFT))
        self._wake.set()
        self._room.set()

    # --- broker side ---------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        return self._cursor

    @property
    def closing(self) -> bool:
        return self._final_reason is not None

    def lag(self) -> int:
        """Bytes behind the head, not counting the replay it was given on attaching."""
        return self._ring.end - max(self._cursor, self._base)

    def begin(self, cursor: int) -> None:
        """Start delivering at ``cursor``; bytes before the current head are replay."""
        self._cursor = cursor
        self._base = self._ring.end

    def push(self, message: dict[str, JsonValue], *, at: int | None = None, replace: bool = False) -> bool:
        """Queue a control frame, delivered after the output before ``at`` (default: the head).

        With ``replace``, an unread frame of the same kind at the end of the queue is dropped
        first (only the latest participant list matters). False if too many are unread (the
        broker then cuts the participant off).
        """
        if self._final_reason is not None:
            return True
        seq = self._ring.end if at is None else at
        if replace and self._controls and self._controls[-1][1].message.get("t") == message.get("t"):
            self._controls.pop()
        if len(self._controls) >= MAX_PENDING_CONTROLS:
            return False
        self._controls.append((seq, Control(message)))
        self._wake.set()
        return True

    def wake(self) -> None:
        self._wake.set()

    def action_done(self) -> None:
        self._pending -= 1
        self._room.set()

    def finish(self, reason: str, *, drain: bool) -> None:
        """End the stream: with ``drain``, output already held is delivered first."""
        if self._final_reason is not None:
            return
        self._final_reason = reason
        if drain:
            self._drain_to = self._ring.end
        else:
            self._controls.clear()
        self._wake.set()
        self._room.set()

    # --- internals -----------------------------------------------------------------------

    async def _act(self, event: Event) -> None:
        while self._pending >= MAX_PENDING_ACTIONS and self._final_reason is None:
            self._room.clear()
            await self._room.wait()
        if self._final_reason is not None or not self._post(event):
            raise StreamClosed(f"stream closed: {self._final_reason or 'session ended'}")
        self._pending += 1

    def _poll(self) -> Frame | None:
        if self._done:
            raise StreamClosed(f"stream closed: {self._final_reason}")
        if self._final_reason is not None and self._drain_to is None:
            return self._closed_frame()
        ring = self._ring
        if self._controls and self._controls[0][0] <= self._cursor:
            return self._controls.popleft()[1]
        if self._cursor < ring.start:
            lost_from, self._cursor = self._cursor, ring.start
            return Control({"t": "lost", "from": lost_from, "to": ring.start})
        limit = ring.end
        if self._controls:
            limit = min(limit, self._controls[0][0])
        if self._drain_to is not None:
            limit = min(limit, self._drain_to)
        if self._cursor < limit:
            seq = self._cursor
            data = ring.read(seq, min(limit - seq, MAX_OUTPUT_FRAME_BYTES))
            self._cursor = seq + len(data)
            return Output(seq, data)
        if self._controls:  # due at a seq the ring skipped (a gap): deliver now
            return self._controls.popleft()[1]
        if self._drain_to is not None:
            return self._closed_frame()
        return None

    def _closed_frame(self) -> Control:
        self._done = True
        return Control({"t": "closed", "reason": self._final_reason, "resume_from": self._cursor})
