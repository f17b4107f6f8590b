"""Assistant hook endpoint: POST /api/hooks/{assistant}, authenticated by the session's hook token.

The token is minted when a session opens (handed to `rcgate share` in WELCOME, then to the
assistant as RCGATE_HOOK_TOKEN) and dies with the session. A tool call is decided by the policy in
force for the session's owner (the assistant acts for them); a held call waits for approvers in
the same inbox as held lines, with a WebAuthn assertion over the exact call. Every call, decision
and result is an audit event and a marker in the session's recording. Any failure answers deny in
the assistant's own format (fail closed).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from gateway.core.errors import BadRequest, PayloadTooLarge, Unauthenticated
from gateway.core.ids import UserId
from gateway.hooks.endpoint import HeldCall, answer_hook
from gateway.hooks.model import MAX_PAYLOAD_BYTES
from gateway.hooks.timing import HOOK_TIMEOUT_HEADER, parse_hook_timeout
from gateway.httpd.context import APPROVALS, HUB, IDENTITY, POLICY, json_response, remote_of
from gateway.httpd.openapi import RouteTable
from gateway.policy import Actor, SessionFacts
from gateway.sessions.approval_records import held_action

routes = RouteTable()
log = logging.getLogger("rcgate.hooks")


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "a hook call needs Authorization: Bearer <RCGATE_HOOK_TOKEN>", code="hook_token"
        )
    return token.strip()


@routes.add("POST", "/api/hooks/{assistant}", "An assistant's hook call (Bearer hook token)", auth="none")
async def post_hook(request: web.Request) -> web.StreamResponse:
    assistant = request.match_info["assistant"]
    token = _bearer(request)
    hub = request.app[HUB]
    info = hub.session_for_hook_token(token)
    if info is None:
        raise Unauthenticated("unknown hook token, or the session has ended", code="hook_token")
    if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"hook payload over {MAX_PAYLOAD_BYTES} bytes")
    raw = bytearray()
    while chunk := await request.content.read(64 * 1024):
        raw += chunk
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"hook payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed hook payload: {exc}") from exc
    identity = request.app[IDENTITY]
    owner = await identity.get_user(UserId(info.meta.owner_id))
    actor = Actor(UserId(owner.id), owner.name, owner.groups, owner.role)
    remote = sum(1 for p in info.participants if p.user_id != owner.id)
    facts = SessionFacts(
        id=info.session_id,
        owner_id=UserId(owner.id),
        owner_name=owner.name,
        host=info.meta.host,
        labels=dict(info.meta.labels),
        assistant=assistant,
        remote_participants=remote,
        repo_root=info.meta.cwd,
    )
    approvals = request.app[APPROVALS]
    loaded = request.app[POLICY].current()

    async def await_approval(held: HeldCall) -> bool:
        text = json.dumps({"tool": held.tool_call.tool, "input": held.tool_call.input}, sort_keys=True)[
            :16_000
        ]
        seq = int(identity.now() * 1000)
        review = held.review
        action = held_action(
            review,
            session_id=info.session_id,
            seq=seq,
            requester_id=UserId(owner.id),
            requester_name=f"{owner.name} ({assistant})",
            owner_id=UserId(owner.id),
            kind="tool",
            text=text,
            created_at=identity.now(),
            policy_version=loaded.version,
            timeout_s=max(1.0, held.deadline - identity.now()),
        )
        decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def on_decided(_action_id: str, approved: bool, reason: str) -> None:
            hub.mark(info.session_id, f"tool call {'approved' if approved else 'denied'}: {reason}")
            if not decided.done():
                decided.set_result(approved)

        hub.mark(info.session_id, f"tool call held for approval: {held.tool_call.tool} (rule {review.rule})")
        approvals.hold(action, on_decided)
        try:
            return await decided
        finally:
            if not decided.done():  # the hook timed out first: a late approval must not count
                approvals.cancel(action.action_id, "the assistant's hook timed out")

    answer = await answer_hook(
        assistant,
        payload,
        facts,
        actor,
        loaded.policy,
        now=identity.now(),
        await_approval=await_approval,
        hook_timeout_s=parse_hook_timeout(request.headers.get(HOOK_TIMEOUT_HEADER)),
    )
    call = answer.call
    tool = call.tool_call.tool if call is not None and call.tool_call is not None else "-"
    event = call.event if call is not None else "?"
    hub.mark(
        info.session_id, f"{assistant} {event} {tool}: {answer.verdict.value} (rule {answer.rule or '-'})"
    )
    denied = answer.verdict.value == "deny"
    await identity.audit(
        "hook.call",
        actor=owner.id,
        subject=info.session_id,
        outcome="fail" if denied else "ok",
        remote=remote_of(request),
        assistant=assistant,
        hook_event=event,
        tool=tool,
        verdict=answer.verdict.value,
        rule=answer.rule,
        policy_version=loaded.version,
        reason=answer.reason[:200],
    )
    return json_response(dict(answer.body))
