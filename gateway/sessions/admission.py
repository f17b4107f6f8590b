"""Admission: may this person join this live session in this mode? Policy decides, at join time.

The link's mode is the most it can grant; policy (``RequestMode``) must allow that mode for the
actor on this session. The answer is the policy's decision value, with its rule and the version
of the policy that made it, for the adapter to map (and the audit log to record).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.ids import UserId
from gateway.core.models import FactorKind, LoginSession, User
from gateway.core.modes import Mode
from gateway.policy import Actor, Decision, RequestMode, SessionFacts, decide
from gateway.policy.source import LoadedPolicy
from gateway.sessions.ports import SessionInfo


@dataclass(frozen=True, slots=True)
class Admission:
    decision: Decision
    policy_version: str


def actor_of(user: User, login: LoginSession | None, *, factor_now: bool = False, now: float = 0.0) -> Actor:
    """The policy's view of a user; ``factor_now`` when a factor was presented in this very request."""
    if factor_now:
        return Actor(UserId(user.id), user.name, user.groups, user.role, FactorKind.TOTP, now)
    return Actor(
        UserId(user.id), user.name, user.groups, user.role,
        login.last_factor if login else None, login.last_factor_at if login else None,
    )  # fmt: skip


def facts_of(info: SessionInfo) -> SessionFacts:
    m = info.meta
    return SessionFacts(
        id=info.session_id, owner_id=UserId(m.owner_id), owner_name=m.owner_name, host=m.host,
        labels=dict(m.labels), remote_participants=len(info.participants),
    )  # fmt: skip


def admit(loaded: LoadedPolicy, actor: Actor, info: SessionInfo, mode: Mode, now: float) -> Admission:
    return Admission(
        decide(loaded.policy, actor, facts_of(info), None, RequestMode(mode), now=now), loaded.version
    )
