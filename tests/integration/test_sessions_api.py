"""Links, device login and the participant WebSocket over the real aiohttp app and a real Hub."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import aiohttp
import asyncssh
import pytest

from gateway.core.ids import UserId
from gateway.core.models import Role
from gateway.sessions.ports import ConnectorHandle, SessionMeta
from tests.integration.conftest import ORIGIN, Api, Gateway


class FakeUplink:
    """Records what the broker forwards to the connector (the PTY side)."""

    def __init__(self) -> None:
        self.input = bytearray()
        self.ended: str | None = None

    def send_input(self, data: bytes) -> None:
        self.input += data

    def send_end(self, reason: str) -> None:
        self.ended = reason


async def _share(gw: Gateway, owner: str) -> tuple[ConnectorHandle, FakeUplink]:
    user = await gw.identity.user_by_name(owner)
    uplink = FakeUplink()
    assert gw.hub is not None
    meta = SessionMeta(
        owner_id=UserId(user.id), owner_name=user.name, host="ws1", cwd="/src", command=("bash",)
    )
    handle = await gw.hub.open_session(meta, uplink)
    return handle, uplink


async def _link(owner: Api, session_id: str, **body: Any) -> dict[str, Any]:
    status, data = await owner.post(f"/api/sessions/{session_id}/links", {"mode": "view_only", **body})
    assert status == 200, data
    return data  # type: ignore[no-any-return]


def _token(link: dict[str, Any]) -> str:
    return str(link["url"].rsplit("/", 1)[1])


@pytest.fixture
async def shared(gateway: Gateway) -> dict[str, Any]:
    owner, _ = await gateway.enrol_passkey("olivia", Role.MEMBER)
    viewer, _ = await gateway.enrol_passkey("victor", Role.MEMBER)
    handle, uplink = await _share(gateway, "olivia")
    return {"owner": owner, "viewer": viewer, "handle": handle, "uplink": uplink, "sid": handle.session_id}


# ---- links ------------------------------------------------------------------------------------------


async def test_link_redeemed_once_then_refused_for_another_user(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    link = await _link(shared["owner"], shared["sid"])
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 200 and body["mode"] == "view_only"
    other, _ = await gateway.enrol_passkey("mallory")
    status, body = await other.post("/api/links/redeem", {"token": _token(link)})
    assert status == 403 and body["error"] == "link_used"
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 200, "the redeemer may reopen their own link"


async def test_link_after_expiry_is_gone(gateway: Gateway, shared: dict[str, Any]) -> None:
    link = await _link(shared["owner"], shared["sid"], ttl_s=60)
    gateway.clock.advance(61)
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 410 and body["error"] == "link_expired"


async def test_revoked_link_is_gone_and_audited(gateway: Gateway, shared: dict[str, Any]) -> None:
    link = await _link(shared["owner"], shared["sid"])
    status, _ = await shared["owner"].post(f"/api/sessions/{shared['sid']}/links/{link['link']['id']}/revoke")
    assert status == 204
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 410 and body["error"] == "link_revoked"
    types = [e.type for e in await gateway.identity.audit_events(limit=500)]
    assert {"link.created", "link.revoked", "link.refused"} <= set(types)


async def test_tampered_link_is_not_found(gateway: Gateway, shared: dict[str, Any]) -> None:
    link = await _link(shared["owner"], shared["sid"])
    token = _token(link)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": tampered})
    assert status == 404 and body["error"] == "link_invalid"
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": "../../etc/passwd"})
    assert status == 404


async def test_link_for_another_user_is_refused(gateway: Gateway, shared: dict[str, Any]) -> None:
    await gateway.enrol_passkey("wendy")
    link = await _link(shared["owner"], shared["sid"], for_user="wendy")
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 403 and body["error"] == "link_not_yours"


async def test_redeeming_needs_a_fresh_factor(gateway: Gateway, shared: dict[str, Any]) -> None:
    link = await _link(shared["owner"], shared["sid"], ttl_s=3600)
    gateway.clock.advance(6 * 60)
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 401 and body["error"] == "reauth_required"


@pytest.mark.parametrize("gateway", ["default"], indirect=True)
async def test_the_default_policy_lets_nobody_but_the_owner_join(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    viewer, _ = await gateway.enrol_passkey("victor")
    handle, _ = await _share(gateway, "olivia")
    link = await _link(owner, handle.session_id)
    status, body = await viewer.post("/api/links/redeem", {"token": _token(link)})
    assert status == 403 and body["error"] == "policy_denied"
    events = await gateway.identity.audit_events(limit=500)
    decision = next(e for e in events if e.type == "policy.decision")
    assert decision.outcome == "fail" and decision.detail["policy_version"]
    status, body = await owner.post("/api/links/redeem", {"token": _token(link)})
    assert status == 200, "the link was not used up by the refusal, and the owner may join"


async def test_only_the_owner_creates_links(gateway: Gateway, shared: dict[str, Any]) -> None:
    status, _ = await shared["viewer"].post(f"/api/sessions/{shared['sid']}/links", {"mode": "view_only"})
    assert status == 403


# ---- WebSocket ----------------------------------------------------------------------------------


def _ws_url(gw: Gateway, participation: str) -> str:
    return str(gw.client.make_url(f"/api/participations/{participation}/ws"))


async def _join(gw: Gateway, shared: dict[str, Any]) -> str:
    link = await _link(shared["owner"], shared["sid"])
    status, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    assert status == 200
    return str(body["participation"])


async def test_websocket_from_foreign_origin_is_refused_before_upgrade(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    p = await _join(gateway, shared)
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await shared["viewer"].client.ws_connect(_ws_url(gateway, p), origin="http://evil.example")
    assert err.value.status == 403


async def test_websocket_without_login_is_refused_before_upgrade(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    p = await _join(gateway, shared)
    stranger = gateway.api()
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await stranger.client.ws_connect(_ws_url(gateway, p), origin=ORIGIN)
    assert err.value.status == 401


async def _read_until(ws: aiohttp.ClientWebSocketResponse, pred: Any, timeout: float = 5.0) -> list[Any]:
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                seen.append(("out", struct.unpack(">Q", msg.data[:8])[0], msg.data[8:]))
            elif msg.type == aiohttp.WSMsgType.TEXT:
                seen.append(("ctl", json.loads(msg.data)))
            else:
                seen.append(("close", msg.data, msg.extra))
            if pred(seen[-1]):
                return seen


async def test_viewer_sees_output_and_no_input_of_any_kind_reaches_the_pty(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    p = await _join(gateway, shared)
    shared["handle"].output(0, b"hello from the owner\r\n")
    ws = await shared["viewer"].client.ws_connect(_ws_url(gateway, p), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1, "resume_from": None}))
    seen = await _read_until(ws, lambda m: m[0] == "out" and b"hello from the owner" in m[2])
    assert any(m[0] == "ctl" and m[1]["t"] == "hello" for m in seen)
    await ws.send_str(json.dumps({"t": "in", "d": "rm -rf /\r"}))
    await ws.send_bytes(b"\x03echo binary\r")
    await ws.send_str(json.dumps({"t": "resize", "cols": 10, "rows": 5}))
    await ws.send_str(json.dumps({"t": "in", "d": "\x1b[200~pasted\x1b[201~"}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "refused")
    await ws.send_str(json.dumps({"t": "ping"}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "pong")
    assert bytes(shared["uplink"].input) == b""
    await ws.close()


async def test_malformed_and_oversized_messages(gateway: Gateway, shared: dict[str, Any]) -> None:
    p = await _join(gateway, shared)
    ws = await shared["viewer"].client.ws_connect(_ws_url(gateway, p), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await ws.send_str("{not json")
    seen = await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "error")
    assert "message" in seen[-1][1]
    await ws.send_str(json.dumps({"t": "resize", "cols": "wide"}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "error")
    await ws.send_bytes(b"x" * (70 * 1024))
    seen = await _read_until(ws, lambda m: m[0] == "close")
    assert seen[-1][1] == 1009
    assert bytes(shared["uplink"].input) == b""


async def test_flood_of_small_messages_is_refused_without_stalling_output(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    p = await _join(gateway, shared)
    ws = await shared["viewer"].client.ws_connect(_ws_url(gateway, p), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    for i in range(10_000):
        await ws.send_str('{"t":"in","d":"x"}' if i % 2 else '{"t":"ping"}')
    shared["handle"].output(shared["handle"].received, b"still flowing\r\n")
    await _read_until(ws, lambda m: m[0] == "out" and b"still flowing" in m[2], timeout=30)
    assert bytes(shared["uplink"].input) == b""
    await ws.close()


async def test_revoking_the_link_removes_its_participant(gateway: Gateway, shared: dict[str, Any]) -> None:
    link = await _link(shared["owner"], shared["sid"])
    _, body = await shared["viewer"].post("/api/links/redeem", {"token": _token(link)})
    ws = await shared["viewer"].client.ws_connect(_ws_url(gateway, body["participation"]), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "hello")
    status, _ = await shared["owner"].post(f"/api/sessions/{shared['sid']}/links/{link['link']['id']}/revoke")
    assert status == 204
    seen = await _read_until(ws, lambda m: m[0] == "close")
    assert seen[-1][1] in (1000, 4403)


async def test_ending_the_session_disconnects_participants_with_the_reason(
    gateway: Gateway, shared: dict[str, Any]
) -> None:
    p = await _join(gateway, shared)
    ws = await shared["viewer"].client.ws_connect(_ws_url(gateway, p), origin=ORIGIN)
    await ws.send_str(json.dumps({"t": "hello", "v": 1}))
    await _read_until(ws, lambda m: m[0] == "ctl" and m[1]["t"] == "hello")
    status, _ = await shared["owner"].post(f"/api/sessions/{shared['sid']}/end")
    assert status == 204
    seen = await _read_until(ws, lambda m: m[0] == "close")
    closed = [m for m in seen if m[0] == "ctl" and m[1]["t"] == "closed"]
    assert closed and "ended by olivia" in closed[0][1]["reason"]
    assert shared["uplink"].ended is not None


# ---- device login -----------------------------------------------------------------------------------


async def test_device_login_issues_a_certificate_once(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    cli = gateway.api()
    key = asyncssh.generate_private_key("ssh-ed25519")
    pub = key.export_public_key().decode().strip()
    status, start = await cli.post("/api/device/start", {"public_key": pub, "host": "ws1"})
    assert status == 200 and start["user_code"].count("-") == 1
    status, body = await cli.post("/api/device/poll", {"device_code": start["device_code"]})
    assert status == 202
    status, info = await owner.call("GET", f"/api/device/{start['user_code']}")
    assert status == 200 and info["host"] == "ws1"
    status, _ = await owner.post("/api/device/decide", {"user_code": start["user_code"], "approve": True})
    assert status == 204
    status, body = await cli.post("/api/device/poll", {"device_code": start["device_code"]})
    assert status == 200 and body["user"] == "olivia"
    cert = asyncssh.import_certificate(body["certificate"])
    assert cert.principals == ["olivia"]
    status, body = await cli.post("/api/device/poll", {"device_code": start["device_code"]})
    assert status == 410


async def test_device_login_denied_and_forged_codes(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    cli = gateway.api()
    pub = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    _, start = await cli.post("/api/device/start", {"public_key": pub, "host": "ws1"})
    status, body = await owner.post("/api/device/decide", {"user_code": "BBBB-CCCC", "approve": True})
    assert status == 404
    status, _ = await owner.post("/api/device/decide", {"user_code": start["user_code"], "approve": False})
    assert status == 204
    status, body = await cli.post("/api/device/poll", {"device_code": start["device_code"]})
    assert status == 403 and body["error"] == "device_denied"


async def test_device_approval_needs_a_fresh_factor(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    cli = gateway.api()
    pub = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    _, start = await cli.post("/api/device/start", {"public_key": pub, "host": "ws1"})
    gateway.clock.advance(6 * 60)
    status, body = await owner.post("/api/device/decide", {"user_code": start["user_code"], "approve": True})
    assert status == 401 and body["error"] == "reauth_required"
