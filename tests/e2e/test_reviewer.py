"""End to end: the reviewer workbench in a real Chromium against the real `rcgate serve`.

Recordings are written with the gateway's own Recorder into its recordings folder and signed
with its key (`<data_dir>/recording_ed25519`, created when the gateway starts). A reviewer
enrols with a passkey, searches for a command, opens the hit: the player starts at that
moment, its progress bar carries the approval marker, and playing on highlights the approval
in the audit timeline. Terminal text that carries `<script>` or OSC 52 stays inert text.
A real `rcgate share -- bash` session is followed live from its replay page: what the owner
types appears in the reviewer's player without a reload, and the timeline grows.
No page logs a CSP violation or a script error.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pexpect
import pytest
from playwright.async_api import Page, expect

from gateway.recording.keys import key_path, load_signing_key
from tests.e2e import live
from tests.fixtures.recordings import Step, write_recording

pytestmark = pytest.mark.e2e

OSC52 = "\x1b]52;c;c2VjcmV0LWNsaXBib2FyZA==\x07"
XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
DEPLOY = [
    Step(0.5, "o", "olivia@build:~/app$ "),
    Step(1.0, "m", "join bob (approved_execution)"),
    Step(1.0, "m", "approval requested #1 by bob: rule review-deploy (policy v1)"),
    Step(0.5, "o", "\x1b[1;33mwaiting for approval\x1b[0m\r\n"),
    Step(1.5, "m", "approved #1 (approved by carol)"),
    Step(0.2, "i", "make deploy-prod\r"),
    Step(0.3, "o", "make deploy-prod\r\nDeploying release 42 to production\r\n"),
    Step(2.0, "m", "leave bob: left"),
    Step(2.0, "o", "done\r\nolivia@build:~/app$ "),
]
SCRIPT_COUNT = 4  # the <script> elements replay.html ships with
DEMO_POLICY = str(Path(__file__).resolve().parents[2] / "gateway" / "policy" / "demo_policy.yaml")
LIVE_ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": DEMO_POLICY}  # members may watch


def _screen(page: Page):
    return page.locator(".ap-term")


async def _write(gateway, sid: str, steps: list[Step], **kwargs) -> None:
    key = load_signing_key(key_path(gateway.data_dir))
    root = gateway.data_dir.parent / "recordings"  # RCGATE_RECORDINGS_DIR of the fixture
    await write_recording(root, key, sid, steps, started=time.time() - 3600, **kwargs)


async def _no_trouble(tab) -> None:
    assert await tab.csp_violations() == []
    assert tab.errors == []


@pytest.mark.timeout(120)
async def test_reviewer_searches_opens_the_hit_and_follows_the_audit_timeline(
    gateway, new_tab, virtual_authenticator
):
    await _write(gateway, "ses_deploy42", DEPLOY, owner="olivia", host="build", labels={"env": "prod"})
    await _write(gateway, "ses_quiet", [Step(1.0, "o", "nothing to see\r\n")], owner="quinn")
    tab = await new_tab()
    page = tab.page
    await virtual_authenticator(page)
    await live.enrol_passkey(page, gateway.enrol_link("rita", "reviewer"))

    await page.goto(f"{gateway.url}/recordings")
    table = page.get_by_role("table", name="All recordings")
    row = table.get_by_role("row").filter(has=page.get_by_role("link", name="ses_deploy42"))
    await expect(row).to_contain_text("olivia")
    await expect(row).to_contain_text("env=prod")
    await expect(table.get_by_role("row")).to_have_count(3)  # header + 2

    await page.get_by_label("Text that was shown or typed").fill("DEPLOY-prod")
    await page.get_by_role("button", name="Search").click()
    hits = page.get_by_role("list", name="Search hits")
    await expect(hits.get_by_role("listitem")).to_have_count(2)  # typed and shown
    shown = hits.get_by_role("listitem").filter(has_text="shown")
    await expect(shown.locator("mark")).to_have_text("deploy-prod")
    await expect(shown.locator(".snippet")).to_contain_text("make deploy-prod ⏎ Deploying release 42")
    href = await shown.get_by_role("link").get_attribute("href")
    assert href is not None and re.fullmatch(r"/replay/ses_deploy42#t=\d+\.\d{3}", href), href
    hit_t = float(href.split("#t=")[1])
    assert 4.8 <= hit_t <= 5.1, hit_t  # the output event at 5.0 (s since the recording started)
    await shown.get_by_role("link").click()
    await page.wait_for_url(re.compile(r"/replay/ses_deploy42#t="))

    # The player opens at the hit: the command and its output are on the screen already.
    await expect(_screen(page)).to_contain_text("Deploying release 42")
    await expect(_screen(page)).to_contain_text("waiting for approval")
    await expect(page.locator("#verify-badge")).to_have_text("Intact")
    await expect(page.locator("#replay-title")).to_have_text("olivia@build: bash")

    # The approval is a marker on the player's progress bar.
    tooltips = await page.locator(".ap-marker-container").all_text_contents()
    assert any("approved #1 (approved by carol)" in t for t in tooltips), tooltips
    assert any("approval requested #1" in t for t in tooltips), tooltips

    # The timeline: the hit is after the approval, so the approval is the current event.
    timeline = page.get_by_role("list", name="Audit timeline")
    current = timeline.locator("li.current")
    await expect(current).to_contain_text("approved #1")

    # Clicking an earlier event seeks there; playing on highlights each event as it is reached.
    await timeline.get_by_role("button").filter(has_text="approval requested #1").click()
    await expect(current).to_contain_text("approval requested #1")
    await expect(_screen(page)).not_to_contain_text("Deploying release 42")
    await page.get_by_label("Speed").select_option("2")
    await page.locator(".ap-player").click()  # play
    await expect(current).to_contain_text("approved #1", timeout=8_000)
    await expect(current).to_have_attribute("aria-current", "true")
    await expect(current).to_contain_text("leave bob", timeout=8_000)

    # With idle time skipped the player's clock runs short of the recording's; seeks still land.
    await page.get_by_label("Skip idle time over").select_option("0.5")
    await timeline.get_by_role("button").filter(has_text="approved #1").click()
    await expect(_screen(page)).to_contain_text("waiting for approval")
    await expect(_screen(page)).not_to_contain_text("Deploying release 42")
    await page.wait_for_timeout(600)  # a few polls of the player's time
    await expect(current).to_contain_text("approved #1")
    await _no_trouble(tab)


@pytest.mark.timeout(90)
async def test_terminal_and_user_text_is_inert_on_the_replay_page(gateway, new_tab, virtual_authenticator):
    steps = [
        Step(0.5, "o", f"copy{OSC52}\x1b]0;{XSS}\x07visible text\r\n"),
        Step(0.5, "m", f"join {XSS} {OSC52} (view_only)"),
    ]
    await _write(gateway, "ses_xss", steps, command=("printf", f"{OSC52}{XSS}"), owner="mallory")
    tab = await new_tab()
    page = tab.page
    await virtual_authenticator(page)
    await live.enrol_passkey(page, gateway.enrol_link("rita", "reviewer"))
    await page.goto(f"{gateway.url}/replay/ses_xss#t=1")
    title = page.locator("#replay-title")
    await expect(title).to_contain_text("<script>window.__pwned=1</script>")
    await expect(title).to_contain_text(r"\x1b]52;c;c2VjcmV0LWNsaXBib2FyZA==\x07")  # written out
    item = page.get_by_role("list", name="Audit timeline").get_by_role("listitem").first
    await expect(item).to_contain_text(f"join {XSS} " + r"\x1b]52;c;")
    await page.get_by_label("Find in this recording").fill("copy")
    await page.get_by_role("button", name="Find").click()
    snippet = page.get_by_role("list", name="Matches in this recording").locator(".snippet")
    await expect(snippet).to_have_text("copyvisible text ⏎ ")  # OSC 52 and the title: stripped
    await expect(_screen(page)).to_contain_text("visible text")
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("script").count() == SCRIPT_COUNT
    assert await page.locator("#main img").count() == 0
    assert (await page.title()).startswith(r"mallory@laptop: printf \x1b]52")
    await _no_trouble(tab)


@pytest.mark.timeout(60)
async def test_members_are_turned_away(gateway, new_tab, virtual_authenticator):
    tab = await new_tab()
    await virtual_authenticator(tab.page)
    await live.enrol_passkey(tab.page, gateway.enrol_link("mo", "member"))
    await tab.page.goto(f"{gateway.url}/recordings")
    await expect(tab.page.get_by_role("alert")).to_contain_text("reviewers and admins")
    await _no_trouble(tab)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [LIVE_ENV], indirect=True)
async def test_reviewer_follows_a_live_session_as_it_is_recorded(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    _, env = await live.owner_workstation(gateway, new_tab, virtual_authenticator, tmp_path / "workstation")
    child, link = live.start_share(env, tmp_path, "bash", "--norc", "--noprofile")
    try:
        child.sendline("echo before-$((20+1))")
        child.expect("before-21")
        rid = (await live.wait_for_recording(tmp_path / "recordings")).stem

        tab = await new_tab()
        page = tab.page
        await virtual_authenticator(page)
        await live.enrol_passkey(page, gateway.enrol_link("rita", "reviewer"))
        await page.goto(f"{gateway.url}/recordings")
        row = page.get_by_role("table", name="All recordings").get_by_role("row").filter(has_text=rid)
        await expect(row.locator(".badge-live")).to_have_text("live")
        await row.get_by_role("link", name=rid).click()
        await page.wait_for_url(f"{gateway.url}/replay/{rid}")

        # Following: the "Live" state, and what was recorded before the page opened.
        badge = page.locator("#live-badge")
        await expect(badge).to_have_text("Live")
        await expect(badge).to_have_attribute("data-state", "following")
        await expect(page.get_by_role("button", name="Replay from the start")).to_be_visible()
        screen = _screen(page)
        await expect(screen).to_contain_text("before-21")
        await page.wait_for_function("() => window.rcgate && window.rcgate.following()")
        await page.evaluate("() => { window.__samePage = true; }")

        # The owner types in the shared shell: the reviewer's player shows it, no reload.
        child.sendline("echo live-$((6*7))")
        child.expect("live-42")
        await expect(screen).to_contain_text("live-42", timeout=10_000)
        child.sendline("echo '<img src=x onerror=window.__pwned=1>'")
        child.expect("<img src=x onerror")
        await expect(screen).to_contain_text("<img src=x onerror=window.__pwned=1>")

        # The timeline grows: a viewer joins, and that is the newest, highlighted event.
        viewer = await new_tab()
        await virtual_authenticator(viewer.page)
        await live.enrol_passkey(viewer.page, gateway.enrol_link("victor", "member"))
        await viewer.page.goto(link)
        await viewer.page.wait_for_url(f"{gateway.url}/p/*")
        timeline = page.get_by_role("list", name="Audit timeline")
        current = timeline.locator("li.current")
        await expect(current).to_contain_text("join victor (view_only)", timeout=10_000)
        await expect(current).to_have_attribute("data-kind", "join")
        assert await page.evaluate("() => window.__samePage === true")
        assert await page.evaluate("() => window.rcgate.following()")
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    # The session ends: the page turns into the replay of the finished recording by itself.
    await expect(page.locator("#status")).to_contain_text("The session has ended", timeout=15_000)
    await expect(badge).to_be_hidden()
    await expect(page.locator("#verify-badge")).to_have_text("Intact")
    await expect(timeline).to_contain_text("end: owner's program exited")
    await expect(screen).to_contain_text("live-42")
    assert await page.evaluate("() => window.__samePage === true")
    assert not await page.evaluate("() => window.rcgate.following()")
    assert await page.evaluate("() => window.__pwned") is None
    assert await page.locator("#main img").count() == 0
    await _no_trouble(tab)
