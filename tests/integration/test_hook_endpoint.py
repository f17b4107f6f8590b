"""The gateway's hook endpoint with a live session's token: deny, held + approved, refusals."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from gateway.core.models import Role
from tests.integration.conftest import ORIGIN, Gateway
from tests.integration.test_sessions_api import _share

PRE = {
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_use_id": "toolu_1",
    "session_id": "c",
    "cwd": "/src",
    "permission_mode": "default",
}


async def _hook(gateway: Gateway, token: str, command: str, timeout_s: int = 30) -> tuple[int, Any]:
    r = await gateway.client.post(
        "/api/hooks/claude",
        json={**PRE, "tool_input": {"command": command}},
        headers={"Authorization": f"Bearer {token}", "X-Rcgate-Hook-Timeout": str(timeout_s)},
    )
    return r.status, await r.json()


def _decision(body: Any) -> str:
    return str(body["hookSpecificOutput"]["permissionDecision"])


async def test_a_tool_call_denied_by_policy(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    handle, _ = await _share(gateway, "olivia")
    status, body = await _hook(gateway, handle.hook_token, "sudo rm -rf /")
    assert status == 200 and _decision(body) == "deny", body


async def test_a_held_tool_call_is_approved_by_another_person_with_webauthn(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    approver, key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    handle, _ = await _share(gateway, "olivia")
    call = asyncio.ensure_future(_hook(gateway, handle.hook_token, "rm -rf build"))
    async with asyncio.timeout(10):
        while True:
            _, inbox = await approver.call("GET", "/api/approvals")
            if inbox["approvals"]:
                break
            await asyncio.sleep(0.05)
    item = inbox["approvals"][0]
    assert item["kind"] == "tool" and "rm -rf build" in item["text"]
    _, opts = await approver.post(f"/api/approvals/{item['id']}/options")
    cred = key.get(opts["options"], ORIGIN)
    status, _ = await approver.post(
        f"/api/approvals/{item['id']}/decide", {"approve": True, "credential": cred}
    )
    assert status == 200
    status, body = await call
    assert status == 200 and _decision(body) == "allow", body
    types = [e.type for e in await gateway.identity.audit_events(limit=500)]
    assert "hook.call" in types and "approval.approved" in types


async def test_the_owner_cannot_approve_their_assistant_s_call(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    handle, _ = await _share(gateway, "olivia")
    call = asyncio.ensure_future(_hook(gateway, handle.hook_token, "rm -rf build", timeout_s=8))
    await asyncio.sleep(0.3)
    _, inbox = await owner.call("GET", "/api/approvals")
    assert inbox["approvals"] == []
    status, body = await call  # nobody else approves: denied before the hook's own timeout
    assert status == 200 and _decision(body) == "deny", body


async def test_a_hook_call_without_a_valid_token_is_refused(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    await _share(gateway, "olivia")
    status, body = await _hook(gateway, "not-a-token", "ls")
    assert status == 401 and body["error"] == "hook_token"
    r = await gateway.client.post("/api/hooks/claude", json=PRE)
    assert r.status == 401


async def test_a_hook_call_after_the_session_ended_is_refused(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    handle, _ = await _share(gateway, "olivia")
    assert gateway.hub is not None
    await gateway.hub.end(handle.session_id, "test over")
    status, _ = await _hook(gateway, handle.hook_token, "ls")
    assert status == 401


async def test_another_session_s_token_only_reaches_that_session(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    first, _ = await _share(gateway, "olivia")
    second, _ = await _share(gateway, "olivia")
    assert first.hook_token != second.hook_token
    assert gateway.hub is not None
    assert gateway.hub.session_for_hook_token(second.hook_token).session_id == second.session_id  # type: ignore[union-attr]


async def test_malformed_and_oversized_payloads(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    handle, _ = await _share(gateway, "olivia")
    headers = {"Authorization": f"Bearer {handle.hook_token}"}
    r = await gateway.client.post("/api/hooks/claude", data=b"{not json", headers=headers)
    assert r.status == 400
    r = await gateway.client.post(
        "/api/hooks/claude", data=io.BytesIO(b"x" * (1024 * 1024 + 10)), headers=headers
    )
    assert r.status == 413
    r = await gateway.client.post("/api/hooks/cursor", json=PRE, headers=headers)
    assert r.status == 404
