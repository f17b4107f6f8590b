"""Keep-alive on the hook endpoint: a held call gets its 200 at once, then spaces, then the answer.

So that no proxy between the assistant and the gateway idles the connection out during a
review (the interval is shortened here). A call policy decides at once stays one plain JSON
response; a caller that goes away while held withdraws its held action.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.core.models import Role
from gateway.httpd import routes_hooks
from tests.integration.conftest import ORIGIN, Api, Gateway
from tests.integration.test_hook_endpoint import PRE, _decision
from tests.integration.test_sessions_api import _share

INTERVAL_S = 0.2


@pytest.fixture(autouse=True)
def _short_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_hooks, "KEEPALIVE_INTERVAL_S", INTERVAL_S)


def _post(gateway: Gateway, token: str, command: str) -> Any:
    return gateway.client.post(
        "/api/hooks/claude",
        json={**PRE, "tool_input": {"command": command}},
        headers={"Authorization": f"Bearer {token}", "X-Rcgate-Hook-Timeout": "30"},
    )


async def _inbox(approver: Api) -> list[dict[str, Any]]:
    _, inbox = await approver.call("GET", "/api/approvals")
    return list(inbox["approvals"])


async def _first_held(approver: Api) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while not (items := await _inbox(approver)):
            await asyncio.sleep(0.05)
    return items[0]


async def _decide(approver: Api, key: Any, item: dict[str, Any], *, approve: bool) -> None:
    _, opts = await approver.post(f"/api/approvals/{item['id']}/options")
    cred = key.get(opts["options"], ORIGIN)
    status, body = await approver.post(
        f"/api/approvals/{item['id']}/decide", {"approve": approve, "credential": cred}
    )
    assert status == 200, body


async def test_a_held_call_gets_200_at_once_then_spaces_then_the_answer(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    approver, key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    handle, _ = await _share(gateway, "olivia")
    async with asyncio.timeout(10):
        resp = await _post(gateway, handle.hook_token, "rm -rf build")  # returns once headers are in
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Cache-Control"] == "no-store"
    item = await _first_held(approver)  # the status came while the call is still held
    spaces = b""
    async with asyncio.timeout(10):
        while len(spaces) < 3:  # at least three keep-alive intervals while nobody decides
            spaces += await resp.content.readany()
    assert spaces.strip() == b"", spaces
    await _decide(approver, key, item, approve=True)
    async with asyncio.timeout(10):
        rest = await resp.read()
    body = json.loads(spaces + rest)  # JSON allows the leading whitespace
    assert _decision(body) == "allow", body
    events = await gateway.identity.audit_events(limit=500)
    (hook_call,) = [e for e in events if e.type == "hook.call"]
    assert hook_call.outcome == "ok"


async def test_the_status_goes_out_as_soon_as_the_call_is_held(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_hooks, "KEEPALIVE_INTERVAL_S", 60.0)  # no keep-alive space in this test
    await gateway.enrol_passkey("olivia")
    approver, key = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    handle, _ = await _share(gateway, "olivia")
    async with asyncio.timeout(5):
        resp = await _post(gateway, handle.hook_token, "rm -rf build")
    assert resp.status == 200
    await _decide(approver, key, await _first_held(approver), approve=False)
    async with asyncio.timeout(10):
        body = json.loads(await resp.read())
    assert (
        _decision(body) == "deny"
        and "an approver refused" in body["hookSpecificOutput"]["permissionDecisionReason"]
    ), body


async def test_a_call_decided_at_once_is_one_plain_json_answer(gateway: Gateway) -> None:
    await gateway.enrol_passkey("olivia")
    handle, _ = await _share(gateway, "olivia")
    resp = await _post(gateway, handle.hook_token, "sudo rm -rf /")
    raw = await resp.read()
    assert resp.status == 200 and resp.headers.get("Content-Length") == str(len(raw))
    assert raw[:1] == b"{" and _decision(json.loads(raw)) == "deny"


async def test_a_caller_that_goes_away_while_held_withdraws_the_held_action(gateway: Gateway) -> None:
    owner, _ = await gateway.enrol_passkey("olivia")
    approver, _ = await gateway.enrol_passkey("ayla", Role.MEMBER, ("approvers",))
    handle, _ = await _share(gateway, "olivia")
    resp = await _post(gateway, handle.hook_token, "rm -rf build")
    assert resp.status == 200
    await _first_held(approver)
    resp.close()  # the assistant (or its hook) went away
    async with asyncio.timeout(10):
        while await _inbox(approver):
            await asyncio.sleep(0.05)
    _, mine = await owner.call("GET", "/api/approvals/mine")
    assert [a["state"] for a in mine["actions"]] == ["cancelled"], mine
