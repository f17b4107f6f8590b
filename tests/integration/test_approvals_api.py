"""The approvals API over HTTP: a real aiohttp app (same middlewares, identity routes, approvals
routes), the embedded store, and software authenticators signing the derived challenge."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio

from gateway.app import auth_config, http_config
from gateway.auth.action_signing import ActionSigner
from gateway.auth.device import DeviceFlow
from gateway.auth.service import IdentityService
from gateway.auth.ssh_ca import SshCertificateAuthority
from gateway.core.clock import FixedClock
from gateway.core.ids import SessionId, UserId
from gateway.core.models import PasskeyFactor
from gateway.httpd.server import HttpServices, make_app
from gateway.links.service import LinkService
from gateway.policy_watch import PolicyWatcher
from gateway.recording.recorder import RecorderFactory
from gateway.sessions.approval_records import action_digest
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.hub import Hub
from gateway.sessions.ports import HeldAction
from gateway.settings import load_settings
from gateway.store.embedded import EmbeddedStore
from tests.fixtures.soft_authenticator import SoftAuthenticator
from tests.integration.conftest import ORIGIN, Api, Gateway


@dataclass
class Env:
    gw: Gateway
    svc: ApprovalService
    store: EmbeddedStore
    decided: list[tuple[str, bool, str]] = field(default_factory=list)
    seq: int = 0

    def on_decided(self, action_id: str, approved: bool, reason: str) -> None:
        self.decided.append((action_id, approved, reason))

    async def hold(self, requester: str, text: str = "rm -rf build", **changes: Any) -> str:
        self.seq += 1
        req = await self.gw.identity.user_by_name(requester)
        fields: dict[str, Any] = {
            "action_id": f"act_{self.seq}", "session_id": SessionId("ses_1"), "seq": self.seq,
            "requester_id": UserId(req.id), "requester_name": req.name, "owner_id": UserId("usr_owner"),
            "kind": "line", "text": text, "rule": "review-rm", "reason": "deletes files",
            "approver_users": ("bob", "carol"), "approver_groups": (), "approver_roles": (),
            "approver_owner": False, "quorum": 1, "allow_self_approval": False, "timeout_s": 120.0,
            "created_at": self.gw.clock.now(), "policy_version": "v1",
        }  # fmt: skip
        fields.update(changes)
        fields["digest"] = action_digest(
            fields["session_id"], fields["seq"], fields["requester_id"], fields["kind"], fields["text"]
        )
        self.svc.hold(HeldAction(**fields), self.on_decided)
        return str(fields["action_id"])

    async def settle(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0)


@pytest_asyncio.fixture
async def env(tmp_path: Path, aiohttp_client: Any, clock: FixedClock) -> AsyncIterator[Env]:
    settings = load_settings(None, data_dir=str(tmp_path), **{"http.public_url": ORIGIN})
    store = await EmbeddedStore.open(EmbeddedStore.path_in(tmp_path), clock)
    identity = IdentityService(store, clock, auth_config(settings))
    ca = SshCertificateAuthority.load_or_create(tmp_path / "ssh_user_ca_ed25519")
    policy = PolicyWatcher(file=None, shipped="demo", data_dir=tmp_path, audit=store, clock=clock)
    await policy.load()
    svc = ApprovalService(store, clock)
    async with Hub(recorders=RecorderFactory(tmp_path / "recordings"), audit=store) as hub:
        services = HttpServices(
            identity=identity,
            links=LinkService(store, clock, ORIGIN),
            device=DeviceFlow(store, store, clock, ca),
            hub=hub,
            policy=policy,
            approvals=svc,
            signer=ActionSigner(identity, store),
        )
        app = make_app(services, http_config(settings))
        runner = asyncio.create_task(svc.run())
        client = await aiohttp_client(app)
        gw = Gateway(client, identity, clock, settings)
        try:
            yield Env(gw, svc, store)
        finally:
            await gw.close()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
    await store.close()


async def sign(api: Api, auth: SoftAuthenticator, action_id: str) -> dict[str, Any]:
    status, body = await api.post(f"/api/approvals/{action_id}/options")
    assert status == 200, body
    return auth.get(body["options"], ORIGIN)


async def decide(api: Api, auth: SoftAuthenticator, action_id: str, approve: bool = True) -> tuple[int, Any]:
    credential = await sign(api, auth, action_id)
    return await api.post(
        f"/api/approvals/{action_id}/decide", {"approve": approve, "credential": credential}
    )


async def audit_of(env: Env, type_: str) -> list[Any]:
    await env.svc.flush()
    return [e for e in await env.store.events(limit=1000) if e.type == type_]


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


async def test_approver_signs_the_exact_action_and_it_is_released(env: Env) -> None:
    alice, _ = await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    action = await env.hold("alice", "rm -rf build")

    status, inbox = await bob.call("GET", "/api/approvals")
    assert status == 200 and [a["id"] for a in inbox["approvals"]] == [action]
    item = inbox["approvals"][0]
    assert item["text"] == "rm -rf build" and item["requester"] == "alice" and item["rule"] == "review-rm"
    assert item["time_left_s"] == 120 and item["can_decide"] is True
    status, own = await alice.call("GET", "/api/approvals")
    assert own["approvals"] == [] and [a["id"] for a in own["mine"]] == [action]

    status, opts = await bob.post(f"/api/approvals/{action}/options")
    assert status == 200
    bob_user = await env.gw.identity.user_by_name("bob")
    bob_creds = [
        f.credential_id for f in await env.store.factors_of(bob_user.id) if isinstance(f, PasskeyFactor)
    ]
    assert [c["id"] for c in opts["options"]["allowCredentials"]] == bob_creds
    credential = bob_key.get(opts["options"], ORIGIN)
    status, body = await bob.post(
        f"/api/approvals/{action}/decide", {"approve": True, "credential": credential}
    )
    assert status == 200, body
    record = body["decision"]
    assert record["state_after"] == "approved" and record["credential_id"] == credential["id"]
    assert b64u(bytes.fromhex(record["challenge"])) == opts["options"]["challenge"]
    await env.settle()
    assert env.decided == [(action, True, "approved by bob")]

    status, mine = await alice.call("GET", "/api/approvals/mine")
    assert [(a["id"], a["state"], a["outcome"]) for a in mine["actions"]] == [
        (action, "approved", "approved by bob")
    ]
    [approved] = await audit_of(env, "approval.approved")
    assert (
        approved.detail["credential_id"] == credential["id"] and approved.detail["digest"] == record["digest"]
    )
    assert len(await audit_of(env, "approval.requested")) == 1


async def test_assertion_made_for_another_action_is_refused(env: Env) -> None:
    await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    first = await env.hold("alice", "rm -rf build")
    second = await env.hold("alice", "git push --force")
    await bob.post(f"/api/approvals/{first}/options")
    signed_for_second = await sign(bob, bob_key, second)
    status, body = await bob.post(
        f"/api/approvals/{first}/decide", {"approve": True, "credential": signed_for_second}
    )
    assert status == 400 and body["error"] == "webauthn_refused"
    await env.settle()
    assert env.decided == []
    assert [e.detail["reason"] for e in await audit_of(env, "approval.assertion_refused")] == [
        "webauthn_refused"
    ]
    status, body = await decide(bob, bob_key, first)  # a fresh ceremony for the right action works
    assert status == 200 and body["action"]["state"] == "approved"


async def test_stale_expired_and_self_approvals_are_refused(env: Env) -> None:
    alice, _ = await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    carol, _carol_key = await env.gw.enrol_passkey("carol")
    action = await env.hold("alice")

    status, body = await alice.post(f"/api/approvals/{action}/options")
    assert status == 403 and body["error"] == "approval_self"
    assert (await decide(bob, bob_key, action))[0] == 200
    status, body = await carol.post(f"/api/approvals/{action}/options")
    assert status == 409 and body["error"] == "approval_decided" and "approved by bob" in body["message"]

    late = await env.hold("alice", "git push --force")
    env.gw.clock.advance(121)
    status, body = await carol.post(f"/api/approvals/{late}/options")
    assert status == 410 and body["error"] == "approval_expired" and "timed out" in body["message"]
    status, body = await carol.post("/api/approvals/act_unknown/options")
    assert status == 410 and body["error"] == "approval_unknown"
    await env.settle()
    assert env.decided[-1] == (late, False, "timed out after 120 s with 0 of 1 approvals")


async def test_quorum_of_two_then_a_deny_decides_the_next(env: Env) -> None:
    await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    carol, carol_key = await env.gw.enrol_passkey("carol")
    first = await env.hold("alice", quorum=2)
    status, body = await decide(bob, bob_key, first)
    assert status == 200 and body["action"]["state"] == "pending" and body["action"]["approvals"] == 1
    status, body = await bob.post(f"/api/approvals/{first}/options")
    assert status == 409 and body["error"] == "approval_duplicate"
    status, body = await decide(carol, carol_key, first)
    assert body["action"]["state"] == "approved" and body["action"]["approved_by"] == ["bob", "carol"]

    second = await env.hold("alice", "git push --force", quorum=2)
    status, body = await decide(carol, carol_key, second, approve=False)
    assert status == 200 and body["action"]["state"] == "denied"
    await env.settle()
    assert env.decided == [(first, True, "approved by bob, carol"), (second, False, "denied by carol")]


async def test_someone_elses_passkey_and_non_approvers_are_refused(env: Env) -> None:
    await env.gw.enrol_passkey("alice")
    bob, _ = await env.gw.enrol_passkey("bob")
    _, carol_key = await env.gw.enrol_passkey("carol")
    dave, _dave_key = await env.gw.enrol_passkey("dave")
    action = await env.hold("alice")
    status, opts = await bob.post(f"/api/approvals/{action}/options")
    carols = carol_key.get({**opts["options"], "allowCredentials": []}, ORIGIN)
    status, body = await bob.post(f"/api/approvals/{action}/decide", {"approve": True, "credential": carols})
    assert status == 400 and "not one of yours" in body["message"]

    status, inbox = await dave.call("GET", "/api/approvals")
    assert inbox["approvals"] == []
    status, body = await dave.post(f"/api/approvals/{action}/options")
    assert status == 403 and body["error"] == "approval_not_approver"
    status, body = await dave.call("GET", f"/api/approvals/{action}")
    assert status == 404


async def test_decide_needs_csrf_and_a_strict_body(env: Env) -> None:
    await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    action = await env.hold("alice")
    credential = await sign(bob, bob_key, action)
    status, body = await bob.call(
        "POST", f"/api/approvals/{action}/decide", {"approve": True, "credential": credential},
        headers={"X-CSRF-Token": "wrong"},
    )  # fmt: skip
    assert status == 403 and body["error"] == "csrf"
    status, body = await bob.post(
        f"/api/approvals/{action}/decide", {"approve": "yes", "credential": credential}
    )
    assert status == 400 and "approve" in body["message"]
    await env.settle()
    assert env.decided == []


async def read_event(resp: Any, want: str) -> dict[str, Any]:
    """Read SSE lines until an event named ``want``; return its data."""
    event = None
    async with asyncio.timeout(5):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == want:
                data: dict[str, Any] = json.loads(line[len("data: ") :])
                return data


async def test_stream_sends_a_snapshot_then_live_changes(env: Env) -> None:
    await env.gw.enrol_passkey("alice")
    bob, bob_key = await env.gw.enrol_passkey("bob")
    first = await env.hold("alice")
    resp = await bob.client.get("/api/approvals/stream")
    try:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        snapshot = await read_event(resp, "snapshot")
        assert [a["id"] for a in snapshot["approvals"]] == [first]
        second = await env.hold("alice", "git push --force")
        held = await read_event(resp, "held")
        assert held["action"]["id"] == second and held["action"]["text"] == "git push --force"
        await decide(bob, bob_key, second)
        decided = await read_event(resp, "decided")
        assert decided["action"]["id"] == second and decided["action"]["state"] == "approved"
    finally:
        resp.close()


async def test_stream_needs_a_login(env: Env) -> None:
    status, _body = await env.gw.api().call("GET", "/api/approvals/stream")
    assert status == 401
