"""Gemini CLI hooks: ``BeforeTool`` in, ``{"decision", "reason"}`` out.

Input (stdin of a command hook; Gemini has no ``http`` hooks), 0.61.0::

    {"session_id": "…", "transcript_path": "…", "cwd": "/repo", "hook_event_name": "BeforeTool",
     "timestamp": "2026-11-22T02:19:48.252Z", "tool_name": "run_shell_command",
     "tool_input": {"command": "rm -rf build", "description": "…"}}

``AfterTool`` adds ``tool_response``; ``BeforeAgent`` carries the submitted ``prompt``. Gemini
reports no permission mode, and has neither ``ask`` nor a permission-request event (its
``Notification`` hook only observes).

Output (exit 0, JSON on stdout)::

    APPROVE   {"decision": "allow"}
    PASS      {}
    DENY      {"decision": "deny", "reason": "…"}   (the reason goes to the model as the tool error)

A ``BeforeAgent`` deny drops the prompt. Exit code 2 with the reason on stderr also blocks;
any other non-zero exit, a timeout (``timeout`` is in **milliseconds**) or an invalid hook
entry is a warning and the tool runs (fail open).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.hooks.model import (
    EventKind,
    HookAnswer,
    HookCall,
    Verdict,
    clip,
    result_text,
    text_field,
    tool_input_field,
)
from gateway.policy.facts import ToolCall

BEFORE_TOOL = "BeforeTool"
AFTER_TOOL = "AfterTool"
BEFORE_AGENT = "BeforeAgent"


class GeminiFormat:
    """Gemini CLI's hook format."""

    name = "gemini"
    gate_event = BEFORE_TOOL
    events: Mapping[str, EventKind] = {
        BEFORE_TOOL: EventKind.TOOL,
        AFTER_TOOL: EventKind.RESULT,
        BEFORE_AGENT: EventKind.PROMPT,
    }

    def event_kind(self, event: str) -> EventKind:
        return self.events.get(event, EventKind.OTHER)

    def parse(self, payload: Mapping[str, object]) -> HookCall:
        event = text_field(payload, "hook_event_name", required=True)
        kind = self.event_kind(event)
        tool_call = None
        if kind in (EventKind.TOOL, EventKind.RESULT):
            tool = text_field(payload, "tool_name", required=True)
            tool_call = ToolCall(assistant=self.name, tool=tool, input=tool_input_field(payload))
        return HookCall(
            assistant=self.name,
            event=event,
            kind=kind,
            session_id=text_field(payload, "session_id"),
            cwd=text_field(payload, "cwd"),
            tool_call=tool_call,
            prompt=text_field(payload, "prompt") if kind is EventKind.PROMPT else None,
            result=result_text(payload.get("tool_response")) if kind is EventKind.RESULT else None,
        )

    def render(self, event: str, verdict: Verdict, reason: str = "") -> HookAnswer:
        kind = self.event_kind(event)
        reason = clip(reason)
        body: dict[str, Any] = {}
        if kind in (EventKind.TOOL, EventKind.PROMPT) and verdict is Verdict.DENY:
            body = {"decision": "deny", "reason": reason}
        elif kind is EventKind.TOOL and verdict is Verdict.APPROVE:
            body = {"decision": "allow"}
        if not kind.is_gate and not (kind is EventKind.PROMPT and verdict is Verdict.DENY):
            verdict = Verdict.RECORDED
        return HookAnswer(verdict=verdict, body=body, reason=reason)

    def read_answer(self, event: str, body: Mapping[str, object]) -> Verdict | None:
        kind = self.event_kind(event)
        if not body:
            return Verdict.PASS if kind.is_gate else Verdict.RECORDED
        match dict(body):
            case {"decision": "deny", "reason": str()} if len(body) == 2 and kind in (
                EventKind.TOOL,
                EventKind.PROMPT,
            ):
                return Verdict.DENY
            case {"decision": "allow"} if len(body) == 1 and kind is EventKind.TOOL:
                return Verdict.APPROVE
            case _:
                return None


ADAPTER = GeminiFormat()
