"""End-to-end fixtures: the real `rcgate serve` as a subprocess, Debian's Chromium through Playwright,
enrolment links from the real `rcgate users add`, and a CDP virtual WebAuthn authenticator.

The browser always talks to http://localhost:PORT (WebAuthn refuses 127.0.0.1 as an RP ID).
`RCGATE_E2E_RCGATE` may name another `rcgate` executable (default: the venv's).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, CDPSession, Page, async_playwright

ROOT = Path(__file__).resolve().parents[2]
RCGATE = shlex.split(os.environ.get("RCGATE_E2E_RCGATE", str(ROOT / ".venv" / "bin" / "rcgate")))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
ENROL_URL_RE = re.compile(r"(\S*/enrol#token=([A-Za-z0-9_\-.~%]+))")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    """A running `rcgate serve` on http://localhost:PORT with its own data directory."""

    port: int
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except OSError:
            return ""

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run `rcgate ARGS --data-dir DIR` with the server's environment; fail the test if it fails."""
        cmd = [*RCGATE, *args, "--data-dir", str(self.data_dir)]
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if res.returncode != 0:
            pytest.fail(
                f"{shlex.join(cmd)} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}",
                pytrace=False,
            )
        return res

    def enrol_link(self, name: str, role: str = "member") -> str:
        """`rcgate users add NAME --role ROLE`: the printed one-time enrolment URL, on this origin."""
        res = self.cli("users", "add", name, "--role", role)
        for line in (res.stdout + "\n" + res.stderr).splitlines():
            m = ENROL_URL_RE.search(line)
            if m:
                # Use the token on the origin the browser must use (localhost:PORT), whatever
                # public URL the CLI printed.
                return f"{self.url}/enrol#token={m.group(2)}"
        pytest.fail(
            f"`rcgate users add {name}` printed no line with '/enrol#token=':\n{res.stdout}\n{res.stderr}",
            pytrace=False,
        )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@pytest.fixture
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    """Start the real gateway. Parametrize indirectly with a dict of extra environment variables:

    @pytest.mark.parametrize("gateway", [{"RCGATE_AUTH__STEPUP_MAX_AGE_S": "3"}], indirect=True)
    """
    extra: dict[str, str] = dict(getattr(request, "param", None) or {})
    port = _free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "RCGATE_DATA_DIR": str(data_dir),
        "RCGATE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "RCGATE_HTTP__HOST": "localhost",
        "RCGATE_HTTP__PORT": str(port),
        "RCGATE_SSH__PORT": "0",  # any free port: tests never collide with a running gateway on 2222
        **extra,
    }
    env.pop("RCGATE_TEST_REDIS_URL", None)
    log_path = tmp_path / "gateway.log"
    gw = Gateway(port=port, data_dir=data_dir, env=env, log_path=log_path, extra_env=extra)
    cmd = [*RCGATE, "serve", "--data-dir", str(data_dir), "--host", "localhost", "--port", str(port)]
    with log_path.open("wb") as log:
        gw.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    proc = gw.proc
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(gw.url):
            if proc.poll() is not None:
                pytest.fail(
                    f"`{shlex.join(cmd)}` exited {proc.returncode} before /healthz answered:\n{gw.log()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"/healthz did not answer within {START_TIMEOUT_S:.0f} s:\n{gw.log()}", pytrace=False
                )
            time.sleep(0.1)
        yield gw
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
                pytest.fail(
                    f"the gateway ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s:\n{gw.log()}", pytrace=False
                )
    _check_recordings(gw, tmp_path / "recordings")


def _check_recordings(gw: Gateway, root: Path) -> None:
    """Every recording an e2e test made verifies intact with the gateway's public key, offline,
    and the real `asciinema cat` reads it (issue 5, acceptance 1 and 5)."""
    pubkey = root.parent / "recordings.pub"
    casts = sorted(root.rglob("*.cast")) if root.exists() else []
    if not casts:
        return
    exported = subprocess.run(
        [*RCGATE, "recordings", "pubkey", "--data-dir", str(gw.data_dir)],
        env=gw.env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    pubkey.write_text(exported.stdout)
    asciinema = Path(RCGATE[0]).parent / "asciinema"
    for cast in casts:
        verify = [*RCGATE, "recordings", "verify", str(cast), "--pubkey", str(pubkey)]
        res = subprocess.run(verify, env=gw.env, capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 0 and "intact" in res.stdout, (
            f"{shlex.join(verify)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        )
        cat = subprocess.run(
            [str(asciinema), "cat", str(cast)], env={**os.environ, "TERM": "xterm"},
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert cat.returncode == 0, f"asciinema cat {cast}: {cat.stderr.decode(errors='replace')}"


@pytest.fixture
def enrol_link(gateway: Gateway) -> Callable[..., str]:
    """enrol_link(name, role="member") -> http://localhost:PORT/enrol#token=… from `rcgate users add`."""
    return gateway.enrol_link


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        await b.close()


# Records CSP violations seen by the page itself (an init script is not subject to the page's CSP).
_CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""


@dataclass
class Tab:
    """A page plus what it logged: console messages, page errors, failed responses."""

    page: Page
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def csp_violations(self) -> list[str]:
        seen: list[str] = await self.page.evaluate("window.__cspViolations || []")
        logged = [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]
        return seen + logged


@pytest_asyncio.fixture
async def new_tab(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Tab]]]:
    """new_tab(**context_options) -> Tab in a fresh browser context (own cookies); all closed at teardown."""
    contexts: list[BrowserContext] = []

    async def make(**options: Any) -> Tab:
        ctx = await browser.new_context(**options)
        contexts.append(ctx)
        ctx.set_default_timeout(15_000)
        await ctx.add_init_script(_CSP_PROBE)
        page = await ctx.new_page()
        tab = Tab(page)
        page.on("console", lambda m: tab.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: tab.errors.append(str(e)))
        return tab

    yield make
    for ctx in contexts:
        await ctx.close()


async def _add_virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    res = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(res["authenticatorId"])


@pytest.fixture
def virtual_authenticator() -> Callable[[Page], Awaitable[tuple[CDPSession, str]]]:
    """await virtual_authenticator(page) -> (cdp, authenticator_id): a CTAP2 platform authenticator with
    resident keys and user verification, on that page only (add one per tab, before the ceremony)."""
    return _add_virtual_authenticator


def _oathtool_code(secret: str, at: float | None = None) -> str:
    cmd = ["oathtool", "--totp", "-b"]
    if at is not None:
        cmd += ["-N", f"@{int(at)}"]
    cmd.append(secret)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    return res.stdout.strip()


@pytest.fixture
def oathtool() -> Callable[..., str]:
    """oathtool(secret, at=None) -> the TOTP code of SECRET (base32) at unix time AT (default now),
    computed by the real `oathtool --totp -b`."""
    return _oathtool_code
