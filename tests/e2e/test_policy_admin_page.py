"""End to end: the admin page's Policy section against the real gateway and the real CLI.

An admin validates a policy with a typo (the problem names its line and field), saves an edit
(a new version appears in the history, with its diff), and explains a decision: the page shows the
same trail as `rcgate policy explain` prints for the same question.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e import live

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "gateway/policy/demo_policy.yaml").read_text()


def _policy_copy() -> str:
    """A copy of the demo policy in its own temporary directory (Save writes to it)."""
    path = Path(tempfile.mkdtemp(prefix="rcgate-e2e-policy-admin-")) / "policy.yaml"
    path.write_text(DEMO)
    return str(path)


POLICY_FILE = _policy_copy()
ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": POLICY_FILE}


async def _confirm_if_asked(page) -> None:
    """Save needs a fresh factor: the step-up dialog may appear; the virtual passkey answers it."""
    dialog = page.locator("dialog.stepup")
    try:
        await dialog.wait_for(state="visible", timeout=2_000)
    except Exception:
        return
    await dialog.get_by_role("button", name="Use your passkey").click()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("gateway", [ENV], indirect=True)
async def test_admin_validates_saves_and_explains_the_policy(gateway, new_tab, virtual_authenticator):
    Path(POLICY_FILE).write_text(DEMO)  # a rerun starts from the demo policy again
    tab = await new_tab()
    page = tab.page
    await virtual_authenticator(page)
    await live.enrol_passkey(page, gateway.enrol_link("root", "admin"))
    gateway.cli("users", "add", "bob", "--group", "dev")

    await page.goto(f"{gateway.url}/admin")
    policy = page.get_by_label("Policy", exact=True)
    await expect(policy).to_have_value(DEMO)
    await expect(page.locator("#policy-source")).to_have_text(POLICY_FILE)
    version = (await page.locator("#policy-version").inner_text()).strip()
    assert re.fullmatch(r"[0-9a-f]{6,}", version), version
    await expect(page.locator("#policy-load-error")).to_be_hidden()

    # A typo: the problem names the line and the field.
    await policy.fill(DEMO.replace("held_action_timeout_s: 120", "held_action_timout_s: 120"))
    await page.get_by_role("button", name="Validate").click()
    problems = page.get_by_role("list", name="Policy problems")
    await expect(problems).to_contain_text("line 18: defaults: unknown key 'held_action_timout_s'")
    await expect(page.locator("#policy-result-summary")).to_have_text("not valid")

    # Fixed: valid, with the version the text would have.
    edited = DEMO.replace("description: Demo.", "description: Demo (edited in the browser).")
    assert edited != DEMO
    await policy.fill(edited)
    await page.get_by_role("button", name="Validate").click()
    await expect(page.locator("#policy-result-summary")).to_have_text(
        re.compile(r"^valid, version [0-9a-f]+$")
    )
    new_version = (await page.locator("#policy-result-summary").inner_text()).rsplit(" ", 1)[1]
    assert new_version != version

    # Save (the file is editable): the new version is in force and in the history with its diff.
    save = page.get_by_role("button", name="Save")
    await expect(save).to_be_visible()
    await save.click()
    await _confirm_if_asked(page)
    await expect(page.locator("#policy-result-summary")).to_have_text(
        f"saved, version {new_version} is in force"
    )
    await expect(page.locator("#policy-version")).to_have_text(new_version)
    assert Path(POLICY_FILE).read_text() == edited
    show = page.get_by_role("button", name=re.compile(rf"^Show \d+-{new_version}\.yaml$"))
    await show.click()
    diff = page.locator("#policy-diff")
    await expect(diff).to_contain_text("+description: Demo (edited in the browser).")
    await expect(diff).to_contain_text("-description: Demo.")
    await expect(page.get_by_role("button", name=re.compile(rf"^Show \d+-{version}\.yaml$"))).to_be_visible()

    # Explain: the same trail as the CLI.
    await page.get_by_label("User", exact=True).fill("bob")
    await page.get_by_label("Mode", exact=True).select_option("approved_execution")
    await page.get_by_label("Input", exact=True).fill("rm -rf build")
    await page.get_by_label("Labels", exact=True).fill("repo=web")
    await page.get_by_role("button", name="Explain", exact=True).click()
    result = page.locator("pre#explain-result")
    await expect(result).to_contain_text("rule rm-recursive-or-force")
    shown = (await result.inner_text()).strip()

    cli = gateway.cli(
        "policy", "explain", "--user", "bob", "--mode", "approved_execution", "--input", "rm -rf build"
    ).stdout
    cli_decision = next(line for line in cli.splitlines() if line.startswith("decision:"))
    page_decision = shown.splitlines()[0]
    assert page_decision == cli_decision, (page_decision, cli)
    assert "rm-recursive-or-force" in cli_decision
    # The whole trail matches too (the CLI adds a "policy … version …" header line first).
    assert shown == "\n".join(cli.strip().splitlines()[1:])

    # An unknown user is an error message, not a stale answer.
    await page.get_by_label("User", exact=True).fill("nobody-here")
    await page.get_by_role("button", name="Explain", exact=True).click()
    await expect(page.locator("#error")).to_be_visible()
    await expect(result).to_be_hidden()

    assert tab.errors == []
    assert await tab.csp_violations() == []
