"""The policy engine: one pure function from (policy, actor, session, mode, action, now) to a decision.

Theory of operation
-------------------
``decide`` reads nothing but its arguments: no clock (``now`` is passed in, wall-clock
seconds, the same clock as ``Actor.last_factor_at``), no files, no store. It returns a
value (``Allow | Deny | Review | StepUp``) naming the rule that decided; it raises for
nothing a request can cause. ``explain`` runs the very same evaluation and also returns
the trail of rules tried.

Deny by default, fail closed: every path that no rule covers ends in a ``Deny`` (or in
``command_default`` / ``tool_default``, which an admin sets). ``mode`` is the actor's
current mode, ``None`` when they are not attached (or, for a ``ToolCall``, when the call
comes from the assistant itself, which is the usual case).

    action            mode                 answer
    RequestMode(m)    m below current      Allow(builtin:drop-down)   (always allowed)
                      otherwise            the first grant, in file order, whose ``who``
                                           holds the actor, whose ``sessions`` fits the
                                           session and which gives m (privileged only if
                                           ``enabled``); none: Deny(builtin:no-grant).
                                           Last factor of the wrong kind or too old:
                                           StepUp(grant). privileged: Review(grant) with
                                           ``max_grant_s``; else Allow(grant).
    SubmitLine, Key   None                 Deny(builtin:not-attached)
                      view_only            Deny(builtin:view-only)
                      no grant for mode    Deny(builtin:no-grant)  (policy reloaded since)
                      privileged           Allow(grant)  (raw input while a grant is active;
                                           its expiry is the session's business)
                      approved_execution   SubmitLine: see below.  Key: ``key_rules``.
    ToolCall          view_only            Deny(builtin:view-only)
                      otherwise            see below
    Resize            None                 Deny(builtin:not-attached); else Allow(builtin:resize)

Submitted text (approved_execution). Text longer than ``MAX_EVAL_CHARS`` is denied; any
control character other than newline (ESC, CR, tab, DEL, C1 controls) or a bidirectional
override is denied with its line named: escape sequences are never forwarded from the
composer. The text is then evaluated line by line; an empty line is Enter alone and follows
``key_rules.confirm``. Each line is read by ``gateway.policy.shell.parse_shell`` into the
commands it would run (seeing through ``;``, pipes, ``bash -c``, ``sudo``, ``env``, ``$(…)``
and other wrappers); for each command the *first* command rule that matches decides, else
``command_default``. Anything the reader cannot see (``… | sh``, ``eval``, ``$CMD``) adds
``Review(builtin:opaque-shell)`` (or a deny if ``command_default`` is deny): never allow.
The most restrictive answer over all lines and commands wins: deny > review > allow.

Tool calls. Permission-mode rules first: the first that applies (assistant, tool, the
assistant's ``permission_mode``, ``when``) counts; ``deny`` decides at once. Then tool rules
in file order: a rule applies to the assistant (or ``any``), the tool name glob, ``when``
(``remote_attached`` needs ``remote_participants > 0``) and its input matchers. A call
with a text ``command`` is evaluated per command, exactly like a submitted line (first match
per command, opaque parts at least review); other calls once. No rule: ``tool_default``.
The most restrictive of the permission-mode answer and the tool answers wins.

Review answers carry the approvers (the rule's, else ``defaults.approvers``), the quorum,
whether self-approval counts (default no) and the timeout (the rule's, else
``defaults.held_action_timeout_s``); ``can_approve`` applies them to a would-be approver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never

from gateway.core.ids import UserId
from gateway.core.models import FactorKind
from gateway.core.modes import Mode
from gateway.policy.decisions import Allow, Decision, Deny, Outcome, Review, StepUp, most_restrictive
from gateway.policy.facts import (
    Action,
    Actor,
    Key,
    KeyClass,
    RequestMode,
    Resize,
    SessionFacts,
    SubmitLine,
    ToolCall,
)
from gateway.policy.matchers import (
    actor_is,
    approver_fits,
    command_matches,
    permission_rule_applies,
    session_fits,
    tool_command,
    tool_input_matches,
    tool_paths,
    tool_rule_applies,
)
from gateway.policy.model import Grant, ModeGrant, Policy, PrivilegedGrant
from gateway.policy.patterns import MAX_EVAL_CHARS
from gateway.policy.rules import ReviewSpec
from gateway.policy.shell import Command, parse_shell
from gateway.policy.trail import Explanation, Trail

BUILTIN_STEPUP: Mapping[Mode, tuple[tuple[FactorKind, ...], int]] = {
    Mode.VIEW_ONLY: ((FactorKind.PASSKEY, FactorKind.TOTP), 15 * 60),  # PRODUCT.md: TOTP or WebAuthn
    Mode.APPROVED_EXECUTION: ((FactorKind.PASSKEY,), 5 * 60),
    Mode.PRIVILEGED: ((FactorKind.PASSKEY,), 2 * 60),  # PRODUCT.md: WebAuthn only
}
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The durations policy sets for a session and a participant in one mode (seconds)."""

    link_ttl_s: int
    session_idle_s: int
    participant_idle_s: int
    session_max_s: int
    held_action_timeout_s: int


