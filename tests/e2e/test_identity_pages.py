"""End to end: the identity pages in a real Chromium against the real gateway.

Every ceremony is real: WebAuthn through Chromium's CDP virtual authenticator, TOTP codes from
`oathtool`, enrolment links from `rcgate users add`. Python never calls the API itself.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.e2e

# The lowest value gateway/settings.py accepts (auth.stepup_max_age_s has ge=10).
STEPUP_MAX_AGE_S = 10
STEPUP_ENV = {"RCGATE_AUTH__STEPUP_MAX_AGE_S": str(STEPUP_MAX_AGE_S)}
TOTP_STEP_S = 30
PASSWORD = "correct horse battery"  # >= 10 characters
PAGES = ["/login", "/", "/account", "/admin", "/enrol"]


# The rendered width of an <img>, once it has loaded (or "error" for a broken image).
_IMG_WIDTH = """img => img.complete ? (img.naturalWidth || 'error') : new Promise(resolve => {
  img.addEventListener('load', () => resolve(img.naturalWidth || 'error'), {once: true});
  img.addEventListener('error', () => resolve('error'), {once: true});
})"""


def _step(t: float) -> int:
    return int(t // TOTP_STEP_S)


async def _wait_for_new_totp_step(after_step: int, margin_s: float = 3.0) -> None:
    """Sleep until the TOTP time step is past AFTER_STEP and not within MARGIN_S of its end
    (so the code we compute is still current when the server checks it, even with no window)."""
    while True:
        now = time.time()
        left = TOTP_STEP_S - (now % TOTP_STEP_S)
        if _step(now) > after_step and left > margin_s:
            return
        await asyncio.sleep(left + 0.2)


async def _enrol_passkey(page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.get_by_role("button", name="Add a passkey")).to_be_visible()
    await page.get_by_label("Passkey name").fill(name)
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.get_by_role("heading", name="Enrolment complete")).to_be_visible()


@pytest.mark.parametrize("gateway", [STEPUP_ENV], indirect=True)
async def test_passkey_enrol_signout_signin_and_stepup(gateway, new_tab, virtual_authenticator):
    url = gateway.enrol_link("ada", "admin")
    tab = await new_tab()
    page = tab.page
    cdp, authenticator = await virtual_authenticator(page)

    # Enrol: the token leaves the address bar at once; the passkey is discoverable.
    await _enrol_passkey(page, url, "Test key")
    assert "token" not in page.url
    creds = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]
    assert len(creds) == 1
    assert creds[0]["isResidentCredential"] is True

    await page.get_by_role("link", name="Go to your account").click()
    await page.wait_for_url(f"{gateway.url}/account")
    await expect(page.get_by_role("button", name="Rename Test key")).to_be_visible()
    await expect(page.get_by_text("this browser", exact=True)).to_be_visible()

    # Sign out, then a protected page sends us to /login?next=/admin.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await page.goto(f"{gateway.url}/admin")
    await page.wait_for_url(re.compile(r"/login\?next=%2Fadmin$"))

    # Sign in with the passkey alone (no user name): back to /admin.
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.wait_for_url(f"{gateway.url}/admin")
    signed_in_at = time.monotonic()
    await expect(
        page.get_by_role("table", name="Users").get_by_role("cell", name="ada", exact=True)
    ).to_be_visible()

    # Let the factor go stale, then an admin change needs a step-up.
    await asyncio.sleep(max(0.0, STEPUP_MAX_AGE_S + 1.5 - (time.monotonic() - signed_in_at)))
    await page.get_by_label("User name").fill("bob")
    await page.get_by_label("Role").select_option("reviewer")
    await page.get_by_label("Groups").fill("dev, ops")
    await page.get_by_role("button", name="Add user").click()

    dialog = page.get_by_role("dialog", name="Confirm your identity")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("textbox")).to_have_count(0)  # only a passkey: no code field
    await dialog.get_by_role("button", name="Use your passkey").click()
    await expect(dialog).to_be_hidden()

    # The original request was retried and completed.
    await expect(page.locator("#enrol-url")).to_contain_text("/enrol#token=")
    await expect(page.locator("#enrol-for")).to_contain_text("bob")
    users = page.get_by_role("table", name="Users")
    row = users.get_by_role("row").filter(has=page.get_by_role("cell", name="bob", exact=True))
    await expect(row).to_contain_text("reviewer")
    await expect(row).to_contain_text("dev, ops")
    await expect(page.get_by_role("button", name="Disable bob")).to_be_visible()
    await expect(page.locator("#error")).to_be_hidden()

    await page.get_by_role("button", name="Refresh", exact=True).click()
    await expect(page.locator("#audit tr").first).to_be_visible()

    assert await tab.csp_violations() == []
    assert tab.errors == []


@pytest.mark.timeout(150)
async def test_totp_enrol_and_signin_with_oathtool_code_then_replay_fails(gateway, new_tab, oathtool):
    url = gateway.enrol_link("tess", "member")
    tab = await new_tab()
    page = tab.page

    await page.goto(url)
    await page.get_by_role("button", name="Set up an authenticator app").click()
    secret_el = page.locator("#totp-secret")
    await expect(secret_el).to_be_visible()
    secret = await secret_el.get_attribute("data-secret")
    assert secret and re.fullmatch(r"[A-Z2-7]+=*", secret), secret
    qr = page.get_by_role("img", name=re.compile("QR code"))
    await expect(qr).to_be_visible()
    assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    width = await qr.evaluate(_IMG_WIDTH)
    assert isinstance(width, int) and width > 0, f"the QR code image does not render: {width!r}"

    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Confirm password").fill(PASSWORD)
    await page.get_by_label("Authentication code").fill(oathtool(secret))
    await page.get_by_role("button", name="Save authenticator").click()
    await expect(page.get_by_role("heading", name="Enrolment complete")).to_be_visible()
    enrolled_step = _step(time.time())  # the enrolment code used this step (or the one before)

    await page.get_by_role("link", name="Go to your account").click()
    await expect(page.get_by_role("button", name=re.compile("^Rename "))).to_have_count(1)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/login$"))

    # A code of a later step signs in (the enrolment code's step is spent).
    await _wait_for_new_totp_step(enrolled_step)
    code = oathtool(secret, time.time())
    await page.get_by_label("User name").fill("tess")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Authentication code").fill(code)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{gateway.url}/")
    await expect(page.get_by_text("Signed in as tess (member)")).to_be_visible()

    # Sign out; the same code again is refused, visibly.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await page.get_by_label("User name").fill("tess")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Authentication code").fill(code)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible()
    await expect(alert).not_to_have_text("")
    assert page.url.endswith("/login")
    await page.goto(f"{gateway.url}/")
    await page.wait_for_url(re.compile(r"/login\?next=%2F$"))

    assert await tab.csp_violations() == []
    assert tab.errors == []


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def _check_security_headers(path: str, headers: dict[str, str]) -> None:
    csp = headers.get("content-security-policy", "")
    assert csp, f"{path}: no Content-Security-Policy header"
    d = _directives(csp)
    script_src = d.get("script-src", d.get("default-src", []))
    assert "'self'" in script_src, f"{path}: script-src lacks 'self': {csp}"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, f"{path}: {csp}"
    assert "'self'" in d.get("default-src", []) or "default-src" not in d, csp
    assert headers.get("x-content-type-options", "").lower() == "nosniff", f"{path}: {headers}"
    frame_ok = d.get("frame-ancestors") in (["'none'"], ["'self'"]) or headers.get(
        "x-frame-options", ""
    ).upper() in ("DENY", "SAMEORIGIN")
    assert frame_ok, f"{path}: neither frame-ancestors nor X-Frame-Options: {headers}"
    assert headers.get("referrer-policy", "").lower() in (
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ), f"{path}: Referrer-Policy: {headers.get('referrer-policy')!r}"


async def test_csp_and_security_headers_on_pages(gateway, new_tab, virtual_authenticator):
    # Signed out: the login page, and the enrolment page without a token (shows an error).
    tab = await new_tab()
    page = tab.page
    for path in ("/login", "/enrol"):
        resp = await page.goto(f"{gateway.url}{path}")
        assert resp is not None and resp.status == 200, path
        _check_security_headers(path, await resp.all_headers())
        assert "text/html" in (await resp.all_headers()).get("content-type", "")
    await expect(page.get_by_role("alert")).to_be_visible()

    # Static assets: JS modules with a JavaScript MIME type (nosniff would block anything else).
    for asset in ("/static/js/api.js", "/static/css/app.css"):
        resp = await page.goto(f"{gateway.url}{asset}")
        assert resp is not None and resp.status == 200, asset
        headers = await resp.all_headers()
        want = "javascript" if asset.endswith(".js") else "text/css"
        assert want in headers.get("content-type", ""), (asset, headers.get("content-type"))
        assert headers.get("x-content-type-options", "").lower() == "nosniff", asset

    # Signed in as an admin, render every page with data (QR code included: img-src data:).
    await virtual_authenticator(page)
    await page.goto(gateway.enrol_link("cara", "admin"))
    await page.get_by_role("button", name="Set up an authenticator app").click()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    await expect(qr).to_be_visible()
    assert await qr.evaluate(_IMG_WIDTH) != "error", "the QR code image does not render"
    await page.get_by_role("button", name="Cancel setup").click()
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.get_by_role("heading", name="Enrolment complete")).to_be_visible()
    for path in ("/", "/account", "/admin", "/login"):
        resp = await page.goto(f"{gateway.url}{path}")
        assert resp is not None and resp.status == 200, path
        _check_security_headers(path, await resp.all_headers())
        await page.wait_for_load_state("networkidle")
    await page.goto(f"{gateway.url}/admin")
    await expect(
        page.get_by_role("table", name="Users").get_by_role("cell", name="cara", exact=True)
    ).to_be_visible()

    assert await tab.csp_violations() == [], tab.console
    assert tab.errors == []


async def test_enrolment_link_is_single_use(gateway, new_tab):
    url = gateway.enrol_link("una", "member")

    first = await new_tab()
    await first.page.goto(url)
    await expect(first.page.get_by_role("button", name="Add a passkey")).to_be_visible()
    await expect(first.page.get_by_role("alert")).to_be_hidden()

    second = await new_tab()
    await second.page.goto(url)
    alert = second.page.get_by_role("alert")
    await expect(alert).to_be_visible()
    await expect(alert).not_to_have_text("")
    await expect(second.page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    await expect(second.page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    assert "token" not in second.page.url

    # A forged token is refused the same way.
    forged = await new_tab()
    await forged.page.goto(f"{gateway.url}/enrol#token=forged-{int(time.time())}")
    await expect(forged.page.get_by_role("alert")).to_be_visible()
    await expect(forged.page.get_by_role("alert")).not_to_have_text("")
    await expect(forged.page.get_by_role("button", name="Add a passkey")).to_be_hidden()

    for t in (first, second, forged):
        assert await t.csp_violations() == []
        assert t.errors == []
