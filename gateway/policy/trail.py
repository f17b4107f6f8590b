"""The explanation of a decision: which rules were tried, which matched, in plain words.

``rcgate policy explain`` and the admin page's explain box print ``Explanation.render()``;
the engine fills a ``Trail`` as it goes, so the explanation is the evaluation itself, not a
second implementation that could drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.policy.decisions import Allow, Decision, Deny, Review, StepUp


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the trail: a heading (``rule`` empty) or a rule tried, matched or not."""

    rule: str
    matched: bool
    detail: str
    depth: int = 0


@dataclass(slots=True)
class Trail:
    """Collects steps while the engine evaluates (a plain list: the engine stays pure)."""

    steps: list[Step] = field(default_factory=list)
    depth: int = 0

    def heading(self, text: str) -> None:
        """Start a part of the evaluation (a line, a command, the tool rules)."""
        self.steps.append(Step("", matched=False, detail=text, depth=self.depth))

    def tried(self, rule: str, *, matched: bool, detail: str = "") -> None:
        """Record that ``rule`` was tried and whether it matched."""
        self.steps.append(Step(rule, matched=matched, detail=detail, depth=self.depth + 1))


def describe(decision: Decision) -> str:
    """One line for people: the outcome, the rule and what happens next."""
    match decision:
        case Allow(rule=rule):
            return f"allow (rule {rule})"
        case Deny(rule=rule, reason=reason):
            return f"deny (rule {rule}): {reason}"
        case Review() as r:
            self_ok = "allowed" if r.allow_self_approval else "not allowed"
            text = (
                f"review (rule {r.rule}): needs {r.quorum} approval(s) from {r.approvers.describe()}; "
                f"self-approval {self_ok}; denied after {r.timeout_s} s"
            )
            if r.max_grant_s is not None:
                text += f"; grant at most {r.max_grant_s} s"
            return text + (f" ({r.reason})" if r.reason else "")
        case StepUp(rule=rule, factors=factors, max_age_s=max_age):
            kinds = " or ".join(f.value for f in factors)
            return f"step-up (rule {rule}): present {kinds} again (at most {max_age} s old)"


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision and the trail that led to it."""

    decision: Decision
    steps: tuple[Step, ...]

    def render(self) -> str:
        """The decision, then the trail, indented: ``+`` marks a rule that matched, ``-`` one that did not."""
        lines = [f"decision: {describe(self.decision)}"]
        for step in self.steps:
            pad = "  " * (step.depth + 1)
            if not step.rule:
                lines.append(f"{pad}{step.detail}")
            else:
                mark = "+" if step.matched else "-"
                lines.append(f"{pad}{mark} {step.rule}" + (f": {step.detail}" if step.detail else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form for the HTTP API (the admin page's explain box)."""
        return {
            "decision": type(self.decision).__name__.lower(),
            "rule": self.decision.rule,
            "summary": describe(self.decision),
            "steps": [
                {"rule": s.rule, "matched": s.matched, "detail": s.detail, "depth": s.depth}
                for s in self.steps
            ],
        }