def decide(
    policy: Policy, actor: Actor, session: SessionFacts, mode: Mode | None, action: Action, *, now: float
) -> Decision:
    """Decide one action; see the module docstring for the order of evaluation."""
    return _Evaluation(policy, actor, session, now, Trail()).run(mode, action)


def explain(
    policy: Policy, actor: Actor, session: SessionFacts, mode: Mode | None, action: Action, *, now: float
) -> Explanation:
    """Decide one action and say how: every rule tried, in order, and which matched."""
    trail = Trail()
    decision = _Evaluation(policy, actor, session, now, trail).run(mode, action)
    return Explanation(decision, tuple(trail.steps))


def can_approve(review: Review, approver: Actor, session: SessionFacts, requester: UserId) -> bool:
    """Whether ``approver``'s approval counts toward ``review``'s quorum.

    The requester's own approval counts only if the rule allows self-approval; for a tool
    call the requester is the session owner (the assistant acts for them).
    """
    if approver.user_id == requester and not review.allow_self_approval:
        return False
    return approver_fits(review.approvers, approver, session)


def grantable_modes(policy: Policy, actor: Actor, session: SessionFacts) -> frozenset[Mode]:
    """The modes some grant lets ``actor`` request on ``session`` (step-up and approval aside)."""
    evaluation = _Evaluation(policy, actor, session, 0.0, Trail())
    return frozenset(m for m in Mode if evaluation.grant_for(m) is not None)


def timeouts_for(policy: Policy, mode: Mode) -> Timeouts:
    """The session's timeouts with the per-mode overrides of ``defaults.mode_limits`` applied."""
    d = policy.defaults
    limits = getattr(d.mode_limits, mode.value)
    return Timeouts(
        link_ttl_s=limits.link_ttl_s or d.link_ttl_s,
        session_idle_s=d.session_idle_s,
        participant_idle_s=limits.participant_idle_s or d.participant_idle_s,
        session_max_s=d.session_max_s,
        held_action_timeout_s=d.held_action_timeout_s,
    )


def _strictest(decisions: list[Allow | Deny | Review]) -> Allow | Deny | Review:
    """The most restrictive decision; among equals, a written rule's before a built-in's before a default's.

    So a held line names the rule (and approvers) an admin wrote when there is one.
    """
    ranked = sorted(
        decisions, key=lambda d: 2 if d.rule.startswith("default:") else d.rule.startswith("builtin:")
    )
    chosen = most_restrictive(ranked)
    if chosen is None:  # every caller passes at least one decision; fail closed regardless
        return Deny("builtin:no-decision", "nothing to decide")
    return chosen


def _control_character(line: str) -> str | None:
    for ch in line:
        code = ord(ch)
        # Tab too: in a shell or an assistant's input it completes, so what runs is not what was read.
        if code < 0x20 or 0x7F <= code <= 0x9F or ch in _BIDI_CONTROLS:
            return f"U+{code:04X}"
    return None


