"""Building blocks of the live-session e2e tests: real `rcgate login`, `rcgate share`, OpenSSH viewers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect
from playwright.async_api import Page, expect

from tests.e2e.conftest import RCGATE, Gateway

PASSWORD = "correct horse battery"
TOTP_STEP_S = 30
SSH_OPTIONS = [
    "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no",
    "-o", "PreferredAuthentications=keyboard-interactive",
]  # fmt: skip
LINK_RE = re.compile(r"session link[^:]*: (https?://\S+/l/[A-Za-z0-9_-]+)")


def ssh_port(gateway: Gateway) -> int:
    data = json.loads((gateway.data_dir / "runtime.json").read_text())
    return int(data["ssh_port"])


def workstation_env(gateway: Gateway, home: Path) -> dict[str, str]:
    """A workstation's environment: its own config dir, a plain bash prompt, no bracketed paste."""
    home.mkdir(parents=True, exist_ok=True)
    inputrc = home / "inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")
    env = {k: v for k, v in gateway.env.items() if not k.startswith("RCGATE_")}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "INPUTRC": str(inputrc),
            "TERM": "xterm-256color",
            "PS1": "$ ",
        }
    )
    return env


async def enrol_passkey(page: Page, url: str, name: str = "Test key") -> None:
    await page.goto(url)
    await page.get_by_label("Passkey name").fill(name)
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.get_by_role("heading", name="Enrolment complete")).to_be_visible()


