"""The input gate of approved execution: asks the policy in force about one participant action.

The broker calls it synchronously (policy is pure and fast); the answer carries the policy
version, recorded with every decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.ids import SessionId, UserId
from gateway.core.modes import Mode
from gateway.policy import Action, Actor, Decision, SessionFacts, decide
from gateway.policy.redaction import RedactionSpec
from gateway.policy.source import PolicySource
from gateway.sessions.ports import SessionMeta


@dataclass(frozen=True, slots=True)
class Judgement:
    decision: Decision
    policy_version: str


class PolicyGate:
    def __init__(self, source: PolicySource) -> None:
        self._source = source

    def redaction(self) -> tuple[str, RedactionSpec]:
        """The policy version in force and its ``redaction`` section (asked for every output chunk)."""
        loaded = self._source.current()
        return loaded.version, loaded.policy.redaction

    def judge(
        self,
        actor: Actor,
        *,
        meta: SessionMeta,
        session_id: str,
        remote: int,
        mode: Mode,
        action: Action,
        now: float,
    ) -> Judgement:
        loaded = self._source.current()
        facts = SessionFacts(
            id=SessionId(session_id),
            owner_id=UserId(meta.owner_id),
            owner_name=meta.owner_name,
            host=meta.host,
            labels=dict(meta.labels),
            remote_participants=remote,
        )
        return Judgement(decide(loaded.policy, actor, facts, mode, action, now=now), loaded.version)
