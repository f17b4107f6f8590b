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
    owner, env = await live.owner_workstation(
        gateway, new_tab, virtual_authenticator, tmp_path / "workstation"
    )
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
        await live.connected(a.page)
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
    await _reviewer_finds_the_approved_command(gateway, new_tab, virtual_authenticator, cast)


async def _reviewer_finds_the_approved_command(gateway, new_tab, virtual_authenticator, cast: Path) -> None:
    """Acceptance: a reviewer searches for the command the session above ran, opens the hit: the
    player starts at that moment, its markers include the approval, the timeline highlights it."""
    rid = cast.stem
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    typed_at = next(e[0] for e in events if e[1] == "i" and e[2] == "rm -rf build\r")
    approved_at = next(e[0] for e in events if e[1] == "m" and e[2].startswith("approved #"))
    assert approved_at <= typed_at

    r = await new_tab()
    page = r.page
    await virtual_authenticator(page)
    await live.enrol_passkey(page, gateway.enrol_link("rita", "reviewer"))
    await page.goto(f"{gateway.url}/recordings")
    row = page.get_by_role("table", name="All recordings").get_by_role("row").filter(has_text=rid)
    await expect(row).to_contain_text("olivia")
    await expect(row).to_contain_text("dana")

    await page.get_by_label("Text that was shown or typed").fill("rm -rf build")
    await page.get_by_role("button", name="Search").click()
    hits = page.get_by_role("list", name="Search hits").get_by_role("listitem")
    await expect(hits.first).to_be_visible()
    typed = hits.filter(has_text="typed")
    await expect(typed).to_have_count(1)  # the denied "rm -rf build/nothing-here" was never typed
    await expect(typed.locator("mark")).to_have_text("rm -rf build")
    link = typed.get_by_role("link")
    href = await link.get_attribute("href")
    assert href is not None and re.fullmatch(rf"/replay/{rid}#t=\d+\.\d{{3}}", href), href
    hit_t = float(href.split("#t=")[1])
    assert abs(hit_t - typed_at) < 0.002, (hit_t, typed_at)
    await link.click()
    await page.wait_for_url(re.compile(rf"/replay/{rid}#t="))

    # The player starts at that moment: its clock is at the hit, the screen shows what came
    # before the command (the allowed `ls build`) and nothing of what came after.
    await expect(page.locator("#verify-badge")).to_have_text("Intact")
    screen = page.locator(".ap-term")
    await expect(screen).to_contain_text("artifact.o")
    await page.wait_for_function("() => window.rcgate && window.rcgate.ready")
    at = await page.evaluate("() => window.rcgate.currentTime()")
    assert hit_t - 0.001 <= at <= hit_t + 0.05, (at, hit_t)
    await expect(screen).not_to_contain_text("no-build-4")

    # The approval is a marker on the progress bar, and the highlighted event of the timeline.
    tooltips = await page.locator(".ap-marker-container").all_text_contents()
    assert any("approved #2 (approved by ayla)" in t for t in tooltips), tooltips
    assert any("approval requested #2 by dana" in t for t in tooltips), tooltips
    current = page.get_by_role("list", name="Audit timeline").locator("li.current")
    await expect(current).to_have_count(1)
    await expect(current).to_contain_text("approved #2 (approved by ayla)")
    await expect(current).to_have_attribute("data-kind", "approval")
    await expect(current).to_have_attribute("aria-current", "true")
    assert await r.csp_violations() == []
    assert r.errors == []