async def enrol_totp(page: Page, url: str, oathtool: Any) -> tuple[str, int]:
    """Enrol TOTP + password; returns the secret and the TOTP step the enrolment code used."""
    await page.goto(url)
    await page.get_by_role("button", name="Set up an authenticator app").click()
    await expect(page.locator("#totp-secret")).to_be_visible()
    secret = await page.locator("#totp-secret").get_attribute("data-secret")
    assert secret
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Confirm password").fill(PASSWORD)
    await page.get_by_label("Authentication code").fill(oathtool(secret))
    await page.get_by_role("button", name="Save authenticator").click()
    await expect(page.get_by_role("heading", name="Enrolment complete")).to_be_visible()
    return secret, int(time.time() // TOTP_STEP_S)


async def next_totp_step(after_step: int, margin_s: float = 3.0) -> None:
    """Wait until a TOTP step later than AFTER_STEP with MARGIN_S left (the enrolment code's is spent)."""
    while True:
        now = time.time()
        left = TOTP_STEP_S - (now % TOTP_STEP_S)
        if int(now // TOTP_STEP_S) > after_step and left > margin_s:
            return
        await asyncio.sleep(left + 0.2)


async def rcgate_login(gateway: Gateway, page: Page, env: dict[str, str]) -> None:
    """The real device flow: `rcgate login` prints a URL; the signed-in owner approves it in Chromium."""
    proc = await asyncio.create_subprocess_exec(
        *RCGATE, "login", "--gateway", gateway.url, "--no-qr",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    url = None
    seen = []
    async with asyncio.timeout(20):
        while url is None:
            line = (await proc.stdout.readline()).decode()
            assert line, f"rcgate login ended early: {''.join(seen)}"
            seen.append(line)
            if m := re.search(r"(https?://\S+/device#code=\S+)", line):
                url = m.group(1)
    await page.goto(url)
    try:
        await page.get_by_role("button", name="Approve").click(timeout=10_000)
    except Exception:
        await page.screenshot(path="/tmp/device.png")
        print("DEVICE PAGE:", url, await page.inner_text("body"))
        raise
    await expect(page.locator("#status")).to_have_text(
        "This workstation is now connected. You can close this page."
    )
    async with asyncio.timeout(20):
        rest = (await proc.stdout.read()).decode()
        assert await proc.wait() == 0, "".join(seen) + rest
    assert "Logged in as" in rest


def start_share(env: dict[str, str], cwd: Path, *command: str) -> tuple[pexpect.spawn, str]:
    """`rcgate share -- COMMAND` in a real PTY; returns the child and the printed link."""
    child = pexpect.spawn(
        RCGATE[0], [*RCGATE[1:], "share", "--label", "repo=e2e", "--", *command],
        env=env, cwd=str(cwd), encoding="utf-8", timeout=20, dimensions=(30, 100),
    )  # fmt: skip
    child.delaybeforesend = None
    child.expect(LINK_RE)
    return child, str(child.match.group(1))


def ssh_viewer(port: int, token: str) -> pexpect.spawn:
    child = pexpect.spawn(
        "ssh", [*SSH_OPTIONS, "-tt", "-p", str(port), f"{token}@localhost"],
        encoding="utf-8", timeout=20, dimensions=(30, 100),
    )  # fmt: skip
    child.delaybeforesend = None
    return child


def ssh_sign_in(child: pexpect.spawn, user: str, code: str) -> None:
    child.expect("rcgate user name: ")
    child.sendline(user)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Verification code: ")
    child.sendline(code)


def enrol_link_with_group(gateway: Gateway, name: str, group: str) -> str:
    """`rcgate users add NAME --group GROUP`: the one-time enrolment link on the browser's origin."""
    res = gateway.cli("users", "add", name, "--group", group)
    m = re.search(r"/enrol#token=(\S+)", res.stdout)
    assert m, res.stdout
    return f"{gateway.url}/enrol#token={m.group(1)}"


async def create_link(page: Page, gateway: Gateway, mode: str = "view_only") -> str:
    """The owner's /sessions page: create a link in MODE; returns its token."""
    await page.goto(f"{gateway.url}/sessions")
    card = page.locator("article.session-card").first
    await card.get_by_label("Mode").select_option(mode)
    await card.get_by_role("button", name="Create link").click()
    url = page.locator("#link-url")
    await expect(url).to_contain_text("/l/")
    return (await url.inner_text()).strip().rsplit("/", 1)[1]


async def screen_has(page: Page, text: str, timeout_ms: int = 15_000) -> None:
    await page.wait_for_function(
        "(t) => window.rcgate && window.rcgate.screenText().includes(t)", arg=text, timeout=timeout_ms
    )


def recordings(root: Path) -> list[Path]:
    return sorted(root.rglob("*.cast"))


def asciinema_cat(path: Path) -> str:
    exe = Path(RCGATE[0]).parent / "asciinema"
    res = subprocess.run(
        [str(exe), "cat", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "TERM": "xterm"},
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def verify_recording(gateway: Gateway, cast: Path) -> str:
    """`rcgate recordings verify FILE`: the gateway's own key must find the recording intact."""
    res = subprocess.run(
        [*RCGATE, "recordings", "verify", str(cast), "--data-dir", str(gateway.data_dir)],
        capture_output=True, text=True, timeout=60, check=False, env=gateway.env,
    )  # fmt: skip
    assert res.returncode == 0, f"verify exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


async def wait_for_recording(root: Path, timeout_s: float = 15.0) -> Path:
    """The one `.cast` under ROOT, once the gateway has created it (a session records from its start)."""
    deadline = time.monotonic() + timeout_s
    while not (found := recordings(root)):
        assert time.monotonic() < deadline, f"no recording under {root} after {timeout_s:.0f} s"
        await asyncio.sleep(0.1)
    assert len(found) == 1, found
    return found[0]


async def owner_workstation(
    gateway: Gateway,
    new_tab: Any,
    virtual_authenticator: Any,
    home: Path,
    name: str = "olivia",
    role: str = "member",
) -> tuple[Any, dict[str, str]]:
    """The session owner: a Chromium tab signed in with a passkey, and a workstation connected by
    the real `rcgate login` (device flow approved in that tab). Returns (tab, workstation env)."""
    owner = await new_tab()
    await virtual_authenticator(owner.page)
    await enrol_passkey(owner.page, gateway.enrol_link(name, role))
    env = workstation_env(gateway, home)
    await rcgate_login(gateway, owner.page, env)
    return owner, env


async def connected(page: Page) -> None:
    """The session page is connected: its socket is open and the gateway's hello has arrived
    (what "Connected" tells a user); input sent before that is refused with "Not connected"."""
    await page.wait_for_function("() => window.rcgate && window.rcgate.state.connected === true")
