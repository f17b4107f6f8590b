"""The values of approvals: states, the action digest and derived challenge, signed records, views.

``action_digest`` is what the broker puts into ``HeldAction.digest``; ``derive_challenge`` is the
WebAuthn challenge an approver signs (see ``gateway.sessions.approvals`` for how they are used).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from gateway.core.ids import SessionId, UserId, new_id
from gateway.policy import Review
from gateway.sessions.ports import HeldAction


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


def action_digest(session_id: str, seq: int, requester_id: str, kind: str, text: str) -> str:
    """The digest a ``HeldAction`` must carry: SHA-256 (hex) of its canonical JSON."""
    canonical = json.dumps(
        {"kind": kind, "requester_id": requester_id, "seq": seq, "session_id": session_id, "text": text},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


PRIVILEGED_GRANT_S = 15 * 60.0  # a privileged grant's length when policy names no maximum


def held_action(
    review: Review,
    *,
    session_id: SessionId,
    seq: int,
    requester_id: UserId,
    requester_name: str,
    owner_id: UserId,
    kind: str,
    text: str,
    created_at: float,
    policy_version: str,
    timeout_s: float | None = None,
) -> HeldAction:
    """The held action for a policy ``Review``: approvers, quorum and timeout from the review, digest
    from the content (one constructor for the broker's lines and mode requests and the hooks' tool calls)."""
    return HeldAction(
        action_id=new_id("act"),
        session_id=session_id,
        seq=seq,
        requester_id=requester_id,
        requester_name=requester_name,
        owner_id=owner_id,
        kind=kind,
        text=text,
        rule=review.rule,
        reason=review.reason,
        approver_users=tuple(review.approvers.users),
        approver_groups=tuple(review.approvers.groups),
        approver_roles=tuple(r.value for r in review.approvers.roles),
        approver_owner=review.approvers.owner,
        quorum=review.quorum,
        allow_self_approval=review.allow_self_approval,
        timeout_s=float(review.timeout_s) if timeout_s is None else timeout_s,
        created_at=created_at,
        policy_version=policy_version,
        digest=action_digest(session_id, seq, requester_id, kind, text),
        grant_s=float(review.max_grant_s) if review.max_grant_s else PRIVILEGED_GRANT_S,
    )


def derive_challenge(digest: str, nonce: bytes) -> bytes:
    """The WebAuthn challenge of one approver's decision on one action."""
    return hashlib.sha256(bytes.fromhex(digest) + nonce).digest()


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One approver's signed decision: enough to re-derive the challenge and re-check the signature."""

    action_id: str
    session_id: str
    seq: int
    requester_id: str
    kind: str
    text: str
    digest: str
    rule: str
    policy_version: str
    approver_id: UserId
    approver_name: str
    approve: bool
    credential_id: str
    nonce: str  # hex
    challenge: str  # hex
    assertion_json: str | None  # the assertion the browser sent (canonical JSON)
    assertion_sha256: str | None
    decided_at: float
    state_after: State
    approvals: int  # distinct approvals counted after this decision
    quorum: int


@dataclass(frozen=True, slots=True)
class ActionView:
    """A snapshot of one held action for lists and live updates."""

    action: HeldAction
    state: State
    reason: str  # why it ended ("" while pending)
    approved_by: tuple[str, ...]  # approver names, in order
    approver_ids: tuple[UserId, ...]
    deadline: float
    decided_at: float | None


@dataclass(frozen=True, slots=True)
class InboxChange:
    """``held`` (new), ``updated`` (a vote), ``decided`` (ended), ``resync`` (read again), ``closed``."""

    kind: Literal["held", "updated", "decided", "resync", "closed"]
    view: ActionView | None = None
