"""Claude Code and Codex CLI hook formats: payloads captured from real runs in, answers out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.hooks import claude, codex
from gateway.hooks.model import EventKind, HookError, Verdict
from gateway.hooks.registry import adapter_for
from gateway.policy import ToolCall

# RECIPES-ASSISTANTS.md §1, Claude Code 2.1.330 (paths replaced).
CLAUDE_PRE = {
    "session_id": "7b734575-9cc5-490a-b3bd-3cb448b25fd1",
    "transcript_path": "/home/u/.claude/projects/x/7b734575.jsonl",
    "cwd": "/repo",
    "prompt_id": "aa1b4f95-7cd7-4d49-8e58-5e2a9092c337",
    "permission_mode": "default",
    "effort": {"level": "medium"},
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "rm -rf build", "description": "Remove the build directory"},
    "tool_use_id": "toolu_fake000001",
}
CLAUDE_PERMISSION = {
    **{k: v for k, v in CLAUDE_PRE.items() if k != "tool_use_id"},
    "hook_event_name": "PermissionRequest",
    "permission_suggestions": [{"type": "setMode", "mode": "acceptEdits", "destination": "session"}],
}
# §2, Codex 0.169.0.
CODEX_PRE = {
    "session_id": "01a2010b-c354-71c0-8bd4-cc1c558bc95a",
    "turn_id": "01a2010b-c374-7a73-beb2-04fb97acfa08",
    "transcript_path": "/home/u/.codex/sessions/rollout.jsonl",
    "cwd": "/repo",
    "hook_event_name": "PreToolUse",
    "model": "gpt-fake",
    "permission_mode": "bypassPermissions",
    "tool_name": "Bash",
    "tool_input": {"command": "rm -r build"},
    "tool_use_id": "call_fake000001",
}


def test_claude_pre_tool_use_is_read_into_one_tool_call() -> None:
    call = claude.ADAPTER.parse(CLAUDE_PRE)
    assert call.kind is EventKind.TOOL
    assert call.tool_call == ToolCall("claude", "Bash", CLAUDE_PRE["tool_input"])  # type: ignore[arg-type]
    assert (call.session_id, call.cwd, call.permission_mode) == (CLAUDE_PRE["session_id"], "/repo", "default")
    assert call.tool_use_id == "toolu_fake000001"


def test_claude_permission_request_has_no_tool_use_id() -> None:
    call = claude.ADAPTER.parse(CLAUDE_PERMISSION)
    assert call.kind is EventKind.PERMISSION
    assert call.tool_use_id is None
    assert call.tool_call is not None and call.tool_call.tool == "Bash"


def test_records_carry_the_result_and_the_prompt() -> None:
    post = {**CLAUDE_PRE, "hook_event_name": "PostToolUse", "tool_response": {"stdout": "x" * 100_000}}
    call = claude.ADAPTER.parse(post)
    assert call.kind is EventKind.RESULT and call.result is not None
    assert len(call.result) == 64 * 1024 and call.result.endswith("…")
    prompt = claude.ADAPTER.parse({"hook_event_name": "UserPromptSubmit", "prompt": "clean up", "cwd": "/r"})
    assert (prompt.kind, prompt.prompt, prompt.tool_call) == (EventKind.PROMPT, "clean up", None)
    other = claude.ADAPTER.parse({"hook_event_name": "Stop"})
    assert other.kind is EventKind.OTHER


@pytest.mark.parametrize(
    ("event", "verdict", "body"),
    [
        (
            "PreToolUse",
            Verdict.DENY,
            {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": "held by gateway",
                }
            },
        ),
        (
            "PreToolUse",
            Verdict.APPROVE,
            {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "allow",
                    "permissionDecisionReason": "held by gateway",
                }
            },
        ),
        ("PreToolUse", Verdict.PASS, {}),
        (
            "PermissionRequest",
            Verdict.APPROVE,
            {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}},
        ),
        (
            "PermissionRequest",
            Verdict.DENY,
            {
                "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest",
                    "decision": {"behavior": "deny", "message": "held by gateway"},
                }
            },
        ),
        ("PermissionRequest", Verdict.PASS, {}),
        ("UserPromptSubmit", Verdict.DENY, {"decision": "block", "reason": "held by gateway"}),
    ],
)
def test_claude_answers_are_the_shapes_that_took_effect(event: str, verdict: Verdict, body: Any) -> None:
    answer = claude.ADAPTER.render(event, verdict, "held by gateway")
    assert answer.body == body
    assert answer.exit_code == 0 and answer.verdict is verdict
    assert claude.ADAPTER.read_answer(event, answer.body) is verdict


@pytest.mark.parametrize("event", ["PostToolUse", "Stop", "UserPromptSubmit"])
@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.APPROVE, Verdict.RECORDED])
def test_non_gate_events_are_answered_with_no_decision(event: str, verdict: Verdict) -> None:
    answer = claude.ADAPTER.render(event, verdict)
    assert answer.body == {} and answer.verdict is Verdict.RECORDED
    assert claude.ADAPTER.read_answer(event, {}) is Verdict.RECORDED


def test_a_tool_that_ran_cannot_be_denied() -> None:
    answer = claude.ADAPTER.render("PostToolUse", Verdict.DENY, "too late")
    assert answer.body == {} and answer.verdict is Verdict.RECORDED


def test_the_reason_is_clipped() -> None:
    answer = claude.ADAPTER.render("PreToolUse", Verdict.DENY, "r" * 5000)
    assert len(answer.body["hookSpecificOutput"]["permissionDecisionReason"]) == 1000


DENY_PRE = {"hookEventName": "PreToolUse", "permissionDecision": "deny"}


@pytest.mark.parametrize(
    "body",
    [
        {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask"}},
        {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "defer"}},
        {"hookSpecificOutput": {"hookEventName": "PostToolUse", "permissionDecision": "deny"}},
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "updatedInput": {},
            }
        },
        {
            "hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny"},
            "continue": False,
        },
        {"hookSpecificOutput": "deny"},
        {"error": "internal", "message": "boom"},
        {"decision": "block", "reason": "no"},
    ],
)
def test_anything_else_is_not_a_valid_answer_to_a_tool_gate(body: Any) -> None:
    assert claude.ADAPTER.read_answer("PreToolUse", body) is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"hook_event_name": 7},
        {"hook_event_name": ""},
        {"hook_event_name": "PreToolUse"},
        {"hook_event_name": "PreToolUse", "tool_name": ""},
        {"hook_event_name": "PreToolUse", "tool_name": ["Bash"]},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": "rm -rf /"},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": [1]},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": 3},
        {"hook_event_name": "UserPromptSubmit", "prompt": {"text": "x"}},
    ],
)
def test_malformed_payloads_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(HookError):
        claude.ADAPTER.parse(payload)


def test_an_unknown_tool_passes_through_for_policy_to_judge() -> None:
    call = claude.ADAPTER.parse({**CLAUDE_PRE, "tool_name": "mcp__db__drop", "tool_input": {"table": "t"}})
    assert call.tool_call == ToolCall("claude", "mcp__db__drop", {"table": "t"})


# --- Codex CLI ---------------------------------------------------------------------------------


def test_codex_reads_the_claude_shape_under_its_own_name() -> None:
    call = codex.ADAPTER.parse(CODEX_PRE)
    assert call.tool_call == ToolCall("codex", "Bash", {"command": "rm -r build"})
    assert call.permission_mode == "bypassPermissions"
    assert adapter_for("codex") is codex.ADAPTER


def test_codex_deny_is_claude_deny() -> None:
    assert codex.ADAPTER.render("PreToolUse", Verdict.DENY, "no").body == (
        claude.ADAPTER.render("PreToolUse", Verdict.DENY, "no").body
    )


def test_codex_approval_of_a_tool_gate_is_no_objection_and_never_ask() -> None:
    # Codex ignores "ask" (the command runs) and treats "allow" as a no-op.
    assert codex.ADAPTER.render("PreToolUse", Verdict.APPROVE, "ok").body == {}
    assert (
        codex.ADAPTER.read_answer(
            "PreToolUse",
            {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}},
        )
        is None
    )
    assert (
        codex.ADAPTER.read_answer(
            "PreToolUse", {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask"}}
        )
        is None
    )


def test_codex_permission_request_uses_decision_behavior() -> None:
    approve = codex.ADAPTER.render("PermissionRequest", Verdict.APPROVE)
    assert approve.body == {
        "hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}
    }
    deny = codex.ADAPTER.render("PermissionRequest", Verdict.DENY, "held by gateway")
    assert deny.body["hookSpecificOutput"]["decision"] == {"behavior": "deny", "message": "held by gateway"}
