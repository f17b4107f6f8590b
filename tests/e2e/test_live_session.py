"""End to end: a real `rcgate share -- bash` watched from Chromium and from OpenSSH, view-only.

Nothing is faked: the certificate comes from `rcgate login` approved in the browser, the session
from `rcgate share` in a real PTY, the viewers are Chromium (virtual passkey) and the OpenSSH
client (password + a TOTP code from `oathtool`), and the recording is read by `asciinema cat`.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pexpect
import pytest
from playwright.async_api import expect

from tests.e2e import live

pytestmark = pytest.mark.e2e

DEMO_POLICY = str(Path(__file__).resolve().parents[2] / "gateway" / "policy" / "demo_policy.yaml")
# Any free SSH port, and the demo policy (members may watch; the default lets only the owner in).
SSH_ANY_PORT = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": DEMO_POLICY}
IDLE_2S = {**SSH_ANY_PORT, "RCGATE_SESSIONS__IDLE_TIMEOUT_S": "2"}
JOIN_FRESH_S = 10  # the lowest the settings accept: joining needs a factor this fresh
STEPUP = {**SSH_ANY_PORT, "RCGATE_SESSIONS__JOIN_MAX_AGE_S": str(JOIN_FRESH_S)}


async def _owner_shares(gateway, new_tab, virtual_authenticator, tmp_path: Path, *command: str):
    owner, env = await live.owner_workstation(
        gateway, new_tab, virtual_authenticator, tmp_path / "workstation"
    )
    child, link = live.start_share(env, tmp_path, *command)
    return owner, child, link


async def _browser_viewer(
    gateway, new_tab, virtual_authenticator, link: str, name: str = "victor", *, step_up: bool = False
):
    viewer = await new_tab(viewport={"width": 390, "height": 780})  # a phone screen
    await virtual_authenticator(viewer.page)
    await live.enrol_passkey(viewer.page, gateway.enrol_link(name, "member"))
    if step_up:
        # Sign out, sign in with the passkey, let the factor go stale: opening the link asks again.
        page = viewer.page
        await page.goto(f"{gateway.url}/account")
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r"/login$"))
        await page.get_by_role("button", name="Sign in with a passkey").click()
        await page.wait_for_url(f"{gateway.url}/")
        await asyncio.sleep(JOIN_FRESH_S + 1.5)
        await page.goto(link)
        dialog = page.get_by_role("dialog", name="Confirm your identity")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Use your passkey").click()
    else:
        await viewer.page.goto(link)
    await viewer.page.wait_for_url(f"{gateway.url}/p/*")
    await expect(viewer.page.locator("#mode-badge")).to_have_text("View only")
    return viewer


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [STEPUP], indirect=True)
async def test_browser_and_ssh_viewers_see_the_shared_shell_and_cannot_type(
    gateway, new_tab, virtual_authenticator, oathtool, tmp_path
):
    owner, child, link = await _owner_shares(
        gateway, new_tab, virtual_authenticator, tmp_path, "bash", "--norc", "--noprofile"
    )
    try:
        child.sendline("echo owner-typed-$((40+2))")
        child.expect("owner-typed-42")

        viewer = await _browser_viewer(gateway, new_tab, virtual_authenticator, link, step_up=True)
        page = viewer.page
        await live.screen_has(page, "owner-typed-42")

        # Every form of input from a view-only participant: keys, text frames, binary, paste, resize.
        await page.get_by_role("region", name="Terminal").click()
        await page.keyboard.type("echo viewer-was-here\n")
        await page.evaluate("window.rcgate.send({t: 'in', d: 'echo viewer-text-frame\\r'})")
        await page.evaluate("window.rcgate.sendBinary('echo viewer-binary-frame\\r')")
        await page.evaluate(
            "window.rcgate.send({t: 'in', d: '\\u001b[200~echo viewer-paste\\u001b[201~\\r'})"
        )
        await page.evaluate("window.rcgate.send({t: 'resize', cols: 20, rows: 5})")
        await page.wait_for_function("() => window.rcgate.state.refusals > 0")

        # The owner's PTY saw none of it: its next command runs in a clean line.
        child.sendline("echo check-$((1+1))")
        child.expect("check-2")
        assert "viewer" not in child.before

        # A second viewer with the real OpenSSH client, through a new link from the owner's page.
        token = await live.create_link(owner.page, gateway)
        secret, step = await live.enrol_totp((await new_tab()).page, gateway.enrol_link("tess"), oathtool)
        await live.next_totp_step(step)
        ssh = live.ssh_viewer(live.ssh_port(gateway), token)
        try:
            live.ssh_sign_in(ssh, "tess", oathtool(secret))
            ssh.expect("joined as tess: view only")
            child.sendline("echo both-see-$((2+3))")
            child.expect("both-see-5")
            ssh.expect("both-see-5")
            await live.screen_has(page, "both-see-5")
            ssh.send("echo ssh-viewer-typed\r")
            ssh.expect("view-only: your input was not sent")
            child.sendline("echo after-ssh-$((3+4))")
            child.expect("after-ssh-7")
            assert "ssh-viewer-typed" not in child.before
        finally:
            ssh.close(force=True)

        assert await viewer.csp_violations() == []
        assert viewer.errors == []
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    assert child.exitstatus == 0
    casts = live.recordings(tmp_path / "recordings")
    assert len(casts) == 1
    text = live.asciinema_cat(casts[0])
    assert "owner-typed-42" in text and "both-see-5" in text
    events = [json.loads(line) for line in casts[0].read_text().splitlines()[1:]]
    assert not [e for e in events if e[1] == "i"], "no remote input reached the PTY, so none was recorded"
    assert "intact" in live.verify_recording(gateway, casts[0])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [IDLE_2S], indirect=True)
async def test_idle_timeout_disconnects_browser_and_ssh_viewers_with_the_reason(
    gateway, new_tab, virtual_authenticator, oathtool, tmp_path
):
    # The shell prints a tick every half second until told to stop: the session stays busy while
    # the viewers join, then goes quiet and the 2-second idle timeout ends remote control.
    owner, child, link = await _owner_shares(
        gateway, new_tab, virtual_authenticator, tmp_path, "bash", "--norc", "--noprofile"
    )
    try:
        child.sendline("while [ ! -e stop ]; do echo tick; sleep 0.5; done; echo quiet-$((6*7))")
        child.expect("tick")
        viewer = await _browser_viewer(gateway, new_tab, virtual_authenticator, link)
        await live.screen_has(viewer.page, "tick")
        token = await live.create_link(owner.page, gateway)
        secret, step = await live.enrol_totp((await new_tab()).page, gateway.enrol_link("tess"), oathtool)
        await live.next_totp_step(step)
        ssh = live.ssh_viewer(live.ssh_port(gateway), token)
        try:
            live.ssh_sign_in(ssh, "tess", oathtool(secret))
            ssh.expect("joined as tess")
            (tmp_path / "stop").touch()
            child.expect("quiet-42")
            ssh.expect("disconnected: idle timeout", timeout=15)
            ssh.expect(pexpect.EOF)
        finally:
            ssh.close(force=True)
        await expect(viewer.page.locator("#closed")).to_contain_text("idle", timeout=15_000)

        # Remote control ended; the owner's shell runs on locally.
        await asyncio.sleep(0.5)
        child.sendline("echo still-local-$((5+5))")
        child.expect("still-local-10")
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    casts = live.recordings(tmp_path / "recordings")
    assert len(casts) == 1
    last = json.loads(casts[0].read_text().splitlines()[-1])
    assert last[1] == "m" and "idle timeout" in last[2], last
    assert "quiet-42" in live.asciinema_cat(casts[0])
    assert "intact" in live.verify_recording(gateway, casts[0])
