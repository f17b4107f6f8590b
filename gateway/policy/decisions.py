"""The answers of the policy engine: frozen values, each naming the rule that gave it.

ARCHITECTURE.md "Decisions are values": an ordinary "no" is a ``Deny``, never an exception.
Every decision carries ``rule``: the id of the policy rule that decided, or a ``builtin:…`` /
``default:…`` id when no written rule did, so the audit log can say why.

Outcomes are ordered by how much they restrict: ``allow`` < ``review`` < ``deny``. When one
action is several things at once (a line with ``;``, a ``bash -c`` wrapper), the most
restrictive outcome wins (``most_restrictive``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.core.models import FactorKind, Role


class Outcome(StrEnum):
    """What a rule says about an action; the value is the word used in policy files."""

    ALLOW = "allow"
    REVIEW = "review"
    DENY = "deny"

    @property
    def severity(self) -> int:
        """0 for allow, 1 for review, 2 for deny: the larger restricts more."""
        return _SEVERITY[self]


_SEVERITY = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.DENY: 2}


@dataclass(frozen=True, slots=True)
class Approvers:
    """Who may approve a held action: the session owner, named users, groups, roles (any of them)."""

    owner: bool = False
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()

    def describe(self) -> str:
        """A short human text such as ``owner, users alice, groups sec``."""
        parts = ["owner"] if self.owner else []
        parts += [f"users {', '.join(self.users)}"] if self.users else []
        parts += [f"groups {', '.join(self.groups)}"] if self.groups else []
        parts += [f"roles {', '.join(r.value for r in self.roles)}"] if self.roles else []
        return "; ".join(parts) or "nobody"


@dataclass(frozen=True, slots=True)
class Allow:
    """Forward the action (or grant the mode)."""

    rule: str


@dataclass(frozen=True, slots=True)
class Deny:
    """Drop the action; ``reason`` is shown to the requester and written to the audit log."""

    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Review:
    """Hold the action until ``quorum`` distinct approvers approve, or deny after ``timeout_s``.

    ``allow_self_approval`` False means the requester's own approval does not count (and for
    a tool call, the session owner is the requester). ``max_grant_s`` is set only when the
    action is a request for privileged mode: the longest grant an approver may give.
    """

    rule: str
    approvers: Approvers
    quorum: int
    allow_self_approval: bool
    timeout_s: int
    reason: str = ""
    max_grant_s: int | None = None


@dataclass(frozen=True, slots=True)
class StepUp:
    """Present one of ``factors`` again (the last one is older than ``max_age_s`` or of the wrong kind)."""

    rule: str
    factors: tuple[FactorKind, ...]
    max_age_s: int


Decision = Allow | Deny | Review | StepUp


def outcome_of(decision: Allow | Deny | Review) -> Outcome:
    """The outcome word of a forward/hold/drop decision."""
    match decision:
        case Allow():
            return Outcome.ALLOW
        case Review():
            return Outcome.REVIEW
        case Deny():
            return Outcome.DENY


def most_restrictive(decisions: Iterable[Allow | Deny | Review]) -> Allow | Deny | Review | None:
    """The first decision with the highest severity (deny > review > allow); None if there are none.

    Among several reviews the first one with the highest quorum holds the action, and it
    permits self-approval only if every review permits it, with the shortest timeout: an
    approval then satisfies at least as much as each review asked for on its own.
    """
    chosen: Allow | Deny | Review | None = None
    reviews: list[Review] = []
    for d in decisions:
        if isinstance(d, Review):
            reviews.append(d)
        if chosen is None or outcome_of(d).severity > outcome_of(chosen).severity:
            chosen = d
    if isinstance(chosen, Review) and len(reviews) > 1:
        top = max(reviews, key=lambda r: r.quorum)  # max() keeps the first of equals
        return Review(
            rule=top.rule,
            approvers=top.approvers,
            quorum=top.quorum,
            allow_self_approval=all(r.allow_self_approval for r in reviews),
            timeout_s=min(r.timeout_s for r in reviews),
            reason=top.reason,
            max_grant_s=top.max_grant_s,
        )
    return chosen
