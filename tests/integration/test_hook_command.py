"""``rcgate hook claude|codex|gemini`` (gateway.hooks.command) against a real HTTP server on 127.0.0.1.

The server answers with ``answer_hook`` under the demo policy, or misbehaves on purpose (500,
401, a redirect, HTML, a wrong shape, silence). Whatever goes wrong, the adapter must print
a deny in the assistant's own format, exit 0, and do it before the assistant's hook timeout.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from gateway.core.ids import SessionId, UserId
from gateway.hooks import command
from gateway.hooks.endpoint import HeldCall, answer_hook
from gateway.hooks.model import MAX_PAYLOAD_BYTES
from gateway.hooks.timing import parse_hook_timeout
from gateway.policy import Actor, SessionFacts, parse_policy, shipped_policy_text

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-123"
DEMO = parse_policy(shipped_policy_text("demo"), "demo_policy.yaml")
OWNER = Actor(user_id=UserId("usr_o"), name="owner")
SESSION = SessionFacts(id=SessionId("ses_1"), owner_id=OWNER.user_id, owner_name="owner", repo_root="/repo")


def pre(command_text: str, event: str = "PreToolUse") -> dict[str, Any]:
    return {
        "hook_event_name": event,
        "session_id": "s",
        "cwd": "/repo",
        "permission_mode": "default",
        "tool_name": "Bash",
        "tool_input": {"command": command_text},
        "tool_use_id": "toolu_1",
    }


GEMINI = {
    "hook_event_name": "BeforeTool",
    "tool_name": "run_shell_command",
    "tool_input": {"command": "sudo ls"},
}


@dataclass
class Gateway:
    url: str
    mode: str = "answer"  # answer | status | raw | sleep | redirect
    status: int = 200
    raw: str = ""
    approve: bool = True
    seen: list[dict[str, Any]] = field(default_factory=list)


GW = web.AppKey("gw", Gateway)


async def _handle(request: web.Request) -> web.StreamResponse:
    gw = request.app[GW]
    body = await request.read()
    gw.seen.append({"path": request.path, "headers": dict(request.headers), "body": body})
    if gw.mode == "sleep":
        await asyncio.sleep(60)
    if gw.mode == "redirect":
        raise web.HTTPTemporaryRedirect("http://127.0.0.1:9/elsewhere")
    if gw.mode == "status":
        return web.json_response({"error": "x", "message": "session ended"}, status=gw.status)
    if gw.mode == "raw":
        return web.Response(text=gw.raw, content_type="application/json")
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.json_response({"error": "unauthenticated", "message": "bad hook token"}, status=401)

    async def await_approval(held: HeldCall) -> bool:
        return gw.approve

    answer = await answer_hook(
        request.match_info["assistant"],
        json.loads(body),
        SESSION,
        OWNER,
        DEMO,
        now=time.time(),
        await_approval=await_approval,
        hook_timeout_s=parse_hook_timeout(request.headers.get("X-Rcgate-Hook-Timeout")),
    )
    return web.json_response(dict(answer.body))


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway(url="")
    app = web.Application(client_max_size=2 * MAX_PAYLOAD_BYTES)
    app[GW] = gw
    app.router.add_post("/api/hooks/{assistant}", _handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    gw.url = f"http://127.0.0.1:{port}"
    yield gw
    await runner.cleanup()


def env_for(gw: Gateway | None, **extra: str) -> dict[str, str]:
    env = {"RCGATE_GATEWAY": gw.url if gw else "http://127.0.0.1:9", "RCGATE_HOOK_TOKEN": TOKEN}
    env |= {"RCGATE_HOOK_TIMEOUT_S": "30"}
    return env | extra


async def run_hook(
    assistant: str, payload: Any, env: dict[str, str], *, raw: str | None = None
) -> tuple[int, Any, str, float]:
    stdin = io.StringIO(raw if raw is not None else json.dumps(payload))
    stdout, stderr = io.StringIO(), io.StringIO()
    start = time.monotonic()
    code = await asyncio.to_thread(command.main, assistant, stdin, stdout, env, stderr=stderr)
    took = time.monotonic() - start
    text = stdout.getvalue()
    return code, (json.loads(text) if text else None), stderr.getvalue(), took


def reason(body: Any) -> str:
    specific = body["hookSpecificOutput"]
    return str(specific.get("permissionDecisionReason") or specific["decision"].get("message"))


# --- the happy paths -------------------------------------------------------------------------


async def test_a_deny_from_policy_travels_through(gateway: Gateway) -> None:
    code, body, _, _ = await run_hook("claude", pre("sudo ls"), env_for(gateway))
    assert code == 0 and body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "shell-no-sudo" in reason(body)
    (seen,) = gateway.seen
    assert seen["path"] == "/api/hooks/claude"
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["X-Rcgate-Hook-Timeout"] == "30"
    assert json.loads(seen["body"]) == pre("sudo ls")  # the payload, unchanged
    assert "Cookie" not in seen["headers"]


async def test_an_approved_hold_is_an_allow(gateway: Gateway) -> None:
    code, body, _, _ = await run_hook("claude", pre("rm -rf build"), env_for(gateway))
    assert code == 0 and body["hookSpecificOutput"]["permissionDecision"] == "allow"
    gateway.approve = False
    _, refused, _, _ = await run_hook("claude", pre("rm -rf build"), env_for(gateway))
    assert refused["hookSpecificOutput"]["permissionDecision"] == "deny"


async def test_policy_allow_is_no_objection(gateway: Gateway) -> None:
    code, body, err, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert (code, body, err) == (0, {}, "")


async def test_codex_and_gemini(gateway: Gateway) -> None:
    _, codex_body, _, _ = await run_hook("codex", pre("rm -r build"), env_for(gateway))
    assert codex_body == {}  # approved: Codex's no-op answer, never "ask"
    _, gemini_body, _, _ = await run_hook("gemini", GEMINI, env_for(gateway))
    assert gemini_body["decision"] == "deny" and "shell-no-sudo" in gemini_body["reason"]
    assert [s["path"] for s in gateway.seen] == ["/api/hooks/codex", "/api/hooks/gemini"]


async def test_records_are_forwarded_and_answered_with_nothing(gateway: Gateway) -> None:
    prompt = {"hook_event_name": "UserPromptSubmit", "prompt": "hello"}
    code, body, _, _ = await run_hook("claude", prompt, env_for(gateway))
    assert (code, body) == (0, {}) and len(gateway.seen) == 1


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"RCGATE_HOOK_TOKEN": ""}, "no hook token"),
        ({"RCGATE_GATEWAY": ""}, "not an http(s) URL"),
        ({"RCGATE_GATEWAY": "file:///etc/passwd"}, "not an http(s) URL"),
        ({"RCGATE_GATEWAY": "http://127.0.0.1:1/?x=1"}, "not an http(s) URL"),
    ],
)
async def test_missing_token_or_gateway_is_a_deny(gateway: Gateway, env: dict[str, str], why: str) -> None:
    code, body, err, _ = await run_hook("claude", pre("ls"), env_for(gateway, **env))
    assert code == 0 and body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert why in reason(body) and why in err
    assert gateway.seen == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"tool_name": "Bash"}', "no hook_event_name"),
        ('{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": "rm"}', "tool_input"),
    ],
)
async def test_malformed_stdin_is_a_deny(gateway: Gateway, raw: str, why: str) -> None:
    code, body, _, _ = await run_hook("claude", None, env_for(gateway), raw=raw)
    assert code == 0 and why in reason(body)
    assert gateway.seen == []


async def test_an_oversized_tool_call_is_a_deny(gateway: Gateway) -> None:
    big = pre("echo " + "x" * MAX_PAYLOAD_BYTES)
    code, body, _, _ = await run_hook("claude", big, env_for(gateway))
    assert code == 0 and "larger than" in reason(body) and gateway.seen == []


async def test_an_oversized_result_is_trimmed_and_recorded(gateway: Gateway) -> None:
    ran = {**pre("cat big"), "hook_event_name": "PostToolUse", "tool_response": {"stdout": "y" * 2_000_000}}
    code, body, _, _ = await run_hook("claude", ran, env_for(gateway))
    assert (code, body) == (0, {})
    sent = json.loads(gateway.seen[0]["body"])
    assert sent["rcgate_truncated"] is True and len(sent["tool_response"]) == 64 * 1024


async def test_an_unknown_assistant_blocks_with_exit_2() -> None:
    code, body, err, _ = await run_hook("cursor", pre("ls"), env_for(None))
    assert (code, body) == (2, None) and "no hook adapter" in err


async def test_an_unknown_tool_goes_to_policy(gateway: Gateway) -> None:
    payload = {**pre("x"), "tool_name": "TotallyNewTool", "tool_input": {}}
    _, body, _, _ = await run_hook("claude", payload, env_for(gateway))
    assert body["hookSpecificOutput"]["permissionDecision"] == "allow"  # tool_default review, approved


# --- the gateway misbehaves ------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 410, 500, 503])
async def test_an_error_status_is_a_deny(gateway: Gateway, status: int) -> None:
    gateway.mode, gateway.status = "status", status
    _, body, _, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert f"HTTP {status}: session ended" in reason(body)


async def test_a_wrong_token_is_a_deny(gateway: Gateway) -> None:
    _, body, _, _ = await run_hook("claude", pre("ls"), env_for(gateway, RCGATE_HOOK_TOKEN="stolen"))
    assert "HTTP 401: bad hook token" in reason(body)


async def test_a_redirect_is_not_followed(gateway: Gateway) -> None:
    gateway.mode = "redirect"
    _, body, _, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert "HTTP 307" in reason(body) and len(gateway.seen) == 1


@pytest.mark.parametrize(
    "raw",
    [
        "<html>proxy login</html>",
        "[]",
        '{"error": "internal"}',
        '{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask"}}',
        '{"hookSpecificOutput": {"hookEventName": "PostToolUse", "permissionDecision": "allow"}}',
        '{"decision": "allow"}',
    ],
)
async def test_an_answer_that_is_not_a_hook_answer_is_a_deny(gateway: Gateway, raw: str) -> None:
    gateway.mode, gateway.raw = "raw", raw
    _, body, _, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert body["hookSpecificOutput"]["permissionDecision"] == "deny"


async def test_keep_alive_whitespace_before_the_answer_is_fine(gateway: Gateway) -> None:
    gateway.mode = "raw"
    gateway.raw = " \n \n " + json.dumps({"decision": "deny", "reason": "held too long"})
    _, body, _, _ = await run_hook("gemini", GEMINI, env_for(gateway))
    assert body == {"decision": "deny", "reason": "held too long"}


async def test_the_wrong_assistants_format_is_a_deny(gateway: Gateway) -> None:
    gateway.mode, gateway.raw = "raw", '{"decision": "allow"}'  # Gemini's allow, sent to Claude
    _, body, _, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert "not a hook answer" in reason(body)


async def test_a_slow_gateway_is_a_deny_before_the_hook_timeout(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command, "adapter_budget_s", lambda t: 1.0)
    gateway.mode = "sleep"
    code, body, _, took = await run_hook("claude", pre("ls"), env_for(gateway))
    assert code == 0 and "no answer from the gateway within 1 s" in reason(body)
    assert took < 3


async def test_a_stdin_that_never_ends_is_a_deny_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "adapter_budget_s", lambda t: 0.5)

    class Stuck(io.StringIO):
        def read(self, size: int | None = -1) -> str:
            time.sleep(5)
            return ""

    start = time.monotonic()
    stdout = io.StringIO()
    code = await asyncio.to_thread(
        command.main, "gemini", Stuck(), stdout, env_for(None), stderr=io.StringIO()
    )
    assert code == 0 and time.monotonic() - start < 2
    assert json.loads(stdout.getvalue())["decision"] == "deny"


async def test_the_token_never_appears_in_any_output(gateway: Gateway) -> None:
    gateway.mode, gateway.status = "status", 500
    _, body, err, _ = await run_hook("claude", pre("ls"), env_for(gateway))
    assert TOKEN not in json.dumps(body) and TOKEN not in err


# --- acceptance 3: `rcgate hook claude` with the gateway stopped answers deny within its timeout --


def _run_command(
    env: dict[str, str], payload: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.hooks.command", "claude"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )
    return proc, time.monotonic() - start


def test_gateway_stopped_the_command_answers_deny_at_once() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "RCGATE_GATEWAY": f"http://127.0.0.1:{port}",
        "RCGATE_HOOK_TOKEN": TOKEN,
        "RCGATE_HOOK_TIMEOUT_S": "10",
    }
    proc, took = _run_command(env, pre("rm -rf build"))
    assert proc.returncode == 0 and took < 10
    body = json.loads(proc.stdout)
    assert body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "unreachable" in reason(body)


def test_gateway_silent_the_command_answers_deny_before_the_hook_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        env = {"RCGATE_GATEWAY": f"http://127.0.0.1:{port}", "RCGATE_HOOK_TOKEN": TOKEN}
        env["RCGATE_HOOK_TIMEOUT_S"] = "10"
        proc, took = _run_command(env, pre("rm -rf build"))
    assert proc.returncode == 0 and 7 < took < 10  # 10 s hook timeout - 2 s margin
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
