"""End to end: privileged mode from the browser terminal page.

Participant A (group dev) joins through an approved-execution link and asks for privileged mode
with a reason; approver B (group approvers) grants it in the /approvals inbox with a passkey. A's
badge and a banner (also shown to B, who watches through a view-only link) say so, A's raw
keystrokes reach the owner's real shell, and after the short grant A is back in approved execution
by itself. The recording keeps both mode changes.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pexpect
import pytest
from playwright.async_api import expect

from tests.e2e import live

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "gateway/policy/demo_policy.yaml").read_text()
GRANT_S = 3
# The demo policy, with group dev allowed to ask for a short privileged grant from an approver
# (the same edit as tests/integration/test_privileged.py).
SHORT_GRANT = DEMO.replace(
    "  - id: dev-approved-execution\n    who: {groups: [dev]}\n    modes: [view_only, approved_execution]",
    "  - id: dev-approved-execution\n    who: {groups: [dev]}\n    modes:\n      view_only: {}\n"
    f"      approved_execution: {{}}\n      privileged:\n        enabled: true\n"
    f"        max_grant_s: {GRANT_S}\n"
    "        approvers: {groups: [approvers]}\n        reason: raw keystrokes",
)
assert SHORT_GRANT != DEMO


def _policy_copy() -> str:
    path = Path(tempfile.mkdtemp(prefix="rcgate-e2e-policy-privileged-")) / "policy.yaml"
    path.write_text(SHORT_GRANT)
    return str(path)


ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": _policy_copy()}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [ENV], indirect=True)
async def test_privileged_granted_in_the_inbox_used_and_dropped_back(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    owner, env = await live.owner_workstation(
        gateway, new_tab, virtual_authenticator, tmp_path / "workstation"
    )
    work = tmp_path / "work"
    work.mkdir()
    child, _ = live.start_share(env, work, "bash", "--norc", "--noprofile")
    try:
        a = await new_tab()
        await virtual_authenticator(a.page)
        await live.enrol_passkey(a.page, live.enrol_link_with_group(gateway, "dana", "dev"))
        b = await new_tab()
        await virtual_authenticator(b.page)
        await live.enrol_passkey(b.page, live.enrol_link_with_group(gateway, "ayla", "approvers"))

        # B watches through a view-only link in a second page of the same context.
        watch_token = await live.create_link(owner.page, gateway, mode="view_only")
        watch = await b.page.context.new_page()
        await watch.goto(f"{gateway.url}/l/{watch_token}")
        await watch.wait_for_url(f"{gateway.url}/p/*")
        await expect(watch.locator("#mode-badge")).to_have_text("View only")

        token = await live.create_link(owner.page, gateway, mode="approved_execution")
        await a.page.goto(f"{gateway.url}/l/{token}")
        await a.page.wait_for_url(f"{gateway.url}/p/*")
        badge = a.page.locator("#mode-badge")
        await expect(badge).to_have_text("Approved execution")
        await live.connected(a.page)
        banner = a.page.locator("#privileged-banner")
        await expect(banner).to_be_hidden()
        drop = a.page.get_by_role("button", name="Drop to approved execution")
        await expect(drop).to_be_hidden()

        # A asks, with a reason; it is held for an approver.
        await a.page.get_by_label("Reason", exact=True).fill("debug a hung build")
        await a.page.get_by_role("button", name="Request privileged mode").click()
        await expect(a.page.locator("#privileged-request-status")).to_have_text("Waiting for an approver…")
        await expect(badge).to_have_text("Approved execution")

        # B approves it in the inbox (a passkey assertion over that request).
        await b.page.goto(f"{gateway.url}/approvals")
        await expect(b.page.locator("pre.action-text", has_text="debug a hung build")).to_be_visible()
        await b.page.get_by_role("button", name=re.compile(r"^Approve \d+$")).first.click()

        await expect(badge).to_have_text("Privileged")
        await expect(banner).to_be_visible()
        await expect(banner).to_have_text(re.compile(rf"^Privileged: dana — [0-{GRANT_S}] s left$"))
        await expect(watch.locator("#privileged-banner")).to_have_text(re.compile(r"^Privileged: dana"))
        await expect(drop).to_be_visible()
        await expect(a.page.get_by_role("button", name="Request privileged mode")).to_be_hidden()

        # Raw keystrokes typed in the terminal reach the owner's shell.
        await a.page.locator("#terminal").click()
        await a.page.keyboard.type("echo priv-$((6*7))")
        await a.page.keyboard.press("Enter")
        child.expect("priv-42", timeout=10)

        # The grant runs out by itself: back to approved execution, the banner goes everywhere.
        await expect(badge).to_have_text("Approved execution", timeout=6_000)
        await expect(banner).to_be_hidden()
        await expect(watch.locator("#privileged-banner")).to_be_hidden()
        await expect(drop).to_be_hidden()
        await expect(a.page.get_by_role("button", name="Request privileged mode")).to_be_visible()
        assert a.errors == [] and b.errors == []
        assert await a.csp_violations() == []
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    cast = live.recordings(tmp_path / "recordings")[0]
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    markers = [e[2] for e in events if e[1] == "m"]
    assert any(m.startswith("mode dana -> privileged") for m in markers), markers
    assert any("-> approved_execution: privileged grant expired" in m for m in markers), markers
    inputs = "".join(e[2] for e in events if e[1] == "i")
    assert "echo priv-$((6*7))" in inputs, inputs


# The same grant, but privileged needs a passkey presented within the last two seconds: the request is
# answered with a step-up, the page runs the dialog and sends the request once more.
STALE_FACTOR = SHORT_GRANT.replace(
    "privileged: {factors: [passkey], max_age_s: 120}", "privileged: {factors: [passkey], max_age_s: 2}"
)
assert STALE_FACTOR != SHORT_GRANT


def _stale_copy() -> str:
    path = Path(tempfile.mkdtemp(prefix="rcgate-e2e-policy-stepup-")) / "policy.yaml"
    path.write_text(STALE_FACTOR)
    return str(path)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "gateway", [{"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": _stale_copy()}], indirect=True
)
async def test_privileged_request_steps_up_then_is_sent_again(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    owner, env = await live.owner_workstation(
        gateway, new_tab, virtual_authenticator, tmp_path / "workstation"
    )
    work = tmp_path / "work"
    work.mkdir()
    child, _ = live.start_share(env, work, "bash", "--norc", "--noprofile")
    try:
        a = await new_tab()
        await virtual_authenticator(a.page)
        await live.enrol_passkey(a.page, live.enrol_link_with_group(gateway, "dana", "dev"))
        token = await live.create_link(owner.page, gateway, mode="approved_execution")
        await a.page.goto(f"{gateway.url}/l/{token}")
        await a.page.wait_for_url(f"{gateway.url}/p/*")
        await expect(a.page.locator("#mode-badge")).to_have_text("Approved execution")
        await live.connected(a.page)
        await a.page.wait_for_timeout(2_500)  # the sign-in passkey is now older than max_age_s

        await a.page.get_by_label("Reason", exact=True).fill("look at a stuck process")
        await a.page.get_by_role("button", name="Request privileged mode").click()
        dialog = a.page.locator("dialog.stepup")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Use your passkey").click()
        await expect(dialog).to_be_hidden()
        # Sent again after the step-up; the fresh passkey lets it through to the inbox.
        await expect(a.page.locator("#privileged-request-status")).to_have_text("Waiting for an approver…")
        verdicts = await a.page.evaluate("window.rcgate.state.verdicts.map((v) => v.state)")
        assert verdicts.count("stepup") == 1, verdicts
        assert a.errors == []
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()
