"""Approvals API: the approver's inbox, its live stream, and signed approve/deny decisions.

An approval is a WebAuthn ceremony over a challenge derived from the exact action: the page
asks ``POST /api/approvals/{id}/options`` (the challenge is ``SHA-256(digest || nonce)``, the
nonce single-use for this approver and action), signs it with a passkey, and posts the
assertion to ``/decide``. The live stream is Server-Sent Events: a ``snapshot`` first (so
nothing between subscribing and listing is lost), then ``held`` / ``updated`` / ``decided``
changes, a fresh ``snapshot`` after an overflow, a comment heartbeat every ``HEARTBEAT_S``;
it ends after ``STREAM_MAX_S`` and the browser's EventSource reconnects (the login is
checked again on every connection).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.core.errors import Gone, NotFound
from gateway.core.ids import UserId
from gateway.core.models import Role, User
from gateway.httpd.context import (
    ACTION_SIGNER,
    APPROVALS,
    IDENTITY,
    Body,
    current,
    json_response,
    read_json,
    remote_of,
    require_role,
)
from gateway.httpd.openapi import RouteTable
from gateway.httpd.routes_identity import Empty
from gateway.sessions.approval_records import ActionView, DecisionRecord, InboxChange, State
from gateway.sessions.approvals import ApprovalService

routes = RouteTable()


HEARTBEAT_S = 15.0
STREAM_MAX_S = 300.0
RETRY_MS = 3000


class DecideBody(Body):
    approve: bool = Field(strict=True, description="true to approve, false to deny")
    credential: dict[str, Any] = Field(description="the WebAuthn assertion (PublicKeyCredential JSON)")


def action_json(svc: ApprovalService, view: ActionView, user: User, now: float) -> dict[str, Any]:
    a = view.action
    pending = view.state is State.PENDING
    return {
        "id": a.action_id,
        "session_id": a.session_id,
        "seq": a.seq,
        "kind": a.kind,
        "text": a.text,
        "requester": a.requester_name,
        "requester_id": a.requester_id,
        "rule": a.rule,
        "reason": a.reason,
        "policy_version": a.policy_version,
        "digest": a.digest,
        "quorum": a.quorum,
        "approvals": len(view.approved_by),
        "approved_by": list(view.approved_by),
        "state": view.state.value,
        "outcome": view.reason,
        "created_at": a.created_at,
        "expires_at": view.deadline,
        "time_left_s": max(0.0, view.deadline - now) if pending else 0.0,
        "decided_at": view.decided_at,
        "mine": a.requester_id == user.id,
        "you_approved": UserId(user.id) in view.approver_ids,
        "can_decide": pending and user.id not in view.approver_ids and svc.may_approve(a, user),
    }


def record_json(r: DecisionRecord) -> dict[str, Any]:
    return {
        "action_id": r.action_id,
        "session_id": r.session_id,
        "seq": r.seq,
        "requester_id": r.requester_id,
        "kind": r.kind,
        "text": r.text,
        "digest": r.digest,
        "rule": r.rule,
        "policy_version": r.policy_version,
        "approver_id": r.approver_id,
        "approver": r.approver_name,
        "approve": r.approve,
        "credential_id": r.credential_id,
        "nonce": r.nonce,
        "challenge": r.challenge,
        "assertion_sha256": r.assertion_sha256,
        "decided_at": r.decided_at,
        "state_after": r.state_after.value,
        "approvals": r.approvals,
        "quorum": r.quorum,
    }


async def _snapshot(request: web.Request, user: User) -> dict[str, Any]:
    svc = request.app[APPROVALS]
    now = svc.now()
    inbox = await svc.inbox(user)
    mine = await svc.requested_by(UserId(user.id))
    return {
        "approvals": [action_json(svc, v, user, now) for v in inbox],
        "mine": [action_json(svc, v, user, now) for v in mine],
        "now": now,
    }


@routes.add("GET", "/api/approvals", "Held actions you may approve (and your own held actions)")
async def get_approvals(request: web.Request) -> web.StreamResponse:
    who = current(request)
    return json_response(await _snapshot(request, who.user))


@routes.add("GET", "/api/approvals/mine", "Your own held actions and their state")
async def get_my_approvals(request: web.Request) -> web.StreamResponse:
    who = current(request)
    svc = request.app[APPROVALS]
    now = svc.now()
    mine = await svc.requested_by(UserId(who.user.id))
    return json_response({"actions": [action_json(svc, v, who.user, now) for v in mine], "now": now})


# ---- the live stream (Server-Sent Events) ---------------------------------------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _change_bytes(request: web.Request, user: User, change: InboxChange) -> bytes:
    svc = request.app[APPROVALS]
    if change.view is None:  # resync: the queue overflowed, send everything again
        return _sse("snapshot", await _snapshot(request, user))
    return _sse(change.kind, {"action": action_json(svc, change.view, user, svc.now())})


@routes.add("GET", "/api/approvals/stream", "Live inbox changes (text/event-stream)")
async def get_approval_stream(request: web.Request) -> web.StreamResponse:
    who = current(request)
    svc = request.app[APPROVALS]
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    queue = svc.subscribe(who.user)  # before the snapshot: no change falls between the two
    try:
        await resp.prepare(request)
        await resp.write(
            f"retry: {RETRY_MS}\n\n".encode() + _sse("snapshot", await _snapshot(request, who.user))
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + STREAM_MAX_S
        while (left := end - loop.time()) > 0:
            try:
                change = await asyncio.wait_for(queue.get(), min(HEARTBEAT_S, left))
            except TimeoutError:
                await resp.write(b": heartbeat\n\n")
                continue
            if change.kind == "closed":
                break
            await resp.write(await _change_bytes(request, who.user, change))
    except ConnectionError:
        pass  # the browser went away
    finally:
        svc.unsubscribe(queue)
    return resp


@routes.add("GET", "/api/approvals/{action_id}", "One held action you may approve or asked for")
async def get_approval(request: web.Request) -> web.StreamResponse:
    who = current(request)
    svc = request.app[APPROVALS]
    view = await svc.status(request.match_info["action_id"])
    if view is None or not (
        view.action.requester_id == who.user.id or svc.may_approve(view.action, who.user)
    ):
        raise NotFound("no such held action", code="approval_unknown")
    return json_response({"action": action_json(svc, view, who.user, svc.now())})


@routes.add(
    "POST",
    "/api/approvals/{action_id}/options",
    "WebAuthn request options whose challenge is derived from this action",
    body=Empty,
)
async def post_approval_options(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request)
    svc = request.app[APPROVALS]
    action_id = request.match_info["action_id"]
    challenge = await svc.challenge_for(action_id, who.user)
    options = await request.app[ACTION_SIGNER].request_options(who.user, challenge)
    view = await svc.status(action_id)
    if view is None:
        raise Gone("this action is no longer held", code="approval_unknown")
    return json_response({"options": options, "action": action_json(svc, view, who.user, svc.now())})


@routes.add(
    "POST",
    "/api/approvals/{action_id}/decide",
    "Approve or deny a held action with a passkey assertion over its challenge",
    body=DecideBody,
)
async def post_approval_decide(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, DecideBody)
    who = current(request)
    svc = request.app[APPROVALS]
    signer = request.app[ACTION_SIGNER]
    action_id = request.match_info["action_id"]

    async def verify(challenge: bytes) -> str:
        return await signer.verify(who.user, challenge, body.credential, remote=remote_of(request))

    record = await svc.decide(action_id, who.user, body.approve, verify, assertion=body.credential)
    view = await svc.status(action_id)
    action = action_json(svc, view, who.user, svc.now()) if view is not None else None
    return json_response({"decision": record_json(record), "action": action})


class TotpDecideBody(Body):
    approve: bool = Field(strict=True, description="true to approve, false to deny")
    code: str = Field(max_length=32, description="a TOTP code not used before")


@routes.add(
    "POST",
    "/api/approvals/{action_id}/decide-totp",
    "Approve or deny a held action with a TOTP code (the workstation CLI: rcgate approvals)",
    body=TotpDecideBody,
)
async def post_approval_decide_totp(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, TotpDecideBody)
    who = current(request)
    svc = request.app[APPROVALS]
    identity = request.app[IDENTITY]
    action_id = request.match_info["action_id"]
    await svc.challenge_for(action_id, who.user)

    async def verify(challenge: bytes) -> str:
        # A fresh code, consumed once (replay guard, lockout): the step-up at the prompt.
        await identity.stepup_totp(who, body.code, remote=remote_of(request))
        return "totp"

    record = await svc.decide(
        action_id, who.user, body.approve, verify, assertion={"factor": "totp", "action": action_id}
    )
    view = await svc.status(action_id)
    action = action_json(svc, view, who.user, svc.now()) if view is not None else None
    return json_response({"decision": record_json(record), "action": action})


@routes.add("GET", "/api/admin/approvals/records", "Signed approval decisions kept in memory", auth="admin")
async def get_approval_records(request: web.Request) -> web.StreamResponse:
    require_role(request, Role.ADMIN)
    records = request.app[APPROVALS].records()
    return json_response({"records": [{**record_json(r), "assertion": r.assertion_json} for r in records]})
