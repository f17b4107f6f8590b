"""The audit events of one session: who joined, left, was refused; how the session ended.

Events go to an ``AuditSink`` synchronously (the hub queues them for the store), so emitting
one never makes the broker wait. ``detail`` never holds typed input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from gateway.core.audit import AuditType
from gateway.core.clock import Clock
from gateway.core.ids import SessionId
from gateway.core.models import AuditEvent
from gateway.sessions.state import Refused
from gateway.sessions.stream import Stream

log = logging.getLogger(__name__)

AuditSink = Callable[[AuditEvent], None]
Detail = dict[str, str | int | float | bool | None]

# Audit types not (yet) in core.audit.AuditType.
AUDIT_CONNECTOR_LOST = "session.connector_lost"
AUDIT_CONNECTOR_RESUMED = "session.connector_resumed"
AUDIT_RESUME_REFUSED = "session.resume_refused"
AUDIT_RECORDING_FAILED = "recording.failed"
AUDIT_REDACTED = "session.redacted"


class SessionAudit:
    """Builds and emits one session's audit events."""

    __slots__ = ("_sink", "_subject", "_wall")

    def __init__(self, sink: AuditSink, wall_clock: Clock, session_id: SessionId) -> None:
        self._sink = sink
        self._wall = wall_clock
        self._subject = session_id

    def emit(
        self,
        type_: str,
        *,
        actor: str = "system",
        outcome: Literal["ok", "fail", "info"] = "info",
        detail: Detail | None = None,
    ) -> None:
        event = AuditEvent(
            ts=self._wall.now(),
            type=type_,
            actor=actor,
            subject=self._subject,
            outcome=outcome,
            detail=detail or {},
        )
        try:
            self._sink(event)
        except Exception:
            log.exception("session %s: audit sink failed", self._subject)

    def joined(self, stream: Stream, resume_from: int | None) -> None:
        detail: Detail = {
            "participant": stream.participant_id,
            "mode": stream.mode.value,
            "resume_from": resume_from,
        }
        self.emit(AuditType.PARTICIPANT_JOINED, actor=stream.user_id, outcome="ok", detail=detail)

    def left(self, stream: Stream, reason: str) -> None:
        detail: Detail = {"participant": stream.participant_id, "reason": reason}
        self.emit(AuditType.PARTICIPANT_LEFT, actor=stream.user_id, detail=detail)

    def refused(self, stream: Stream, verdict: Refused, what: str) -> None:
        detail: Detail = {
            "participant": stream.participant_id,
            "what": what,
            "reason": verdict.reason.value,
            "mode": stream.mode.value,
            "refusals": verdict.total,
            "unaudited_since_last": verdict.unaudited,
        }
        self.emit(AuditType.INPUT_REFUSED, actor=stream.user_id, outcome="fail", detail=detail)

    def decision(
        self, stream: Stream, kind: str, *, state: str, rule: str, policy_version: str, reason: str
    ) -> None:
        """A policy decision on a participant's action (never the typed text itself)."""
        detail: Detail = {
            "participant": stream.participant_id,
            "kind": kind,
            "state": state,
            "rule": rule,
            "policy_version": policy_version,
            "reason": reason[:200],
        }
        outcome: Literal["ok", "fail", "info"] = (
            "ok" if state in ("allowed", "approved") else "fail" if state == "denied" else "info"
        )
        self.emit("policy.decision", actor=stream.user_id, outcome=outcome, detail=detail)

    def ended(self, reason: str, output_bytes: int, refusals: int) -> None:
        detail: Detail = {"reason": reason, "output_bytes": output_bytes, "refusals": refusals}
        self.emit(AuditType.SESSION_ENDED, detail=detail)

    def connector_lost(self) -> None:
        self.emit(AUDIT_CONNECTOR_LOST)

    def connector_resumed(self, received: int) -> None:
        self.emit(AUDIT_CONNECTOR_RESUMED, detail={"received": received})

    def recording_failed(self, error: str) -> None:
        self.emit(AUDIT_RECORDING_FAILED, outcome="fail", detail={"error": error[:200]})

    def redacted(self, counts: dict[str, int]) -> None:
        """Secrets masked in one piece of output: how many, by pattern name (never the text)."""
        detail: Detail = {"count": sum(counts.values())}
        detail |= {f"pattern.{name}": n for name, n in sorted(counts.items())[:20]}
        self.emit(AUDIT_REDACTED, detail=detail)
