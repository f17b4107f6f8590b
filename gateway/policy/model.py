"""The policy file format: who may have which mode on which session, with what factors and limits.

Strict pydantic v2 models: unknown keys are refused, every model is frozen, mode names are
checked (``unknown mode 'superuser'``), rule ids are unique across the whole file. The rule
lists themselves (commands, keys, tools, permission modes) are in ``gateway.policy.rules``.
Loading a file (YAML, with line numbers in every error) is ``gateway.policy.loader``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.core.models import FactorKind, Role
from gateway.core.modes import Mode
from gateway.policy.decisions import Outcome
from gateway.policy.redaction import RedactionSpec
from gateway.policy.rules import (
    MAX_RULES,
    ApproversSpec,
    CommandRule,
    Glob,
    KeyRules,
    Name,
    PermissionModeRule,
    ReviewSpec,
    RuleId,
    Seconds,
    Spec,
    ToolRule,
    one_or_many,
)

DEFAULT_MAX_GRANT_S = 15 * 60  # issue 4: a privileged grant lasts 15 minutes unless policy says less
MODE_NAMES = ", ".join(m.value for m in Mode)
Factors = Annotated[tuple[FactorKind, ...], Field(min_length=1, max_length=2)]


def _check_mode_keys(value: object) -> object:
    """Refuse a key that is not a mode name, naming it (before pydantic's generic ``unknown key``)."""
    if isinstance(value, dict):
        for key in value:
            if key not in {m.value for m in Mode}:
                raise PydanticCustomError(
                    "unknown_mode",
                    "unknown mode '{key}' (modes are {modes})",
                    {"key": key, "modes": MODE_NAMES},
                )
    return value


def _passkey_only(factors: tuple[FactorKind, ...] | None) -> None:
    if factors is not None and set(factors) != {FactorKind.PASSKEY}:
        raise PydanticCustomError(
            "privileged_factors", "privileged mode needs a passkey (WebAuthn) only: factors: [passkey]"
        )


class StepUpSpec(Spec):
    """Which factors a mode needs and how fresh; unset fields keep the built-in default for the mode."""

    factors: Factors | None = Field(None, description="Factor kinds that satisfy the mode: passkey, totp.")
    max_age_s: Seconds | None = Field(
        None, description="The last factor must be at most this old (seconds) when the mode is requested."
    )


class StepUpTable(Spec):
    """Step-up per mode. Built-in: view_only passkey or TOTP within 15 min; approved_execution and
    privileged passkey within 5 and 2 min."""

    view_only: StepUpSpec = StepUpSpec()
    approved_execution: StepUpSpec = StepUpSpec()
    privileged: StepUpSpec = StepUpSpec()

    _modes = model_validator(mode="before")(_check_mode_keys)

    @model_validator(mode="after")
    def _privileged_passkey(self) -> StepUpTable:
        _passkey_only(self.privileged.factors)
        return self


class ModeLimits(Spec):
    """Per-mode overrides of the link lifetime and participant idle timeout."""

    link_ttl_s: Seconds | None = Field(None, description="Unredeemed links for this mode expire after this.")
    participant_idle_s: Seconds | None = Field(
        None, description="Idle participants in this mode are dropped."
    )


class ModeLimitsTable(Spec):
    """Limits per mode; unset fields use the session-wide defaults."""

    view_only: ModeLimits = ModeLimits()
    approved_execution: ModeLimits = ModeLimits()
    privileged: ModeLimits = ModeLimits()

    _modes = model_validator(mode="before")(_check_mode_keys)


class Defaults(Spec):
    """Timeouts, default approvers and step-up, used wherever a grant or rule says nothing."""

    link_ttl_s: Seconds = Field(600, description="A link not redeemed within this is refused.")
    session_idle_s: Seconds = Field(
        900, description="Remote control ends after this long with no input and no output."
    )
    participant_idle_s: Seconds = Field(900, description="A participant idle this long is dropped.")
    session_max_s: Seconds = Field(8 * 3600, description="Absolute maximum length of remote control.")
    held_action_timeout_s: Seconds = Field(120, description="A held action not approved in time is denied.")
    approvers: ApproversSpec = Field(
        ApproversSpec(owner=True),
        description="Approvers of rules that name none, and of `*_default: review`.",
    )
    stepup: StepUpTable = StepUpTable()
    mode_limits: ModeLimitsTable = ModeLimitsTable()


class Who(Spec):
    """Who a grant is for: anyone who is one of these (at least one must be set)."""

    everyone: StrictBool = Field(False, description="Every signed-in user.")
    owner: StrictBool = Field(False, description="The session's owner.")
    users: tuple[Name, ...] = Field((), description="User names or ids.")
    groups: tuple[Name, ...] = Field((), description="Members of these groups.")
    roles: tuple[Role, ...] = Field((), description="Users with these roles: admin, reviewer, member.")

    @model_validator(mode="after")
    def _names_someone(self) -> Who:
        if not (self.everyone or self.owner or self.users or self.groups or self.roles):
            raise PydanticCustomError(
                "who_empty", "who names nobody: set everyone, owner, users, groups or roles"
            )
        return self


OptionalGlobs = Annotated[
    Annotated[tuple[Glob, ...], Field(max_length=100)],
    BeforeValidator(one_or_many, json_schema_input_type=Glob | Annotated[list[Glob], Field(max_length=100)]),
]


class SessionMatch(Spec):
    """Which sessions a grant covers; every condition given must hold (none given: every session)."""

    labels: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], Name] = Field(
        default_factory=dict, description="Label name to value or glob; the session must carry each label."
    )
    owners: tuple[Name, ...] = Field((), description="Sessions owned by these users (names or ids).")
    hosts: OptionalGlobs = Field((), description="Host name globs.")
    assistants: tuple[Name, ...] = Field((), description="Assistant names: claude, codex, gemini, …")


