"""Privileged mode: requested with a reason, granted by an approver's WebAuthn assertion, raw keys pass,
and the grant drops back to approved execution by itself."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.core.models import Role
from tests.integration.conftest import ORIGIN, Gateway
from tests.integration.test_sessions_api import _link, _read_until, _share, _token, _ws_url

DEMO = (Path(__file__).resolve().parents[2] / "gateway/policy/demo_policy.yaml").read_text()
# The demo policy, with group dev allowed to ask for a 2-second privileged grant from an approver.
SHORT_GRANT = DEMO.replace(
    "  - id: dev-approved-execution\n    who: {groups: [dev]}\n    modes: [view_only, approved_execution]",
    "  - id: dev-approved-execution\n    who: {groups: [dev]}\n    modes:\n      view_only: {}\n"
    "      approved_execution: {}\n      privileged:\n        enabled: true\n        max_grant_s: 2\n"
    "        approvers: {groups: [approvers]}\n        reason: raw keystrokes",
)


@pytest.mark.parametrize("gateway", [SHORT_GRANT], indirect=True)
async def test_privileged_requested_granted_used_and_dropped_back(gateway: Gateway) -> None:
    assert SHORT_GRANT != DEMO
    approver, approver_key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    owner, _ = await gateway.enrol_passkey("olivia")
    dev, _ = await gateway.enrol_passkey("dana", Role.MEMBER, ("dev",))
    handle, uplink = await _share(gateway, "olivia")
    link = await _link(owner, handle.session_id, mode="approved_execution")
    _, body = await dev.post("/api/links/redeem", {"token": _token(link)})
    ws = await dev.client.ws_connect(_ws_url(gateway, body["participation"]), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "hello")

    # Raw keys are refused in approved execution.
    await ws.send_bytes(b"top\r")
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    assert bytes(uplink.input) == b""

    await ws.send_str(json.dumps({"t": "request_mode", "mode": "privileged", "reason": "debug a hung build"}))
    seen = await _read_until(
        ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict" and m[1]["state"] == "held"
    )
    action_id = seen[-1][1]["action_id"]
    status, inbox = await approver.call("GET", "/api/approvals")
    assert [a["text"] for a in inbox["approvals"]] == ["debug a hung build"], inbox
    _, opts = await approver.post(f"/api/approvals/{action_id}/options")
    credential = approver_key.get(opts["options"], ORIGIN)
    status, _ = await approver.post(
        f"/api/approvals/{action_id}/decide", {"approve": True, "credential": credential}
    )
    assert status == 200
    seen = await _read_until(
        ws, lambda m: m[0] == "ctl" and m[1]["t"] == "mode" and m[1]["mode"] == "privileged"
    )
    assert seen[-1][1]["grant_s"] == 2

    await ws.send_bytes(b"top\r")  # raw keys now pass
    await ws.send_str(json.dumps({"t": "ping"}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "pong")
    assert bytes(uplink.input) == b"top\r"

    seen = await _read_until(
        ws,
        lambda m: m[0] == "ctl" and m[1]["t"] == "mode" and m[1]["mode"] == "approved_execution",
        timeout=10,
    )
    assert "expired" in seen[-1][1]["reason"]
    await ws.send_bytes(b"q")  # raw again refused after the grant
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    await asyncio.sleep(0)
    assert bytes(uplink.input) == b"top\r"
    await ws.close()


async def test_privileged_is_never_granted_without_policy(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    dev, _ = await gateway.enrol_passkey("dana", Role.MEMBER, ("dev",))
    handle, uplink = await _share(gateway, "olivia")
    link = await _link(owner, handle.session_id, mode="approved_execution")
    _, body = await dev.post("/api/links/redeem", {"token": _token(link)})
    ws = await dev.client.ws_connect(_ws_url(gateway, body["participation"]), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "hello")
    await ws.send_str(json.dumps({"t": "request_mode", "mode": "privileged", "reason": "please"}))
    assert bytes(uplink.input) == b""
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    assert seen[-1][1]["state"] == "denied"
    await ws.send_str(json.dumps({"t": "request_mode", "mode": "view_only"}))  # dropping down always works
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "mode")
    assert seen[-1][1]["mode"] == "view_only"
    await ws.close()
