"""The real-assistant e2e scenario, run INSIDE a private network namespace (only loopback).

Not collected on its own (the name does not start with ``test_``):
``tests/e2e/test_assistant_hooks_real.py`` re-executes pytest on one test of this file under
``unshare -n`` (then ``ip link set lo up``) with ``RCGATE_E2E_NETNS=1``; the test refuses to run
anywhere else. Inside, for real and only on loopback:

* ``rcgate serve`` on http://localhost:PORT under the shipped demo policy (its tool rule
  ``shell-rm-recursive`` holds a recursive ``rm`` for group ``approvers``);
* the owner enrols a passkey in Chromium, runs ``rcgate login`` (device flow approved in
  Chromium), then ``rcgate share --assistant NAME -- NAME …`` in a working folder holding
  ``build/``; the assistant is the REAL CLI, headless, with a fresh ``HOME``, its model API
  replaced by a fake on 127.0.0.1 (``tests.integration.assistant_fakes``) that asks for a
  shell ``rm`` of ``build``;
* the held call appears in the /approvals inbox of an approver (group ``approvers``, passkey
  in a second Chromium context) who approves or denies it with WebAuthn;
* the file system, the assistant's own output, the session's recording markers and
  ``rcgate recordings verify`` are checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.e2e import live
from tests.e2e.conftest import RCGATE, Gateway
from tests.integration.assistant_fakes import model_app
from tests.integration.assistant_harness import CODEX_CONFIG, GEMINI_USER_SETTINGS, QUIET_CLAUDE

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NETNS_ENV = "RCGATE_E2E_NETNS"
DEMO_POLICY = ROOT / "gateway" / "policy" / "demo_policy.yaml"
PROMPT = "Please clean the build directory"
RULE = "shell-rm-recursive"
RM = {"claude": "rm -rf build", "codex": "rm -r build", "gemini": "rm -rf build"}  # Codex refuses rm -rf
GATE = {
    "claude": ("PreToolUse", "Bash"),
    "codex": ("PreToolUse", "Bash"),
    "gemini": ("BeforeTool", "run_shell_command"),
}
ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": str(DEMO_POLICY)}
RUN_TIMEOUT_S = 150  # the assistant's whole run, the hold included (demo review timeout: 120 s)
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B])")
FOREIGN = ("ANTHROPIC_", "CLAUDE", "CODEX", "GEMINI", "GOOGLE_", "OPENAI_", "RCGATE_")


def _only_loopback() -> list[str]:
    return [name for _, name in socket.if_nameindex()]


async def _serve_fake(assistant: str, command: str, log: list[dict[str, Any]]) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(model_app(assistant, command, log))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


def _assistant_command(
    assistant: str, binary: str, home: Path, model_port: int
) -> tuple[list[str], dict[str, str]]:
    """The assistant's headless argv and the environment it needs beside the workstation's, offline."""
    base = f"http://127.0.0.1:{model_port}"
    if assistant == "claude":
        env = QUIET_CLAUDE | {"ANTHROPIC_BASE_URL": base, "ANTHROPIC_API_KEY": "sk-ant-fake-key"}
        return [binary, "-p", PROMPT, "--output-format", "json"], env
    if assistant == "codex":
        own = home / ".codex"
        own.mkdir(parents=True)
        (own / "config.toml").write_text(CODEX_CONFIG.format(port=model_port))
        env = {"CODEX_HOME": str(own), "FAKE_OPENAI_KEY": "sk-fake", "CODEX_CI": "1"}
        return [binary, "exec", "--skip-git-repo-check", "--json", "-s", "workspace-write", PROMPT], env
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_USER_SETTINGS))
    env = {"GOOGLE_GEMINI_BASE_URL": base, "GEMINI_API_KEY": "fake-key", "GEMINI_TELEMETRY_ENABLED": "false"}
    argv = [binary, "-p", PROMPT, "--output-format", "json", "--approval-mode", "yolo", "--skip-trust"]
    return argv, env


def json_documents(screen: str) -> list[Any]:
    """Every JSON value that starts at the beginning of a line of a terminal's output."""
    text = ANSI.sub("", screen).replace("\r\n", "\n").replace("\r", "\n")
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = 0
    while at < len(text):
        if text[at] in "{[" and (at == 0 or text[at - 1] == "\n"):
            try:
                doc, end = decoder.raw_decode(text, at)
            except ValueError:
                pass
            else:
                found.append(doc)
                at = end
                continue
        at += 1
    return found


def _run_share(child: pexpect.spawn) -> tuple[str, int | None]:
    """What the owner's terminal shows until ``rcgate share`` ends, and its exit status (blocking)."""
    child.expect(pexpect.EOF, timeout=RUN_TIMEOUT_S)
    child.close()
    return str(child.before), child.exitstatus