@dataclass(slots=True)
class _Evaluation:
    policy: Policy
    actor: Actor
    session: SessionFacts
    now: float
    trail: Trail

    def run(self, mode: Mode | None, action: Action) -> Decision:
        match action:
            case RequestMode():
                return self.request_mode(mode, action.mode)
            case Resize():
                if mode is None:
                    return Deny("builtin:not-attached", "not attached to this session")
                return Allow("builtin:resize")
            case ToolCall():
                if mode is Mode.VIEW_ONLY:
                    return Deny("builtin:view-only", "view_only allows no input of any kind")
                return self.tool_call(action)
            case SubmitLine() | Key():
                return self.input(mode, action)
            case _:
                assert_never(action)

    # --- modes -----------------------------------------------------------------------------

    def grant_for(self, mode: Mode) -> tuple[Grant, ModeGrant] | None:
        """The first grant that gives ``mode`` to the actor on this session, with its settings."""
        for grant in self.policy.grants:
            if not actor_is(grant.who, self.actor, self.session):
                self.trail.tried(grant.id, matched=False, detail=f"not for {self.actor.name}")
            elif not session_fits(grant.sessions, self.session):
                self.trail.tried(grant.id, matched=False, detail="does not cover this session")
            elif (settings := grant.modes.get(mode)) is None:
                self.trail.tried(grant.id, matched=False, detail=f"does not give {mode.value}")
            elif isinstance(settings, PrivilegedGrant) and not settings.enabled:
                self.trail.tried(grant.id, matched=False, detail="privileged is not enabled")
            else:
                self.trail.tried(grant.id, matched=True, detail=f"gives {mode.value}")
                return grant, settings
        return None

    def _no_grant(self, mode: Mode) -> Deny:
        return Deny("builtin:no-grant", f"no grant gives {self.actor.name} {mode.value} on this session")

    def request_mode(self, current: Mode | None, wanted: Mode) -> Decision:
        self.trail.heading(f"request {wanted.value} (now {current.value if current else 'not attached'})")
        if current is not None and wanted.rank < current.rank:
            return Allow("builtin:drop-down")
        found = self.grant_for(wanted)
        if found is None:
            return self._no_grant(wanted)
        grant, settings = found
        factors, max_age_s = BUILTIN_STEPUP[wanted]
        defaults = getattr(self.policy.defaults.stepup, wanted.value)
        factors = settings.factors or defaults.factors or factors
        max_age_s = settings.max_age_s or defaults.max_age_s or max_age_s
        last, at = self.actor.last_factor, self.actor.last_factor_at
        if last is None or at is None or last not in factors or not 0 <= self.now - at <= max_age_s:
            self.trail.tried(grant.id, matched=True, detail="the last factor is not fresh enough")
            return StepUp(grant.id, tuple(factors), max_age_s)
        if isinstance(settings, PrivilegedGrant):
            return self.review(grant.id, settings, settings.reason, max_grant_s=settings.max_grant_s)
        return Allow(grant.id)

    # --- input -----------------------------------------------------------------------------

    def input(self, mode: Mode | None, action: SubmitLine | Key) -> Decision:
        if mode is None:
            return Deny("builtin:not-attached", "not attached to this session")
        if mode is Mode.VIEW_ONLY:
            return Deny("builtin:view-only", "view_only allows no input of any kind")
        self.trail.heading(f"is {mode.value} still granted?")
        found = self.grant_for(mode)
        if found is None:
            return self._no_grant(mode)
        if mode is Mode.PRIVILEGED:
            return Allow(found[0].id)
        if isinstance(action, Key):
            return self.key(action.key_class)
        return self.submit(action.text)

    def key(self, key_class: KeyClass) -> Allow | Deny | Review:
        outcome: Outcome = getattr(self.policy.key_rules, key_class.value)
        rule = f"key_rules.{key_class.value}"
        self.trail.tried(rule, matched=True, detail=outcome.value)
        return self.outcome(
            rule, outcome, None, f"{key_class.value} keys are not allowed in approved_execution"
        )

    def submit(self, text: str) -> Decision:
        if len(text) > MAX_EVAL_CHARS:
            return Deny("builtin:too-long", f"input longer than {MAX_EVAL_CHARS} characters is not evaluated")
        text = text.replace("\r\n", "\n")
        lines = text.removesuffix("\n").split("\n")
        for n, line in enumerate(lines, start=1):
            bad = _control_character(line)
            if bad is not None:
                where = f"line {n}" if len(lines) > 1 else "the input"
                return Deny(
                    "builtin:control-character",
                    f"{where} holds the control character {bad}: escape sequences and control "
                    "characters are refused in composed text (use the keys outside the composer)",
                )
        decisions: list[Allow | Deny | Review] = []
        for n, line in enumerate(lines, start=1):
            self.trail.heading(f"line {n}: {line!r}" if len(lines) > 1 else f"line: {line!r}")
            if not line.strip():
                decisions.append(self.key(KeyClass.CONFIRM))
            else:
                decisions.append(self.line(line))
        return _strictest(decisions)

    def line(self, text: str) -> Allow | Deny | Review:
        parsed = parse_shell(text)
        decisions = [self.command(c) for c in parsed.commands]
        decisions += [self.opaque(r, self.policy.command_default) for r in parsed.opaque]
        if not decisions:
            self.trail.tried("default:command", matched=True, detail="no command found")
            decisions.append(self.default_command())
        return _strictest(decisions)

    def command(self, command: Command) -> Allow | Deny | Review:
        self.trail.depth += 1
        self.trail.heading(
            f"command {command.text!r}" + (f" (inside {' > '.join(command.via)})" if command.via else "")
        )
        try:
            for rule in self.policy.command_rules:
                if command_matches(rule.match, command):
                    self.trail.tried(rule.id, matched=True, detail=rule.action.value)
                    return self.outcome(rule.id, rule.action, rule, rule.reason)
                self.trail.tried(rule.id, matched=False)
            self.trail.tried("default:command", matched=True, detail=self.policy.command_default.value)
            return self.default_command()
        finally:
            self.trail.depth -= 1

    def default_command(self) -> Allow | Deny | Review:
        return self.outcome(
            "default:command", self.policy.command_default, None, "no command rule allows this command"
        )

    def opaque(self, reason: str, default: Outcome) -> Deny | Review:
        self.trail.tried("builtin:opaque-shell", matched=True, detail=reason)
        if default is Outcome.DENY:
            return Deny("builtin:opaque-shell", f"policy cannot see what this runs: {reason}")
        return self.review("builtin:opaque-shell", None, f"policy cannot see what this runs: {reason}")

    # --- tool calls ------------------------------------------------------------------------

    def tool_call(self, call: ToolCall) -> Allow | Deny | Review:
        self.trail.heading(f"tool call {call.assistant}:{call.tool}")
        text: str | None = None
        unreadable: str | None = None
        try:
            text = tool_command(call.input)
        except TypeError as e:
            unreadable = str(e)
        if any(len(p) > MAX_EVAL_CHARS for p in tool_paths(call.input)) or len(text or "") > MAX_EVAL_CHARS:
            return Deny(
                "builtin:too-long", f"tool input longer than {MAX_EVAL_CHARS} characters is not evaluated"
            )
        decisions: list[Allow | Deny | Review] = []
        for pm_rule in self.policy.permission_mode_rules:
            if permission_rule_applies(pm_rule, call, self.session):
                self.trail.tried(
                    pm_rule.id,
                    matched=True,
                    detail=f"{pm_rule.action.value} ({self.session.permission_mode})",
                )
                decided = self.outcome(pm_rule.id, pm_rule.action, pm_rule, pm_rule.reason)
                if isinstance(decided, Deny):
                    return decided
                decisions.append(decided)
                break
            self.trail.tried(pm_rule.id, matched=False)
        if unreadable is not None:
            decisions.append(self.opaque(unreadable, self.policy.tool_default))
        if text is None or not text.strip():
            decisions.append(self.tool_rules(call, None))
        else:
            parsed = parse_shell(text)
            decisions += [self.tool_rules(call, c) for c in parsed.commands]
            decisions += [self.opaque(r, self.policy.tool_default) for r in parsed.opaque]
            if not parsed.commands and not parsed.opaque:
                decisions.append(self.tool_rules(call, None))
        return _strictest(decisions)

    def tool_rules(self, call: ToolCall, command: Command | None) -> Allow | Deny | Review:
        self.trail.depth += 1
        if command is None:
            self.trail.heading("tool rules")
        else:
            self.trail.heading(
                f"command {command.text!r}" + (f" (inside {' > '.join(command.via)})" if command.via else "")
            )
        try:
            for rule in self.policy.tool_rules:
                if tool_rule_applies(rule, call, self.session) and tool_input_matches(
                    rule.match, command, call.input, self.session
                ):
                    self.trail.tried(rule.id, matched=True, detail=rule.action.value)
                    return self.outcome(rule.id, rule.action, rule, rule.reason)
                self.trail.tried(rule.id, matched=False)
            self.trail.tried("default:tool", matched=True, detail=self.policy.tool_default.value)
            return self.outcome(
                "default:tool", self.policy.tool_default, None, "no tool rule allows this call"
            )
        finally:
            self.trail.depth -= 1

    # --- building answers ------------------------------------------------------------------

    def outcome(
        self, rule: str, outcome: Outcome, spec: ReviewSpec | None, reason: str
    ) -> Allow | Deny | Review:
        match outcome:
            case Outcome.ALLOW:
                return Allow(rule)
            case Outcome.DENY:
                return Deny(rule, reason or f"denied by rule {rule}")
            case Outcome.REVIEW:
                return self.review(rule, spec, reason)
            case _:
                assert_never(outcome)

    def review(
        self, rule: str, spec: ReviewSpec | None, reason: str, *, max_grant_s: int | None = None
    ) -> Review:
        d = self.policy.defaults
        approvers = spec.approvers if spec is not None and spec.approvers is not None else d.approvers
        return Review(
            rule=rule,
            approvers=approvers.value(),
            quorum=spec.quorum if spec is not None else 1,
            allow_self_approval=spec.allow_self_approval if spec is not None else False,
            timeout_s=(spec.timeout_s if spec is not None else None) or d.held_action_timeout_s,
            reason=reason,
            max_grant_s=max_grant_s,
        )
