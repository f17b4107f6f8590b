"""Assistant hook endpoint: POST /api/hooks/{assistant}, authenticated by the session's hook token.

The token is minted when a session opens (handed to `rcgate share` in WELCOME, then to the
assistant as RCGATE_HOOK_TOKEN) and dies with the session. A tool call is decided by the policy in
force for the session's owner (the assistant acts for them); a held call waits for approvers in
the same inbox as held lines, with a WebAuthn assertion over the exact call. Every call, decision
and result is an audit event and a marker in the session's recording. Any failure answers deny in
the assistant's own format (fail closed).

Keep-alive: a call that policy holds gets its ``200`` and headers at once, then a space every
``KEEPALIVE_INTERVAL_S`` while it waits, then the JSON answer (JSON allows leading whitespace;
``rcgate hook`` and Claude Code's ``http`` hook both read such a body), so that no proxy idles the
connection out during a review. A call that is not held is answered as one plain JSON response.
If the caller goes away while its call is held, the held action is withdrawn.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict

from aiohttp import web

from gateway.core.errors import BadRequest, PayloadTooLarge, Unauthenticated
from gateway.core.ids import UserId
from gateway.hooks.endpoint import HeldCall, answer_hook
from gateway.hooks.model import MAX_PAYLOAD_BYTES, EventKind, fail_closed
from gateway.hooks.registry import adapter_for
from gateway.hooks.timing import HOOK_TIMEOUT_HEADER, parse_hook_timeout
from gateway.httpd.context import APPROVALS, HUB, IDENTITY, POLICY, json_response, remote_of
from gateway.httpd.openapi import RouteTable
from gateway.policy import Actor, SessionFacts
from gateway.sessions.approval_records import held_action

routes = RouteTable()
log = logging.getLogger("rcgate.hooks")
PROMPT_CHARS = 2000  # of the last prompt, shown with a held call ("the prompt that led to it")
PROMPT_SESSIONS = 1024  # sessions whose last prompt is remembered (oldest forgotten first)
_last_prompt: OrderedDict[str, str] = OrderedDict()  # session id -> its assistant's last prompt
KEEPALIVE_INTERVAL_S = 5.0  # a space this often while a held call waits (proxies idle out at 30-60 s)
KEEPALIVE_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass the spaces on, do not buffer the answer
}


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
        call: dict[str, object] = {"tool": held.tool_call.tool, "input": held.tool_call.input}
        if prompt := _last_prompt.get(info.session_id):
            call["prompt"] = prompt  # signed with the call: the approver sees why it was made
        text = json.dumps(call, sort_keys=True)[:16_000]
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
            # No decision yet: the hook timed out or its caller went away first, and a late
            # approval must not count. (Cancelling this wait cancels ``decided`` itself.)
            if not decided.done() or decided.cancelled():
                approvals.cancel(action.action_id, "the assistant's hook call ended before a decision")

    held_now = asyncio.Event()

    async def await_approval_signalled(held: HeldCall) -> bool:
        held_now.set()
        return await await_approval(held)

    answering = asyncio.ensure_future(
        answer_hook(
            assistant,
            payload,
            facts,
            actor,
            loaded.policy,
            now=identity.now(),
            await_approval=await_approval_signalled,
            hook_timeout_s=parse_hook_timeout(request.headers.get(HOOK_TIMEOUT_HEADER)),
        )
    )
    resp = web.StreamResponse(status=200, headers=KEEPALIVE_HEADERS)  # used only for a held call
    try:
        holding = asyncio.ensure_future(held_now.wait())
        try:
            await asyncio.wait([answering, holding], return_when=asyncio.FIRST_COMPLETED)
        finally:
            holding.cancel()
        if not answering.done():  # held for review: 200 now, then spaces until the answer
            await resp.prepare(request)
            while not answering.done():
                done, _ = await asyncio.wait([answering], timeout=KEEPALIVE_INTERVAL_S)
                if not done:
                    await resp.write(b" ")
    except ConnectionError:  # a keep-alive space found the caller gone
        return resp
    finally:
        if not answering.done():  # the caller went away (or the server stops): withdraw the hold
            log.info("a %s hook call ended while it was held", assistant)
            answering.cancel()  # await_approval's finally cancels the held action
            hub.mark(info.session_id, f"{assistant} hook call ended while held: the call does not run")
    answer = answering.result()
    call = answer.call
    if call is not None and call.kind is EventKind.PROMPT and call.prompt:
        _last_prompt[info.session_id] = call.prompt[:PROMPT_CHARS]
        _last_prompt.move_to_end(info.session_id)
        while len(_last_prompt) > PROMPT_SESSIONS:
            _last_prompt.popitem(last=False)
    tool = call.tool_call.tool if call is not None and call.tool_call is not None else "-"
    event = call.event if call is not None else "?"
    hub.mark(
        info.session_id, f"{assistant} {event} {tool}: {answer.verdict.value} (rule {answer.rule or '-'})"
    )
    denied = answer.verdict.value == "deny"
    try:
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
    except Exception:
        if not resp.prepared:
            raise  # an error status: the assistant's hook fails closed on it
        # The 200 has gone out: the only way left to refuse is a deny in the body.
        log.exception("could not audit a held %s hook call; answering deny", assistant)
        answer = fail_closed(adapter_for(assistant), payload, "the call could not be recorded")
    if not resp.prepared:
        return json_response(dict(answer.body))
    try:
        await resp.write(json.dumps(dict(answer.body)).encode())
        await resp.write_eof()
    except ConnectionError:
        log.info("a %s hook caller went away before its answer", assistant)
    return resp
