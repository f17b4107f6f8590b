"""End to end: approved execution with four-eyes approval, two Chromium contexts, a real shared shell.

Participant A (group dev) drives through the composer; approver B (group approvers) approves a
held line in the inbox with a WebAuthn assertion over that exact action. The owner's shell is a
real `rcgate share -- bash` with a certificate from `rcgate login`; the recording is read back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pexpect
import pytest
from playwright.async_api import expect

from tests.e2e import live

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HELD_TIMEOUT_S = 6


def _policy_with_short_hold(tmp_root: Path) -> str:
    """The demo policy, with held actions timing out after a few seconds (to see a timeout)."""
    text = (ROOT / "gateway/policy/demo_policy.yaml").read_text()
    text = re.sub(r"held_action_timeout_s: \d+", f"held_action_timeout_s: {HELD_TIMEOUT_S}", text)
    tmp_root.mkdir(parents=True, exist_ok=True)
    path = tmp_root / "policy.yaml"
    path.write_text(text)
    return str(path)


POLICY_DIR = Path("/tmp") / "rcgate-e2e-policy"
ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": _policy_with_short_hold(POLICY_DIR)}


async def _verdict(page, text: str, state: str) -> None:
    item = page.get_by_role("list", name="Your actions").get_by_role("listitem").filter(has_text=text).first
    await expect(item).to_have_attribute("data-state", state, timeout=20_000)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [ENV], indirect=True)
async def test_held_line_runs_after_approval_and_denied_or_timed_out_lines_never_do(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    owner = await new_tab()
    await virtual_authenticator(owner.page)
    await live.enrol_passkey(owner.page, gateway.enrol_link("olivia", "member"))
    env = live.workstation_env(gateway, tmp_path / "workstation")
    await live.rcgate_login(gateway, owner.page, env)
    work = tmp_path / "work"
    (work / "build").mkdir(parents=True)
    (work / "build" / "artifact.o").write_text("x")
    child, _ = live.start_share(env, work, "bash", "--norc", "--noprofile")
    try:
        # A: group dev, joins through an approved-execution link made on the owner's page.
        a = await new_tab()
        await virtual_authenticator(a.page)
        await live.enrol_passkey(a.page, live.enrol_link_with_group(gateway, "dana", "dev"))
        token = await live.create_link(owner.page, gateway, mode="approved_execution")
        await a.page.goto(f"{gateway.url}/l/{token}")
        await a.page.wait_for_url(f"{gateway.url}/p/*")
        await expect(a.page.locator("#mode-badge")).to_have_text("Approved execution")
        composer = a.page.get_by_label("Command")

        # Allowed: runs at once.
        await composer.fill("ls build")
        await a.page.get_by_role("button", name="Submit").click()
        await _verdict(a.page, "ls build", "allowed")
        child.expect("artifact.o")

        # Denied: never reaches the PTY.
        await composer.fill("sudo id")
        await a.page.get_by_role("button", name="Submit").click()
        await _verdict(a.page, "sudo id", "denied")

        # Held, then timed out: never reaches the PTY either.
        await composer.fill("rm -rf build/nothing-here")
        await a.page.get_by_role("button", name="Submit").click()
        await _verdict(a.page, "rm -rf build/nothing-here", "held")
        await _verdict(a.page, "rm -rf build/nothing-here", "denied")

        # Held, then approved by B with a passkey in the inbox: runs.
        b = await new_tab()
        await virtual_authenticator(b.page)
        await live.enrol_passkey(b.page, live.enrol_link_with_group(gateway, "ayla", "approvers"))
        await composer.fill("rm -rf build")
        await a.page.get_by_role("button", name="Submit").click()
        await _verdict(a.page, "rm -rf build", "held")
        assert (work / "build").exists()
        await b.page.goto(f"{gateway.url}/approvals")
        card = b.page.locator("pre.action-text", has_text="rm -rf build")
        await expect(card).to_be_visible()
        await b.page.get_by_role("button", name=re.compile(r"^Approve \d+$")).first.click()
        await _verdict(a.page, "rm -rf build", "approved")
        child.sendline("echo gone-$((1+1)); test -e build || echo no-build-$((2+2))")
        child.expect("no-build-4")
        assert not (work / "build").exists()
        assert "sudo id" not in child.before
        assert a.errors == [] and b.errors == []
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    cast = live.recordings(tmp_path / "recordings")[0]
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    inputs = "".join(e[2] for e in events if e[1] == "i")
    assert "ls build\r" in inputs and "rm -rf build\r" in inputs
    assert "sudo id" not in inputs and "nothing-here" not in inputs
    markers = [e[2] for e in events if e[1] == "m"]
    assert any(m.startswith("approval requested") for m in markers), markers
    assert any(m.startswith("approved #") for m in markers), markers
    assert any("denied line" in m for m in markers), markers
    assert "intact" in live.verify_recording(gateway, cast)
