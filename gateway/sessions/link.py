"""A connector connection's handle on its session (``ports.ConnectorHandle``), and its token.

Each connection (the first, and each resume) gets a link with a new ``generation``; the broker
ignores events from any generation but the current one, so a half-dead old connection cannot
affect the session once a resume replaced it.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from gateway.core.ids import SessionId
from gateway.sessions.events import (
    ConnectorExit,
    ConnectorLost,
    ConnectorOutput,
    ConnectorResize,
    ConnectorStop,
    LinkEvent,
)


def hash_token(token: str) -> bytes:
    """What the broker keeps of a resume token (compared with ``hmac.compare_digest``)."""
    return hashlib.sha256(token.encode()).digest()


class LinkTarget(Protocol):
    """The broker, as a link sees it."""

    @property
    def session_id(self) -> SessionId: ...

    @property
    def received(self) -> int: ...

    hook_token: str
    hook_timeout_s: int

    def connector_event(self, event: LinkEvent) -> None: ...

    async def drain(self) -> None: ...


class ConnectorLink:
    """Implements ``ports.ConnectorHandle`` for one connection of one session."""

    __slots__ = ("_generation", "_target", "_token")

    def __init__(self, target: LinkTarget, generation: int, token: str) -> None:
        self._target = target
        self._generation = generation
        self._token = token

    @property
    def session_id(self) -> SessionId:
        return self._target.session_id

    @property
    def resume_token(self) -> str:
        return self._token

    @property
    def hook_token(self) -> str:
        """The bearer token of this session's assistant hooks (RCGATE_HOOK_TOKEN)."""
        return self._target.hook_token

    @property
    def hook_timeout_s(self) -> int:
        """The hook timeout the assistant should be given (0: the gateway does not say)."""
        return self._target.hook_timeout_s

    @property
    def received(self) -> int:
        return self._target.received

    def output(self, seq: int, data: bytes) -> None:
        self._target.connector_event(ConnectorOutput(self._generation, seq, data))

    def resize(self, cols: int, rows: int) -> None:
        self._target.connector_event(ConnectorResize(self._generation, cols, rows))

    def exited(self, code: int) -> None:
        self._target.connector_event(ConnectorExit(self._generation, code))

    def stopped(self) -> None:
        self._target.connector_event(ConnectorStop(self._generation))

    def connector_lost(self) -> None:
        self._target.connector_event(ConnectorLost(self._generation))

    async def drain(self) -> None:
        await self._target.drain()
