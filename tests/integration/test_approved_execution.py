"""Approved execution over the WebSocket: composed lines and classed keys, decided by the demo policy."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gateway.core.models import Role
from tests.integration.conftest import ORIGIN, Gateway
from tests.integration.test_sessions_api import _link, _read_until, _share, _token, _ws_url


async def _driver(gateway: Gateway) -> tuple[aiohttp.ClientWebSocketResponse, Any]:
    ws, uplink, _ = await _driver_api(gateway)
    return ws, uplink


async def _driver_api(gateway: Gateway) -> tuple[aiohttp.ClientWebSocketResponse, Any, Any]:
    owner, _ = await gateway.enrol_passkey("olivia")
    dev, _ = await gateway.enrol_passkey("dana", Role.MEMBER, ("dev",))
    handle, uplink = await _share(gateway, "olivia")
    link = await _link(owner, handle.session_id, mode="approved_execution")
    status, body = await dev.post("/api/links/redeem", {"token": _token(link)})
    assert status == 200 and body["mode"] == "approved_execution", body
    ws = await dev.client.ws_connect(_ws_url(gateway, body["participation"]), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "hello")
    return ws, uplink, dev


async def _submit(ws: aiohttp.ClientWebSocketResponse, text: str) -> dict[str, Any]:
    await ws.send_str(json.dumps({"t": "submit", "text": text}))
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    return seen[-1][1]  # type: ignore[no-any-return]


async def test_an_allowed_line_runs_with_enter(gateway: Gateway) -> None:
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "ls -la")
    assert verdict["state"] == "allowed" and verdict["rule"] == "list-and-read", verdict
    assert bytes(uplink.input) == b"ls -la\r"
    await ws.close()


async def test_a_denied_line_never_reaches_the_pty_and_says_why(gateway: Gateway) -> None:
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "sudo rm -rf /")
    assert verdict["state"] == "denied" and verdict["rule"] == "no-sudo" and verdict["reason"], verdict
    assert bytes(uplink.input) == b""
    await ws.close()


async def test_a_chain_hiding_a_command_is_judged_by_its_worst_part(gateway: Gateway) -> None:
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "ls; sudo reboot")
    assert verdict["state"] == "denied", verdict
    assert bytes(uplink.input) == b""
    await ws.close()


async def test_escape_sequences_in_a_composed_line_are_refused(gateway: Gateway) -> None:
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "ls \x1b]52;c;aGk=\x07")
    assert verdict["state"] == "denied", verdict
    assert bytes(uplink.input) == b""
    await ws.close()


async def test_keys_pass_by_class(gateway: Gateway) -> None:
    ws, uplink = await _driver(gateway)
    await ws.send_str(json.dumps({"t": "in", "d": "\x03"}))  # interrupt: allowed
    await ws.send_str(json.dumps({"t": "in", "d": "\x1b[Z"}))  # mode switch: denied
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    assert seen[-1][1]["kind"] == "key" and seen[-1][1]["state"] == "denied"
    await ws.send_bytes(b"rm -rf /\r")  # raw typing outside the composer: denied
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict")
    assert seen[-1][1]["text"] == "raw"
    await ws.send_str(json.dumps({"t": "ping"}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "pong")
    assert bytes(uplink.input) == b"\x03"
    await ws.close()


async def test_a_member_outside_dev_cannot_join_in_approved_execution(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    member, _ = await gateway.enrol_passkey("mike")
    handle, _ = await _share(gateway, "olivia")
    link = await _link(owner, handle.session_id, mode="approved_execution")
    status, body = await member.post("/api/links/redeem", {"token": _token(link)})
    assert status == 403 and body["error"] == "policy_denied", body


async def test_a_held_line_runs_after_an_approver_signs_it_with_webauthn(gateway: Gateway) -> None:
    approver, approver_key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "rm -rf build")
    assert verdict["state"] == "held" and verdict["rule"] == "rm-recursive-or-force", verdict
    assert bytes(uplink.input) == b""
    status, inbox = await approver.call("GET", "/api/approvals")
    assert status == 200 and [a["text"] for a in inbox["approvals"]] == ["rm -rf build"], inbox
    action_id = verdict["action_id"]
    status, opts = await approver.post(f"/api/approvals/{action_id}/options")
    assert status == 200, opts
    credential = approver_key.get(opts["options"], ORIGIN)
    status, body = await approver.post(
        f"/api/approvals/{action_id}/decide", {"approve": True, "credential": credential}
    )
    assert status == 200, body
    seen = await _read_until(
        ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict" and m[1]["state"] == "approved"
    )
    assert seen[-1][1]["action_id"] == action_id
    assert bytes(uplink.input) == b"rm -rf build\r"
    await ws.close()


async def test_a_denied_held_line_never_reaches_the_pty(gateway: Gateway) -> None:
    approver, approver_key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    ws, uplink = await _driver(gateway)
    verdict = await _submit(ws, "rm -rf build")
    action_id = verdict["action_id"]
    status, opts = await approver.post(f"/api/approvals/{action_id}/options")
    credential = approver_key.get(opts["options"], ORIGIN)
    status, _ = await approver.post(
        f"/api/approvals/{action_id}/decide", {"approve": False, "credential": credential}
    )
    assert status == 200
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "verdict" and m[1]["state"] == "denied")
    assert bytes(uplink.input) == b""
    await ws.close()


async def test_the_requester_cannot_approve_their_own_line(gateway: Gateway) -> None:
    ws, uplink, dana = await _driver_api(gateway)
    verdict = await _submit(ws, "rm -rf build")
    status, inbox = await dana.call("GET", "/api/approvals")
    assert all(a["action_id"] != verdict["action_id"] for a in inbox["approvals"])
    status, body = await dana.post(f"/api/approvals/{verdict['action_id']}/options")
    assert status in (403, 409), body
    assert bytes(uplink.input) == b""
    await ws.close()
