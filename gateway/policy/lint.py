"""Warnings about a valid policy that probably does not do what its author meant.

``lint`` never refuses a policy (the loader does that); it points at rules that can never
decide because an earlier one always matches first (first match wins), settings that are
ignored, defaults that allow, and approvals nobody can give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.core.modes import Mode
from gateway.policy.decisions import Outcome
from gateway.policy.model import Grant, Policy, PrivilegedGrant
from gateway.policy.rules import (
    ApproversSpec,
    CommandRule,
    PermissionModeRule,
    ReviewSpec,
    ToolMatch,
    ToolRule,
)

R = TypeVar("R", CommandRule, ToolRule, PermissionModeRule)


@dataclass(frozen=True, slots=True)
class LintWarning:
    """A rule id (or a key such as ``command_default``) and what looks wrong with it."""

    rule: str
    message: str


def lint(policy: Policy) -> list[LintWarning]:
    """Every warning for ``policy``, in file order."""
    out: list[LintWarning] = []
    out += _grant_warnings(policy.grants)
    out += _shadowed(policy.command_rules, _command_covers, "command rule")
    out += _shadowed(policy.tool_rules, _tool_covers, "tool rule")
    out += _shadowed(policy.permission_mode_rules, _permission_covers, "permission-mode rule")
    rules: list[CommandRule | ToolRule | PermissionModeRule] = [
        *policy.command_rules,
        *policy.tool_rules,
        *policy.permission_mode_rules,
    ]
    out += [_ignored_review(r) for r in rules if r.action is not Outcome.REVIEW and _has_review_settings(r)]
    out += _owner_cannot_approve(policy)
    if policy.command_default is Outcome.ALLOW:
        out.append(
            LintWarning("command_default", "allows every command no rule names (deny by default is safer)")
        )
    if policy.tool_default is Outcome.ALLOW:
        out.append(LintWarning("tool_default", "allows every tool call no rule names (review is safer)"))
    for key in ("raw", "mode_switch"):
        if getattr(policy.key_rules, key) is Outcome.ALLOW:
            out.append(
                LintWarning(f"key_rules.{key}", "allowing these keys lets input bypass the command rules")
            )
    return out


def _shadowed(rules: tuple[R, ...], covers: Callable[[R, R], bool], kind: str) -> list[LintWarning]:
    out: list[LintWarning] = []
    for j, later in enumerate(rules):
        earlier = next((r for r in rules[:j] if covers(r, later)), None)
        if earlier is not None:
            same = " (and says the same)" if earlier.action is later.action else ""
            out.append(
                LintWarning(
                    later.id,
                    f"never decides: {kind} '{earlier.id}' comes first and matches everything it does{same}",
                )
            )
    return out


def _command_covers(a: CommandRule, b: CommandRule) -> bool:
    m, n = a.match, b.match
    if m.any:
        return True
    if m.argv_prefix is not None and n.argv_prefix is not None:
        return n.argv_prefix[: len(m.argv_prefix)] == m.argv_prefix
    return m.regex is not None and n.regex is not None and m.regex.pattern == n.regex.pattern


def _tool_covers(a: ToolRule, b: ToolRule) -> bool:
    return (
        a.assistant in ("any", b.assistant)
        and a.when in ("always", b.when)
        and ("*" in a.tool or set(b.tool) <= set(a.tool))
        and (a.match == ToolMatch() or a.match == b.match)
    )


def _permission_covers(a: PermissionModeRule, b: PermissionModeRule) -> bool:
    return (
        a.assistant in ("any", b.assistant)
        and a.when in ("always", b.when)
        and ("*" in a.tool or set(b.tool) <= set(a.tool))
        and ("*" in a.permission_mode or set(b.permission_mode) <= set(a.permission_mode))
    )


def _grant_warnings(grants: tuple[Grant, ...]) -> list[LintWarning]:
    out: list[LintWarning] = []
    for j, later in enumerate(grants):
        privileged = later.modes.privileged
        if privileged is not None and not privileged.enabled:
            out.append(
                LintWarning(later.id, "gives privileged with enabled: false, so it gives nothing for it")
            )
        if privileged is not None and privileged.enabled and later.who.everyone:
            out.append(LintWarning(later.id, "lets everyone request privileged mode"))
        for mode in Mode:
            if later.modes.get(mode) is None:
                continue
            earlier = next(
                (
                    g
                    for g in grants[:j]
                    if g.who == later.who and g.sessions == later.sessions and _gives(g, mode)
                ),
                None,
            )
            if earlier is not None:
                out.append(
                    LintWarning(
                        later.id,
                        f"never decides {mode.value}: grant '{earlier.id}' comes first for the same people",
                    )
                )
    return out


def _gives(grant: Grant, mode: Mode) -> bool:
    settings = grant.modes.get(mode)
    return settings is not None and (not isinstance(settings, PrivilegedGrant) or settings.enabled)


def _has_review_settings(rule: ReviewSpec) -> bool:
    return (
        rule.approvers is not None
        or rule.quorum != 1
        or rule.allow_self_approval
        or rule.timeout_s is not None
    )


def _ignored_review(rule: CommandRule | ToolRule | PermissionModeRule) -> LintWarning:
    return LintWarning(
        rule.id,
        f"approvers, quorum, allow_self_approval and timeout_s only apply to review, not {rule.action.value}",
    )


def _owner_only(approvers: ApproversSpec) -> bool:
    return approvers.owner and not (approvers.users or approvers.groups or approvers.roles)


def _owner_cannot_approve(policy: Policy) -> list[LintWarning]:
    """Tool calls are requested by the owner: owner-only approvers without self-approval never approve."""
    default = policy.defaults.approvers
    out: list[LintWarning] = []
    for rule in policy.tool_rules:
        approvers = rule.approvers or default
        if rule.action is Outcome.REVIEW and _owner_only(approvers) and not rule.allow_self_approval:
            out.append(
                LintWarning(
                    rule.id,
                    "only the owner may approve, but the owner requests tool calls and self-approval "
                    "is off: the call will time out and be denied",
                )
            )
    catch_all = any(
        r.assistant == "any" and r.when == "always" and "*" in r.tool and r.match == ToolMatch()
        for r in policy.tool_rules
    )
    if policy.tool_default is Outcome.REVIEW and _owner_only(default) and not catch_all:
        out.append(
            LintWarning(
                "tool_default",
                "review by defaults.approvers (the owner only): tool calls no rule names "
                "will time out and be denied",
            )
        )
    return out
