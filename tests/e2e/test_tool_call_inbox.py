"""End to end: a held Edit tool call in the approver's inbox shows the tool, the file, a diff of the
change and the prompt that led to it; approving it with a passkey lets the call through.

`rcgate share --assistant claude` runs a stand-in for Claude Code (a shell script that reports a
supported version and then does what Claude Code's command hooks do: pipes each hook's JSON into
the real `rcgate hook claude`, with the environment `rcgate share` gave it). The approver reviews
in Chromium. The real Claude Code CLI under the same wiring is `test_assistant_hooks_real.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pexpect
import pytest
from playwright.async_api import expect

from tests.e2e import live
from tests.e2e.conftest import RCGATE

pytestmark = pytest.mark.e2e

DEMO_POLICY = str(Path(__file__).resolve().parents[2] / "gateway" / "policy" / "demo_policy.yaml")
ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": DEMO_POLICY}
PROMPT = "Make the greeting <b>friendlier</b>"
EDIT = {
    "file_path": "/etc/rcgate-e2e/greeting.txt",
    "old_string": "hello\nworld",
    "new_string": "<img src=x onerror=alert(1)>hi",
}

FAKE_CLAUDE = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "2.1.330 (Claude Code)"; exit 0; fi
{hook} < prompt.json > prompt.out
{hook} < edit.json > edit.out
echo "edit answered: $(cat edit.out)"
sleep 300
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [ENV], indirect=True)
async def test_a_held_edit_shows_file_diff_and_prompt_and_runs_once_approved(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    _, env = await live.owner_workstation(gateway, new_tab, virtual_authenticator, tmp_path / "workstation")
    work = tmp_path / "work"
    work.mkdir()
    hook = " ".join([*RCGATE, "hook", "claude"])
    (work / "claude").write_text(FAKE_CLAUDE.format(hook=hook))
    (work / "claude").chmod(0o755)
    base = {"session_id": "c1", "cwd": str(work), "permission_mode": "default"}
    (work / "prompt.json").write_text(
        json.dumps({**base, "hook_event_name": "UserPromptSubmit", "prompt": PROMPT})
    )
    edit = {
        **base,
        "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_use_id": "t1",
        "tool_input": EDIT,
    }
    (work / "edit.json").write_text(json.dumps(edit))

    child = pexpect.spawn(
        RCGATE[0], [*RCGATE[1:], "share", "--assistant", "claude", "--", str(work / "claude")],
        env=env, cwd=str(work), encoding="utf-8", timeout=30, dimensions=(30, 200),
    )  # fmt: skip
    try:
        approver = await new_tab()
        await virtual_authenticator(approver.page)
        await live.enrol_passkey(approver.page, live.enrol_link_with_group(gateway, "ayla", "approvers"))
        page = approver.page
        await page.goto(f"{gateway.url}/approvals")
        card = page.locator("li.approval-card").filter(has_text="Assistant tool call")
        await expect(card).to_be_visible(timeout=30_000)
        view = card.locator(".tool-view")
        await expect(view).to_contain_text("Tool: Edit")
        await expect(view.locator("code")).to_have_text(EDIT["file_path"])
        await expect(view.locator("pre.prompt")).to_have_text(PROMPT)  # as text, not markup
        diff = card.get_by_label(f"Change to {EDIT['file_path']}")
        await expect(diff.locator(".del")).to_have_text(["- hello", "- world"])
        await expect(diff.locator(".add")).to_have_text([f"+ {EDIT['new_string']}"])
        assert await page.locator("b, img").count() == 0, "nothing from the call became markup"
        # The exact signed text is there too, and the approval covers the prompt with the call.
        exact = json.loads(await card.locator("pre.action-text").last.inner_text())
        assert exact == {"input": EDIT, "prompt": PROMPT, "tool": "Edit"}
        await card.get_by_role("button", name=re.compile(r"^Approve \d+$")).click()
        child.expect("edit answered: (.*)")
        answer = json.loads(child.match.group(1).strip())
        assert answer["hookSpecificOutput"]["permissionDecision"] == "allow", answer
        assert approver.errors == [] and await approver.csp_violations() == []
    finally:
        child.sendcontrol("c")
        child.expect(pexpect.EOF, timeout=30)
        child.close()