def _verify_when_closed(gateway: Gateway, cast: Path, within_s: float = 20.0) -> str:
    """``rcgate recordings verify`` once the gateway has closed the recording (final checkpoint)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        res = subprocess.run(
            [*RCGATE, "recordings", "verify", str(cast), "--data-dir", str(gateway.data_dir)],
            capture_output=True, text=True, timeout=60, check=False, env=gateway.env,
        )  # fmt: skip
        if res.returncode != 2:  # 2: unsigned tail, the session is still being closed
            break
        time.sleep(0.5)
    return live.verify_recording(gateway, cast)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("gateway", [ENV], indirect=True, ids=["demo-policy"])
@pytest.mark.parametrize("decision", ["approve", "deny"])
@pytest.mark.parametrize("assistant", ["claude", "codex", "gemini"])
async def test_held_tool_call_decided_by_an_approver_in_chromium(
    assistant: str, decision: str, gateway: Gateway, new_tab: Any, virtual_authenticator: Any, tmp_path: Path
) -> None:
    assert os.environ.get(NETNS_ENV) == "1", "run by tests/e2e/test_assistant_hooks_real.py, under unshare -n"
    assert _only_loopback() == ["lo"], f"not in a private network namespace: {_only_loopback()}"
    binary = os.environ.get(f"RCGATE_{assistant.upper()}_BIN", "")
    assert binary and Path(binary).exists(), f"RCGATE_{assistant.upper()}_BIN names no file: {binary!r}"

    # The owner: a passkey, then `rcgate login` approved in Chromium.
    owner = await new_tab()
    await virtual_authenticator(owner.page)
    await live.enrol_passkey(owner.page, gateway.enrol_link("olivia", "member"))
    home = tmp_path / "workstation"
    env = {k: v for k, v in live.workstation_env(gateway, home).items() if not k.startswith(FOREIGN)}
    await live.rcgate_login(gateway, owner.page, env)

    # The approver: group `approvers`, a passkey in a second browser context.
    approver = await new_tab()
    await virtual_authenticator(approver.page)
    await live.enrol_passkey(approver.page, live.enrol_link_with_group(gateway, "ayla", "approvers"))
    await approver.page.goto(f"{gateway.url}/approvals")

    work = tmp_path / "work"
    (work / "build").mkdir(parents=True)
    (work / "build" / "artifact.o").write_text("x")
    command = RM[assistant]
    tmp = tmp_path / "tmp"  # the workstation's TMPDIR: where `rcgate share` makes its session folder
    tmp.mkdir()
    model_log: list[dict[str, Any]] = []
    model, model_port = await _serve_fake(assistant, command, model_log)
    try:
        argv, assistant_env = _assistant_command(assistant, binary, home, model_port)
        share_argv = [*RCGATE[1:], "share", "--label", "repo=e2e", "--assistant", assistant, "--", *argv]
        share_env = {**env, "NO_COLOR": "1", "TMPDIR": str(tmp), **assistant_env}
        child = await asyncio.to_thread(
            pexpect.spawn, RCGATE[0], share_argv, env=share_env,
            cwd=str(work), encoding="utf-8", timeout=30, dimensions=(30, 100),
        )  # fmt: skip
        await asyncio.to_thread(child.expect, live.LINK_RE)
        head = str(child.before) + str(child.after)
        finished = asyncio.ensure_future(asyncio.to_thread(_run_share, child))
        try:
            # The held call reaches the approver's inbox: the exact call, as an assistant tool call.
            card = approver.page.locator("li.approval-card").filter(has_text=command)
            await expect(card).to_be_visible(timeout=60_000)
            await expect(card).to_contain_text("Assistant tool call")
            await expect(card).to_contain_text(f"olivia ({assistant})")
            await expect(card).to_contain_text(RULE)
            assert (work / "build").exists()
            verb = "Approve" if decision == "approve" else "Deny"
            await card.get_by_role("button", name=re.compile(rf"^{verb} \d+$")).click()
            said = "You approved" if decision == "approve" else "You denied"
            await expect(approver.page.locator("#status")).to_contain_text(said)
            async with asyncio.timeout(RUN_TIMEOUT_S):
                screen, status = await finished
        finally:
            if not finished.done():
                child.terminate(force=True)
                await asyncio.wait([finished], timeout=10)
    finally:
        await model.cleanup()
    screen = head + screen
    assert status == 0, f"rcgate share exited {status}:\n{screen[-3000:]}"  # the assistant's own status
    assert owner.errors == [] and approver.errors == []

    # The file system and the assistant's own account of the run.
    assert model_log, f"the assistant never reached its fake model API:\n{screen[-3000:]}"
    assert (work / "build").exists() is (decision == "deny"), screen[-3000:]
    # On a denial the model is told why, in rcgate's words (the reason reached the assistant).
    refused = "an approver refused this call" in json.dumps(model_log)
    assert refused is (decision == "deny"), json.dumps(model_log[-1])[-2000:]
    docs = json_documents(screen)
    if assistant == "claude":
        (result,) = [d for d in docs if isinstance(d, dict) and d.get("type") == "result"]
        denied = [d["tool_name"] for d in result["permission_denials"]]
        assert denied == ([] if decision == "approve" else ["Bash"]), result
    elif assistant == "codex":
        ran = [
            d["item"] for d in docs
            if isinstance(d, dict) and d.get("type") == "item.completed"
            and d.get("item", {}).get("type") == "command_execution"
        ]  # fmt: skip
        assert [r["exit_code"] for r in ran] == ([0] if decision == "approve" else []), docs
    else:
        (result,) = [d for d in docs if isinstance(d, dict) and "stats" in d]
        tools = result["stats"]["tools"]
        assert tools["totalCalls"] == 1, tools
        succeeded = 1 if decision == "approve" else 0
        assert (tools["totalSuccess"], tools["totalFail"]) == (succeeded, 1 - succeeded), tools

    # The session folder of the hook settings is gone; the user's own files it linked to are not.
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("rcgate-session-")]
    own = {"codex": home / ".codex" / "config.toml", "gemini": home / ".gemini" / "settings.json"}
    if assistant in own:
        assert own[assistant].is_file()

    # The recording: the held call and its decision are markers, the chain verifies.
    (cast,) = live.recordings(tmp_path / "recordings")
    assert "intact" in _verify_when_closed(gateway, cast)
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    markers = [e[2] for e in events if e[1] == "m"]
    event, tool = GATE[assistant]
    decided = "approved" if decision == "approve" else "denied"
    assert f"tool call held for approval: {tool} (rule {RULE})" in markers, markers
    assert any(m.startswith(f"tool call {decided}: ") for m in markers), markers
    assert f"{assistant} {event} {tool}: {decision} (rule {RULE})" in markers, markers
