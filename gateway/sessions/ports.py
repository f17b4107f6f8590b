"""The seams of the sessions room: what adapters (sshd, httpd) call and what they must provide.

Adapters never touch a broker's state: they hand it events (connector output, participant
input) and receive frames through bounded queues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.core.ids import SessionId, UserId


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
    def received(self) -> int:
        """Output bytes the gateway holds: the connector resends from this offset."""

    def output(self, seq: int, data: bytes) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def exited(self, code: int) -> None: ...

    def stopped(self) -> None: ...

    def connector_lost(self) -> None:
        """The SSH link dropped; the session waits for a resume until its grace period ends."""


class SessionHub(Protocol):
    """The registry of live sessions on this node."""

    async def open_session(self, meta: SessionMeta, uplink: Uplink) -> ConnectorHandle: ...

    async def resume_session(
        self, session_id: SessionId, resume_token: str, owner_id: UserId, uplink: Uplink
    ) -> ConnectorHandle:
        """Reattach a connector after a drop; ``NotFound``/``Forbidden`` when it cannot."""
