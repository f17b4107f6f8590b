"""`rcgate approvals`: the owner at the workstation approves a held line with TOTP at the prompt."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyotp

from gateway.connector.approvals_cli import run
from gateway.core.models import Role
from tests.integration.conftest import ORIGIN, Gateway
from tests.integration.test_approved_execution import _driver_api, _submit
from tests.integration.test_sessions_api import _read_until


def answers(*values: str) -> Iterator[str]:
    yield from values


async def test_the_owner_approves_a_held_line_from_the_terminal_with_totp(gateway: Gateway) -> None:
    ws, uplink, _ = await _driver_api(gateway)  # olivia (owner, passkey) shares; dana (dev) drives
    verdict = await _submit(ws, "rm -rf build")
    assert verdict["state"] == "held"
    # An approver who uses an authenticator app: enrols TOTP + password, then approves from the CLI.
    _, secret = await gateway.enrol_totp("tom")
    user = await gateway.identity.user_by_name("tom")
    await gateway.identity._store.update_user(
        user.model_copy(update={"groups": ("approvers",), "role": Role.MEMBER})
    )
    gateway.clock.advance(30)
    login_code = pyotp.TOTP(secret).at(gateway.clock.now())
    url = str(gateway.client.make_url("/")).rstrip("/")
    out = io.StringIO()
    it = answers("tom", "correct horse battery", login_code)
    await run("list", None, url, ask=lambda prompt, secret_: next(it), out=out, origin=ORIGIN)
    assert "rm -rf build" in out.getvalue()
    # Each code works once: the second sign-in and the approval each need a later 30-second step.
    gateway.clock.advance(30)
    login2 = pyotp.TOTP(secret).at(gateway.clock.now())
    gateway.clock.advance(30)
    approve_code = pyotp.TOTP(secret).at(gateway.clock.now())
    out = io.StringIO()
    it = answers("tom", "correct horse battery", login2, approve_code)
    await run(
        "approve", verdict["action_id"], url, ask=lambda prompt, secret_: next(it), out=out, origin=ORIGIN
    )
    assert "recorded" in out.getvalue()
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict" and m[1]["state"] == "approved")
    assert bytes(uplink.input) == b"rm -rf build\r"
    records = [e for e in await gateway.identity.audit_events(limit=500) if e.type == "approval.approved"]
    assert records and json.dumps(records[-1].detail)
    await ws.close()