class ModeGrant(Spec):
    """Granting ``view_only`` or ``approved_execution``; may tighten the mode's step-up."""

    factors: Factors | None = Field(None, description="Overrides `defaults.stepup.<mode>.factors`.")
    max_age_s: Seconds | None = Field(None, description="Overrides `defaults.stepup.<mode>.max_age_s`.")


class PrivilegedGrant(ModeGrant, ReviewSpec):
    """Granting ``privileged``: raw keystrokes, only after an approver grants it, for a short time."""

    enabled: StrictBool = Field(False, description="Must be true: privileged mode is off unless enabled.")
    max_grant_s: Seconds = Field(
        DEFAULT_MAX_GRANT_S,
        description="Longest grant an approver may give; then back to approved_execution.",
    )
    reason: Annotated[str, StringConstraints(max_length=500)] = ""

    @model_validator(mode="after")
    def _passkey(self) -> PrivilegedGrant:
        _passkey_only(self.factors)
        return self


def _grant_modes(value: object) -> object:
    """``modes: [view_only, approved_execution]`` is short for a mapping with empty settings."""
    if isinstance(value, list):
        if Mode.PRIVILEGED.value in value:
            raise PydanticCustomError(
                "privileged_settings",
                "privileged needs settings: write it as a key, `privileged: {enabled: true, approvers: …}`",
            )
        for item in value:
            if not isinstance(item, str):
                raise PydanticCustomError(
                    "mode_name", "a mode name is a string (modes are {modes})", {"modes": MODE_NAMES}
                )
        value = dict.fromkeys(value)
    if isinstance(value, dict):
        _check_mode_keys(value)
        value = {k: ({} if v is None else v) for k, v in value.items()}
    return value


class GrantModes(Spec):
    """The modes a grant gives (a list of names, or a mapping of name to settings)."""

    view_only: ModeGrant | None = None
    approved_execution: ModeGrant | None = None
    privileged: PrivilegedGrant | None = None

    def get(self, mode: Mode) -> ModeGrant | None:
        """The settings for ``mode``, or None if this grant does not give it."""
        match mode:
            case Mode.VIEW_ONLY:
                return self.view_only
            case Mode.APPROVED_EXECUTION:
                return self.approved_execution
            case Mode.PRIVILEGED:
                return self.privileged


class Grant(Spec):
    """Who may request which modes on which sessions; the first grant that fits decides."""

    id: RuleId
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    who: Who
    sessions: SessionMatch = Field(default_factory=SessionMatch)
    modes: Annotated[
        GrantModes,
        BeforeValidator(
            _grant_modes,
            json_schema_input_type=GrantModes | list[Literal["view_only", "approved_execution"]],
        ),
    ] = Field(description="Modes given: a list of names, or a mapping of name to settings.")


class Policy(Spec):
    """A whole policy file. Anything it does not allow is denied."""

    version: Literal[1] = Field(description="Format version of the file: 1.")
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    defaults: Defaults = Field(default_factory=Defaults)
    grants: tuple[Grant, ...] = Field((), max_length=MAX_RULES)
    command_rules: tuple[CommandRule, ...] = Field(
        (), max_length=MAX_RULES, description="Ordered; for each command of a line the first match decides."
    )
    command_default: Outcome = Field(Outcome.DENY, description="For a command no rule matches.")
    key_rules: KeyRules = Field(default_factory=KeyRules)
    tool_rules: tuple[ToolRule, ...] = Field(
        (),
        max_length=MAX_RULES,
        description="Ordered; the first match decides (per command for shell tools).",
    )
    tool_default: Outcome = Field(Outcome.REVIEW, description="For a tool call no rule matches.")
    permission_mode_rules: tuple[PermissionModeRule, ...] = Field(
        (), max_length=MAX_RULES, description="Tried before the tool rules; the first match counts."
    )
    redaction: RedactionSpec = Field(
        default_factory=RedactionSpec, description="Secrets masked for participants and in recordings."
    )

    def rule_ids(self) -> Iterator[tuple[str, str]]:
        """Every (rule id, where) in file order, e.g. ``("ls", "command_rules[0]")``."""
        for section in ("grants", "command_rules", "tool_rules", "permission_mode_rules"):
            rules: tuple[Grant | CommandRule | ToolRule | PermissionModeRule, ...] = getattr(self, section)
            for n, rule in enumerate(rules):
                yield rule.id, f"{section}[{n}]"

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        first: dict[str, str] = {}
        for rule_id, where in self.rule_ids():
            if rule_id in first:
                section, _, index = where.partition("[")
                raise PydanticCustomError(
                    "duplicate_rule_id",
                    "duplicate rule id '{id}' (first used by {first})",
                    {"id": rule_id, "first": first[rule_id], "at": f"{section}.{index.rstrip(']')}.id"},
                )
            first[rule_id] = where
        return self
