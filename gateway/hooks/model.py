"""The values every assistant adapter maps into and out of: one ``HookCall`` in, one ``HookAnswer`` out.

Each assistant (Claude Code, Codex CLI, Gemini CLI) has its own hook JSON. Its module in this
room reads that JSON into a ``HookCall`` (what happened: a tool about to run, a permission
prompt about to be shown, a tool result, a prompt) and renders a ``Verdict`` back into that
assistant's output JSON and exit code (``HookAnswer``). Pure: no I/O, no clock.

Verdicts, and why ``PASS`` is not ``APPROVE``
---------------------------------------------
``APPROVE``   an explicit yes that also skips the assistant's own permission prompt (Claude
              Code ``allow`` does exactly that, and also its "rm outside the working folder"
              check). Used when a person approved the exact call (policy ``review`` then an
              approval), or when the caller opts in to ``auto_approve`` for policy ``allow``.
``PASS``      no objection: the assistant's own permission flow continues as if rcgate were
              not there (``{}``). This is what a policy ``allow`` means by default: rcgate only
              ever adds restrictions, it never removes the owner's own assistant settings.
``DENY``      the call does not run; ``reason`` is shown to the model (and so to the user).
``RECORDED``  the event is not a gate (a tool result, a submitted prompt): recorded, no decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from gateway.core.errors import BadRequest, NotFound
from gateway.policy.facts import ToolCall

MAX_PAYLOAD_BYTES = 1024 * 1024  # a hook payload (stdin or HTTP body) larger than this is refused
MAX_RESULT_CHARS = 64 * 1024  # a tool result is trimmed to this before it is recorded
MAX_REASON_CHARS = 1000  # a reason shown to the model is cut to this
EXIT_OK = 0  # every answer rcgate renders is JSON on stdout with exit 0
HOOK_ERROR_RULE = "builtin:hook-error"  # names a deny rcgate gave because the hook call failed
EXIT_BLOCK = 2  # "blocking error, reason on stderr": the last resort, blocks in all three CLIs


class Verdict(StrEnum):
    """What rcgate tells the assistant (see the module docstring)."""

    APPROVE = "approve"
    PASS = "pass"  # noqa: S105 - a verdict name, not a secret
    DENY = "deny"
    RECORDED = "recorded"


class EventKind(StrEnum):
    """What a hook event is about, whatever the assistant calls it."""

    TOOL = "tool"  # a tool is about to run (PreToolUse, BeforeTool): a gate
    PERMISSION = "permission"  # a permission prompt is about to be shown (PermissionRequest): a gate
    RESULT = "result"  # a tool ran (PostToolUse, AfterTool): recorded
    PROMPT = "prompt"  # a prompt was submitted (UserPromptSubmit, BeforeAgent): recorded
    OTHER = "other"  # anything else (Stop, SessionStart…): recorded, never decided

    @property
    def is_gate(self) -> bool:
        """Whether rcgate decides this event (a tool call that has not run yet)."""
        return self in (EventKind.TOOL, EventKind.PERMISSION)


class HookError(BadRequest):
    """A hook payload rcgate cannot read; for a known assistant it is answered with a deny."""

    code = "bad_hook_payload"


class UnknownAssistant(NotFound):
    """No adapter for this assistant name: there is no format to answer in."""

    code = "unknown_assistant"


@dataclass(frozen=True, slots=True)
class HookCall:
    """One hook event, read from any assistant's JSON.

    ``tool_call`` is set for gate and result events: ``ToolCall(assistant, tool, input)`` with
    the tool input passed through untouched (the policy matchers read ``command`` and paths).
    ``event`` is the assistant's own event name (``PreToolUse``, ``BeforeTool``…), kept so the
    answer names the same event.
    """

    assistant: str
    event: str
    kind: EventKind
    session_id: str = ""
    cwd: str = ""
    permission_mode: str | None = None
    tool_call: ToolCall | None = None
    tool_use_id: str | None = None
    prompt: str | None = None
    result: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """What goes back to the assistant, and what the caller audits.

    ``body`` is the JSON printed on stdout (or returned as the HTTP body), ``exit_code`` the
    command hook's exit status, ``stderr`` what it prints there. ``rule`` names the policy rule
    that decided (``""`` when no policy decision was made), ``call`` is None when the payload
    could not be read.
    """

    verdict: Verdict
    body: Mapping[str, Any]
    reason: str = ""
    rule: str = ""
    exit_code: int = EXIT_OK
    stderr: str = ""
    call: HookCall | None = None


class Adapter(Protocol):
    """One assistant's hook format (``gateway.hooks.claude``, ``codex``, ``gemini``)."""

    name: str
    gate_event: str  # the event a deny is rendered for when the payload names none

    def parse(self, payload: Mapping[str, object]) -> HookCall:
        """Read one hook payload; raises ``HookError`` when it cannot be read."""
        ...

    def event_kind(self, event: str) -> EventKind:
        """What an event name of this assistant is about."""
        ...

    def render(self, event: str, verdict: Verdict, reason: str = "") -> HookAnswer:
        """The output JSON and exit code that make the assistant carry out ``verdict``."""
        ...

    def read_answer(self, event: str, body: Mapping[str, object]) -> Verdict | None:
        """The verdict an answer body carries, or None if it is not an answer rcgate renders."""
        ...


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_field(payload: Mapping[str, object], key: str, *, required: bool = False) -> str:
    """A string field of a payload; ``""`` when absent. Raises ``HookError`` if it is not text."""
    value = payload.get(key)
    if value is None:
        if required:
            raise HookError(f"the hook payload has no {key}")
        return ""
    if not isinstance(value, str):
        raise HookError(f"{key} is not text")
    if required and not value:
        raise HookError(f"{key} is empty")
    return value


def tool_input_field(payload: Mapping[str, object]) -> Mapping[str, object]:
    """``tool_input`` as a mapping (absent: empty). Raises ``HookError`` if it is not an object."""
    value = payload.get("tool_input")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HookError("tool_input is not a JSON object")
    return value


def result_text(value: object) -> str | None:
    """A tool result as text for the audit trail, trimmed to ``MAX_RESULT_CHARS``."""
    if value is None:
        return None
    if isinstance(value, str):
        return clip(value, MAX_RESULT_CHARS)
    return clip(json.dumps(value, ensure_ascii=False, default=str), MAX_RESULT_CHARS)


def fail_closed(adapter: Adapter, payload: object, reason: str) -> HookAnswer:
    """A deny in ``adapter``'s format for a payload that could not be handled.

    The event is the payload's own when the adapter knows it, else the adapter's tool gate.
    A tool result cannot be denied (it ran): that answer is ``{}``, marked RECORDED.
    """
    event = adapter.gate_event
    if isinstance(payload, dict) and isinstance(payload.get("hook_event_name"), str):
        named = str(payload["hook_event_name"])
        if adapter.event_kind(named) is not EventKind.OTHER:
            event = named
    outcome = (
        "the prompt was not sent" if adapter.event_kind(event) is EventKind.PROMPT else "the call was not run"
    )
    answer = adapter.render(event, Verdict.DENY, f"rcgate: {reason}; {outcome}")
    return replace(answer, rule=HOOK_ERROR_RULE, stderr=f"rcgate hook: {reason}")
