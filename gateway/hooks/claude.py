"""Claude Code hooks: ``PreToolUse`` / ``PermissionRequest`` in, ``hookSpecificOutput`` out.

Input (stdin of a command hook, or the POST body of an ``http`` hook; identical), 2.1.330::

    {"session_id": "…", "transcript_path": "…", "cwd": "/repo", "permission_mode": "default",
     "hook_event_name": "PreToolUse", "tool_name": "Bash",
     "tool_input": {"command": "rm -rf build", "description": "…"}, "tool_use_id": "toolu_…"}

``PermissionRequest`` has the same fields without ``tool_use_id`` (plus
``permission_suggestions``); it fires only when Claude would show its own permission prompt.
``PostToolUse`` adds ``tool_response``; ``UserPromptSubmit`` carries ``prompt``.

Output (exit 0, JSON on stdout; ``../shared/RECIPES-ASSISTANTS.md`` §1 has the runs)::

    verdict   PreToolUse                                   PermissionRequest
    APPROVE   permissionDecision "allow" (skips the prompt) decision {"behavior": "allow"}
    PASS      {}  (Claude's own permission flow decides)   {}  (the prompt is shown as usual)
    DENY      permissionDecision "deny" + reason           decision {"behavior": "deny", "message"}

A deny of ``UserPromptSubmit`` is ``{"decision": "block", "reason": …}``; every other event is
answered ``{}``. Exit code 2 (reason on stderr) also blocks, but Claude then shows the model the
hook's command line, so rcgate answers with JSON and keeps exit 2 as the last resort only.
``ask`` is never used: under ``-p`` it acts as deny, and interactively it would hand the call
to the person at the workstation, who is the requester, not a second person.

Codex CLI reads and writes the same shapes (``gateway.hooks.codex`` derives from this).
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

PRE_TOOL_USE = "PreToolUse"
PERMISSION_REQUEST = "PermissionRequest"
POST_TOOL_USE = "PostToolUse"
USER_PROMPT_SUBMIT = "UserPromptSubmit"


class HookSpecificFormat:
    """The ``hookSpecificOutput`` family of hook formats (Claude Code, and Codex CLI with tweaks)."""

    name = "claude"
    gate_event = PRE_TOOL_USE
    events: Mapping[str, EventKind] = {
        PRE_TOOL_USE: EventKind.TOOL,
        PERMISSION_REQUEST: EventKind.PERMISSION,
        POST_TOOL_USE: EventKind.RESULT,
        "PostToolUseFailure": EventKind.RESULT,
        USER_PROMPT_SUBMIT: EventKind.PROMPT,
    }
    # Whether an explicit approval of a tool gate is written as permissionDecision "allow".
    approve_tool_with_allow = True

    def event_kind(self, event: str) -> EventKind:
        return self.events.get(event, EventKind.OTHER)

    def parse(self, payload: Mapping[str, object]) -> HookCall:
        event = text_field(payload, "hook_event_name", required=True)
        kind = self.event_kind(event)
        mode = text_field(payload, "permission_mode") or None
        tool_call = None
        if kind in (EventKind.TOOL, EventKind.PERMISSION, EventKind.RESULT):
            tool = text_field(payload, "tool_name", required=True)
            tool_call = ToolCall(assistant=self.name, tool=tool, input=tool_input_field(payload))
        prompt = text_field(payload, "prompt") if kind is EventKind.PROMPT else None
        return HookCall(
            assistant=self.name,
            event=event,
            kind=kind,
            session_id=text_field(payload, "session_id"),
            cwd=text_field(payload, "cwd"),
            permission_mode=mode,
            tool_call=tool_call,
            tool_use_id=text_field(payload, "tool_use_id") or None,
            prompt=prompt,
            result=result_text(payload.get("tool_response")) if kind is EventKind.RESULT else None,
        )

    def render(self, event: str, verdict: Verdict, reason: str = "") -> HookAnswer:
        kind = self.event_kind(event)
        reason = clip(reason)
        body: dict[str, Any] = {}
        if kind is EventKind.TOOL and verdict is Verdict.DENY:
            body = self._tool_decision(event, "deny", reason)
        elif kind is EventKind.TOOL and verdict is Verdict.APPROVE and self.approve_tool_with_allow:
            body = self._tool_decision(event, "allow", reason)
        elif kind is EventKind.PERMISSION and verdict in (Verdict.DENY, Verdict.APPROVE):
            decision: dict[str, Any] = {"behavior": "allow" if verdict is Verdict.APPROVE else "deny"}
            if verdict is Verdict.DENY:
                decision["message"] = reason
            body = {"hookSpecificOutput": {"hookEventName": event, "decision": decision}}
        elif kind is EventKind.PROMPT and verdict is Verdict.DENY:
            body = {"decision": "block", "reason": reason}
        if not kind.is_gate and not (kind is EventKind.PROMPT and verdict is Verdict.DENY):
            verdict = Verdict.RECORDED  # a tool that already ran cannot be denied
        return HookAnswer(verdict=verdict, body=body, reason=reason)

    @staticmethod
    def _tool_decision(event: str, decision: str, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"hookEventName": event, "permissionDecision": decision}
        if reason:
            out["permissionDecisionReason"] = reason
        return {"hookSpecificOutput": out}

    def read_answer(self, event: str, body: Mapping[str, object]) -> Verdict | None:
        kind = self.event_kind(event)
        if not body:
            return Verdict.PASS if kind.is_gate else Verdict.RECORDED
        if kind is EventKind.PROMPT:
            ok = body.get("decision") == "block" and isinstance(body.get("reason"), str)
            return Verdict.DENY if ok and set(body) == {"decision", "reason"} else None
        specific = body.get("hookSpecificOutput")
        if set(body) != {"hookSpecificOutput"} or not isinstance(specific, dict):
            return None
        if specific.get("hookEventName") != event:
            return None
        if kind is EventKind.TOOL:
            return _tool_verdict(specific, allow_ok=self.approve_tool_with_allow)
        if kind is EventKind.PERMISSION:
            return _permission_verdict(specific)
        return None


def _tool_verdict(specific: Mapping[str, object], *, allow_ok: bool) -> Verdict | None:
    if not set(specific) <= {"hookEventName", "permissionDecision", "permissionDecisionReason"}:
        return None
    if not isinstance(specific.get("permissionDecisionReason", ""), str):
        return None
    match specific.get("permissionDecision"):
        case "deny":
            return Verdict.DENY
        case "allow" if allow_ok:
            return Verdict.APPROVE
        case _:
            return None


def _permission_verdict(specific: Mapping[str, object]) -> Verdict | None:
    decision = specific.get("decision")
    if set(specific) != {"hookEventName", "decision"} or not isinstance(decision, dict):
        return None
    match decision:
        case {"behavior": "allow"} if set(decision) == {"behavior"}:
            return Verdict.APPROVE
        case {"behavior": "deny", "message": str()} if set(decision) == {"behavior", "message"}:
            return Verdict.DENY
        case _:
            return None


ADAPTER = HookSpecificFormat()
