"""Gemini CLI hook format, and what every adapter shares (registry, fail-closed answers, purity)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from gateway.hooks import gemini
from gateway.hooks.model import EventKind, HookError, UnknownAssistant, Verdict, fail_closed
from gateway.hooks.registry import ASSISTANTS, adapter_for
from gateway.policy import ToolCall

# RECIPES-ASSISTANTS.md §3, Gemini CLI 0.61.0.
GEMINI_BEFORE = {
    "session_id": "57f491d9-5844-44e1-8d2f-5a8024af4308",
    "transcript_path": "/home/u/.gemini/tmp/proj/chats/session.jsonl",
    "cwd": "/repo",
    "hook_event_name": "BeforeTool",
    "timestamp": "2026-11-22T02:19:48.252Z",
    "tool_name": "run_shell_command",
    "tool_input": {"command": "rm -rf build", "description": "Remove the build directory"},
}


def test_before_tool_is_read_into_one_tool_call() -> None:
    call = gemini.ADAPTER.parse(GEMINI_BEFORE)
    assert call.kind is EventKind.TOOL
    assert call.tool_call == ToolCall("gemini", "run_shell_command", GEMINI_BEFORE["tool_input"])  # type: ignore[arg-type]
    assert call.permission_mode is None and call.tool_use_id is None


def test_after_tool_and_before_agent_are_records() -> None:
    after = gemini.ADAPTER.parse(
        {**GEMINI_BEFORE, "hook_event_name": "AfterTool", "tool_response": {"llmContent": "x"}}
    )
    assert after.kind is EventKind.RESULT and after.result == '{"llmContent": "x"}'
    agent = gemini.ADAPTER.parse({"hook_event_name": "BeforeAgent", "prompt": "clean"})
    assert (agent.kind, agent.prompt) == (EventKind.PROMPT, "clean")


@pytest.mark.parametrize(
    ("event", "verdict", "body"),
    [
        ("BeforeTool", Verdict.DENY, {"decision": "deny", "reason": "held by gateway"}),
        ("BeforeTool", Verdict.APPROVE, {"decision": "allow"}),
        ("BeforeTool", Verdict.PASS, {}),
        ("BeforeAgent", Verdict.DENY, {"decision": "deny", "reason": "held by gateway"}),
        ("AfterTool", Verdict.DENY, {}),
        ("AfterTool", Verdict.RECORDED, {}),
    ],
)
def test_gemini_answers(event: str, verdict: Verdict, body: Any) -> None:
    answer = gemini.ADAPTER.render(event, verdict, "held by gateway")
    assert answer.body == body and answer.exit_code == 0
    expected = verdict if gemini.ADAPTER.event_kind(event) is not EventKind.RESULT else Verdict.RECORDED
    assert gemini.ADAPTER.read_answer(event, answer.body) is expected


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "ask"},
        {"decision": "block", "reason": "x"},
        {"decision": "deny"},
        {"decision": "allow", "reason": "x", "continue": False},
        {"hookSpecificOutput": {"permissionDecision": "deny"}},
    ],
)
def test_other_gemini_bodies_are_not_answers(body: Any) -> None:
    assert gemini.ADAPTER.read_answer("BeforeTool", body) is None


def test_gemini_malformed_payload() -> None:
    with pytest.raises(HookError):
        gemini.ADAPTER.parse({"hook_event_name": "BeforeTool", "tool_input": {}})


def test_registry_knows_three_assistants_and_refuses_others() -> None:
    assert ASSISTANTS == ("claude", "codex", "gemini")
    with pytest.raises(UnknownAssistant) as err:
        adapter_for("cursor")
    assert err.value.status == 404 and "cursor" in err.value.message


@pytest.mark.parametrize("assistant", ["claude", "codex", "gemini"])
def test_fail_closed_denies_in_the_assistants_own_format(assistant: str) -> None:
    adapter = adapter_for(assistant)
    answer = fail_closed(adapter, None, "the gateway is unreachable")
    assert answer.verdict is Verdict.DENY and answer.rule == "builtin:hook-error"
    assert adapter.read_answer(adapter.gate_event, answer.body) is Verdict.DENY
    assert "the gateway is unreachable; the call was not run" in str(answer.body)
    assert answer.exit_code == 0 and answer.stderr == "rcgate hook: the gateway is unreachable"


def test_fail_closed_keeps_the_payloads_event() -> None:
    adapter = adapter_for("claude")
    answer = fail_closed(adapter, {"hook_event_name": "PermissionRequest"}, "x")
    assert answer.body["hookSpecificOutput"]["decision"]["behavior"] == "deny"
    prompt = fail_closed(adapter, {"hook_event_name": "UserPromptSubmit"}, "x")
    assert prompt.body == {"decision": "block", "reason": "rcgate: x; the prompt was not sent"}
    ran = fail_closed(adapter, {"hook_event_name": "PostToolUse"}, "x")
    assert ran.body == {} and ran.verdict is Verdict.RECORDED
    unknown = fail_closed(adapter, {"hook_event_name": "Mystery"}, "x")
    assert unknown.body["hookSpecificOutput"]["hookEventName"] == "PreToolUse"


PURE = ["model.py", "claude.py", "codex.py", "gemini.py", "registry.py", "timing.py"]
FORBIDDEN = {"asyncio", "socket", "time", "aiohttp", "urllib", "subprocess", "threading", "ssl", "os"}


@pytest.mark.parametrize("name", PURE)
def test_format_modules_do_no_io(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "gateway" / "hooks" / name
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert not roots & FORBIDDEN
