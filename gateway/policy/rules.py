"""The rule part of the policy file format: approvers, command, key, tool and permission-mode rules.

Strict pydantic models (unknown keys refused, frozen). Every regex is compiled and checked
for catastrophic backtracking when the file loads (``patterns.compile_guarded``), so a bad
pattern is refused with its field named instead of failing at the first matching action.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.core.models import Role
from gateway.policy.decisions import Approvers, Outcome
from gateway.policy.patterns import compile_guarded

MAX_RULES = 1000
MAX_TIMEOUT_S = 24 * 3600


class Spec(BaseModel):
    """Base of every policy-file model: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def one_or_many(value: object) -> object:
    """Let a list field also be written as a single value: ``tool: Bash`` means ``tool: [Bash]``."""
    return [value] if isinstance(value, str) else value


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RuleId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"),
    Field(description="Unique id of the rule (letters, digits, `_ . : -`); every decision names it."),
]
Seconds = Annotated[StrictInt, Field(gt=0, le=MAX_TIMEOUT_S)]
Regex = Annotated[
    re.Pattern[str],
    BeforeValidator(compile_guarded),
    Field(description="A Python regular expression, searched (not anchored) in the command text."),
]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Globs = Annotated[
    Annotated[tuple[Glob, ...], Field(min_length=1, max_length=100)],
    BeforeValidator(
        one_or_many, json_schema_input_type=Glob | Annotated[list[Glob], Field(min_length=1, max_length=100)]
    ),
]
Argv = Annotated[tuple[Name, ...], Field(min_length=1, max_length=32)]
Quorum = Annotated[StrictInt, Field(ge=1, le=10, description="Distinct approvals needed.")]
AssistantName = Literal["claude", "codex", "gemini", "any"]
When = Literal["always", "remote_attached"]


class ApproversSpec(Spec):
    """Who may approve a held action: anyone who is one of these (at least one must be named)."""

    owner: StrictBool = Field(False, description="The session owner may approve.")
    users: tuple[Name, ...] = Field((), description="User names or ids who may approve.")
    groups: tuple[Name, ...] = Field((), description="Members of these groups may approve.")
    roles: tuple[Role, ...] = Field((), description="Users with these roles may approve.")

    @model_validator(mode="after")
    def _names_someone(self) -> ApproversSpec:
        if not (self.owner or self.users or self.groups or self.roles):
            raise PydanticCustomError(
                "approvers_empty", "approvers name nobody: set owner, users, groups or roles"
            )
        return self

    def value(self) -> Approvers:
        """The engine's value for these approvers."""
        return Approvers(owner=self.owner, users=self.users, groups=self.groups, roles=self.roles)


class ReviewSpec(Spec):
    """How a held action is approved; used when the rule's action is ``review``."""

    approvers: ApproversSpec | None = Field(
        None, description="Who may approve; `defaults.approvers` when absent."
    )
    quorum: Quorum = 1
    allow_self_approval: StrictBool = Field(
        False, description="Whether the requester's own approval counts (for a tool call: the owner's)."
    )
    timeout_s: Seconds | None = Field(
        None, description="Seconds a held action waits before it is denied; `defaults.held_action_timeout_s`."
    )


class CommandMatch(Spec):
    """What a command rule matches: exactly one of ``regex``, ``argv_prefix``, ``any``."""

    regex: Regex | None = None
    argv_prefix: Argv | None = Field(
        None, description="The command's first words, compared word by word after shell quoting is removed."
    )
    any: Literal[True] | None = Field(None, description="Matches every command.")

    @model_validator(mode="after")
    def _exactly_one(self) -> CommandMatch:
        given = [k for k in ("regex", "argv_prefix", "any") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "match_one",
                "match needs exactly one of regex, argv_prefix, any (got {given})",
                {"given": ", ".join(given) or "none"},
            )
        return self


class CommandRule(ReviewSpec):
    """An ordered rule on each command a submitted line would run (approved_execution)."""

    id: RuleId
    match: CommandMatch
    action: Outcome = Field(description="allow (forward), deny (drop) or review (hold for approval).")
    reason: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="Shown to the requester and written to the audit log."
    )


class KeyRules(Spec):
    """What each class of key pressed outside the composer does in approved_execution."""

    interrupt: Outcome = Field(Outcome.ALLOW, description="Ctrl-C, Esc.")
    navigation: Outcome = Field(Outcome.ALLOW, description="Arrows, Tab, Page Up/Down, Home/End.")
    confirm: Outcome = Field(Outcome.ALLOW, description="Enter alone, y/n answers to a dialog.")
    mode_switch: Outcome = Field(
        Outcome.DENY, description="Shift-Tab, which cycles the assistant's permission mode."
    )
    raw: Outcome = Field(Outcome.DENY, description="Every other key or byte.")


class ToolMatch(Spec):
    """Matchers over a tool call's input; all that are given must match (none given: any input)."""

    command_regex: Regex | None = Field(None, description="Searched in each command of `input.command`.")
    command_argv_prefix: Argv | None = Field(None, description="First words of a command in `input.command`.")
    path_outside_repo: Literal[True] | None = Field(
        None,
        description="A path in the input (file_path, path, notebook_path…) resolves outside the "
        "session's repository, or the repository is unknown.",
    )
    path_glob: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        None, description="Glob on the absolute, normalised path (`*` also matches `/`)."
    )

    @property
    def has_command_matcher(self) -> bool:
        """Whether this match looks at ``input.command``."""
        return self.command_regex is not None or self.command_argv_prefix is not None


class ToolRule(ReviewSpec):
    """An ordered rule on an assistant's tool call, as reported by its hook."""

    id: RuleId
    assistant: AssistantName = Field("any", description="Whose tool calls: claude, codex, gemini or any.")
    tool: Globs = Field(description="Tool name or glob (`Bash`, `mcp__*`), or a list of them.")
    match: ToolMatch = Field(default_factory=ToolMatch)
    when: When = Field(
        "always", description="`remote_attached`: only while remote participants are attached."
    )
    action: Outcome
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class PermissionModeRule(ReviewSpec):
    """A rule on the assistant's own permission mode, tried before the tool rules.

    ``deny`` decides at once; ``review`` holds the call at least; ``allow`` lets the tool
    rules decide. The most restrictive of this and the tool rules' answer wins.
    """

    id: RuleId
    permission_mode: Globs = Field(
        description="Permission mode name(s) or glob(s) as the hook reports them: "
        "default, acceptEdits, plan, bypassPermissions…"
    )
    assistant: AssistantName = "any"
    tool: Globs = Field(("*",), description="Tool name glob(s) the rule covers; all tools by default.")
    when: When = "always"
    action: Outcome
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
