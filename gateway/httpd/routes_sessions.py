"""Sessions API: live sessions, links (create, redeem, list, revoke), the participant WebSocket."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.auth.service import Authenticated
from gateway.core.errors import Forbidden, GatewayError, Gone, NotFound, ReauthRequired
from gateway.core.ids import LinkId, SessionId, UserId
from gateway.core.models import FactorKind, Link, Role
from gateway.core.modes import Mode
from gateway.httpd import ws as ws_relay
from gateway.httpd.context import (
    CONFIG,
    HUB,
    IDENTITY,
    LINKS,
    LIVE_STREAMS,
    POLICY,
    SESSION_COOKIE,
    Body,
    current,
    json_response,
    read_json,
    remote_of,
)
from gateway.httpd.middleware import origin_allowed
from gateway.httpd.openapi import RouteTable
from gateway.httpd.routes_identity import Empty
from gateway.links.service import DEFAULT_TTL_S, link_state, public_id
from gateway.policy import Actor, Allow, Deny, StepUp
from gateway.sessions.admission import actor_of, admit
from gateway.sessions.ports import SessionInfo

routes = RouteTable()

# Freshness each mode needs before a link is redeemed or a participant attaches (PRODUCT.md Modes).
MODE_FACTORS: dict[Mode, tuple[FactorKind, ...]] = {
    Mode.VIEW_ONLY: (FactorKind.PASSKEY, FactorKind.TOTP),
    Mode.APPROVED_EXECUTION: (FactorKind.PASSKEY,),
    Mode.PRIVILEGED: (FactorKind.PASSKEY,),
}
# Modes a link can carry today (privileged needs the grant flow of approvals).
LINKABLE_MODES = frozenset({Mode.VIEW_ONLY, Mode.APPROVED_EXECUTION})


def session_json(info: SessionInfo) -> dict[str, Any]:
    m = info.meta
    return {
        "id": info.session_id,
        "owner": m.owner_name,
        "host": m.host,
        "cwd": m.cwd,
        "command": list(m.command),
        "labels": dict(m.labels),
        "started_at": info.started_at,
        "cols": info.cols,
        "rows": info.rows,
        "connector_online": info.connector_online,
        "participants": [{"id": p.participant_id, "name": p.name, "mode": p.mode} for p in info.participants],
        "idle_remaining_s": info.idle_remaining_s,
        "max_remaining_s": info.max_remaining_s,
    }


def link_json(link: Link, now: float) -> dict[str, Any]:
    return {
        "id": public_id(link),
        "session_id": link.session_id,
        "mode": link.mode,
        "for_user": link.for_user,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "state": link_state(link, now),
        "redeemed_by": link.redeemed_by,
    }


def _owned(request: web.Request, who: Authenticated, session_id: str) -> SessionInfo:
    """The live session, if ``who`` owns it or is an admin."""
    info = request.app[HUB].session(SessionId(session_id))
    if info.meta.owner_id != who.user.id and who.user.role is not Role.ADMIN:
        raise Forbidden("only the session's owner or an admin may do this")
    return info


async def _require_mode_fresh(request: web.Request, who: Authenticated, mode: Mode) -> None:
    await request.app[IDENTITY].require_fresh(who, MODE_FACTORS[mode], request.app[CONFIG].join_max_age_s)


class NewLinkBody(Body):
    mode: Mode = Mode.VIEW_ONLY
    for_user: str | None = Field(default=None, max_length=64, description="user name")
    ttl_s: int = Field(default=DEFAULT_TTL_S, ge=10, le=24 * 3600)


class RedeemBody(Body):
    token: str = Field(max_length=64)


@routes.add("GET", "/api/sessions", "Live sessions you own (admins: all)")
async def get_sessions(request: web.Request) -> web.StreamResponse:
    who = current(request)
    infos = request.app[HUB].sessions()
    if who.user.role is not Role.ADMIN:
        infos = [i for i in infos if i.meta.owner_id == who.user.id]
    return json_response({"sessions": [session_json(i) for i in infos]})


@routes.add("GET", "/api/sessions/{session_id}", "One live session you own (admins: any)")
async def get_session(request: web.Request) -> web.StreamResponse:
    who = current(request)
    info = _owned(request, who, request.match_info["session_id"])
    return json_response({"session": session_json(info)})


@routes.add(
    "POST",
    "/api/sessions/{session_id}/end",
    "End remote control of a session (owner or admin)",
    body=Empty,
    fresh=True,
)
async def post_end_session(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request)
    info = _owned(request, who, request.match_info["session_id"])
    await request.app[IDENTITY].require_fresh(who)
    await request.app[HUB].end(info.session_id, f"ended by {who.user.name}")
    await request.app[LINKS].revoke_all(info.session_id, who.user.id)
    return web.Response(status=204)


@routes.add(
    "POST",
    "/api/sessions/{session_id}/links",
    "Create a remote-control link (owner or admin)",
    body=NewLinkBody,
    fresh=True,
)
async def post_link(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, NewLinkBody)
    who = current(request)
    info = _owned(request, who, request.match_info["session_id"])
    if body.mode not in LINKABLE_MODES:
        raise Forbidden(
            f"links for {body.mode} are not available yet: view_only or approved_execution",
            code="mode_unavailable",
        )
    await request.app[IDENTITY].require_fresh(who)
    for_user: UserId | None = None
    if body.for_user:
        for_user = (await request.app[IDENTITY].user_by_name(body.for_user)).id
    new = await request.app[LINKS].create(
        info.session_id, body.mode, who.user, for_user=for_user, ttl_s=body.ttl_s
    )
    cfg = request.app[CONFIG]
    return json_response(
        {
            "link": link_json(new.link, new.link.created_at),
            "url": new.url,
            "ssh": f"ssh -p {cfg.ssh_port} -t {new.token}@{cfg.ssh_host}",
        }
    )


@routes.add("GET", "/api/sessions/{session_id}/links", "Links of a session (owner or admin)")
async def get_links(request: web.Request) -> web.StreamResponse:
    who = current(request)
    info = _owned(request, who, request.match_info["session_id"])
    now = request.app[IDENTITY].now()
    links = await request.app[LINKS].list(info.session_id)
    return json_response({"links": [link_json(x, now) for x in links]})


@routes.add(
    "POST",
    "/api/sessions/{session_id}/links/{link}/revoke",
    "Revoke a link; its participants leave",
    body=Empty,
)
async def post_revoke(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request)
    info = _owned(request, who, request.match_info["session_id"])
    link = await request.app[LINKS].revoke(info.session_id, request.match_info["link"], who.user)
    for stream in list(request.app[LIVE_STREAMS].get(link.id, ())):
        stream.close()
    return web.Response(status=204)


@routes.add(
    "POST",
    "/api/links/redeem",
    "Redeem a link for the signed-in user (needs a fresh factor)",
    body=RedeemBody,
    fresh=True,
)
async def post_redeem(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, RedeemBody)
    who = current(request)
    # Freshness and policy first: neither a stale factor nor a refusal may burn the link.
    await _require_mode_fresh(request, who, Mode.VIEW_ONLY)
    peeked = await request.app[LINKS].peek(body.token)
    if peeked is not None:
        await _require_mode_fresh(request, who, peeked.mode)
        await admit_or_raise(request, who, peeked)
    link = await request.app[LINKS].redeem(body.token, who.user, remote=remote_of(request))
    request.app[HUB].session(link.session_id)  # NotFound when it is not live any more
    return json_response({"participation": link.id, "session_id": link.session_id, "mode": link.mode})


async def admit_or_raise(request: web.Request, who: Authenticated, link: Link) -> None:
    """Policy decides whether ``who`` may join in the link's mode; the decision is audited."""
    info = request.app[HUB].session(link.session_id)
    identity = request.app[IDENTITY]
    now = identity.now()
    result = admit(request.app[POLICY].current(), actor_of(who.user, who.login), info, link.mode, now)
    d = result.decision
    await identity.audit(
        "policy.decision",
        actor=who.user.id,
        subject=link.session_id,
        outcome="ok" if isinstance(d, Allow) else "fail",
        action=f"join:{link.mode}",
        rule=d.rule,
        policy_version=result.policy_version,
        remote=remote_of(request),
    )
    if isinstance(d, Allow):
        return
    if isinstance(d, StepUp):
        raise ReauthRequired(
            "policy needs a fresh factor for this mode",
            factors=[f.value for f in d.factors],
            max_age_s=d.max_age_s,
        )
    if isinstance(d, Deny):
        raise Forbidden(f"policy does not let you join: {d.reason} (rule {d.rule})", code="policy_denied")
    raise Forbidden(
        f"joining in {link.mode} needs an approval, which is not available yet (rule {d.rule})",
        code="policy_review",
    )


async def _participation(request: web.Request, who: Authenticated) -> Link:
    link = await request.app[LINKS].get(LinkId(request.match_info["participation"]))
    if link is None or link.redeemed_by != who.user.id:
        raise NotFound("no such participation: open the link again")
    if link.revoked_at is not None:
        raise Gone("this link was revoked", code="link_revoked")
    return link


@routes.add(
    "GET",
    "/api/participations/{participation}",
    "What a redeemed link lets you do (checks freshness)",
    fresh=True,
)
async def get_participation(request: web.Request) -> web.StreamResponse:
    who = current(request)
    link = await _participation(request, who)
    # The same check the WebSocket makes, so the page can prompt a step-up before (re)connecting.
    await _require_mode_fresh(request, who, link.mode)
    info = request.app[HUB].session(link.session_id)
    return json_response({"mode": link.mode, "session": session_json(info)})


async def participant_ws(request: web.Request) -> web.StreamResponse:
    """Upgrade only for an allowed Origin, a live login, a redeemed link of that user, a fresh factor."""
    if not origin_allowed(request) or request.headers.get("Origin") is None:
        raise Forbidden("WebSocket from a foreign origin", code="origin")
    who = current(request)
    link = await _participation(request, who)
    await _require_mode_fresh(request, who, link.mode)
    hub = request.app[HUB]
    hub.session(link.session_id)
    # No permessage-deflate: compressing terminal output capped fan-out at ~60-145 MB/s (bench/).
    ws = web.WebSocketResponse(
        max_msg_size=ws_relay.MAX_MESSAGE_BYTES, heartbeat=ws_relay.HEARTBEAT_S, compress=False
    )
    await ws.prepare(request)
    resume = await ws_relay.read_hello(ws)
    try:
        stream = await hub.attach(
            link.session_id,
            who.user.id,
            who.user.name,
            link.mode,
            resume,
            actor=actor_of(who.user, who.login),
        )
    except GatewayError as exc:
        reason = "the session has ended" if isinstance(exc, NotFound) else exc.message
        await ws.send_str(json.dumps({"t": "closed", "reason": reason}))
        await ws.close(code=ws_relay.CLOSE_POLICY, message=reason.encode()[:120])
        return ws
    live = request.app[LIVE_STREAMS].setdefault(link.id, set())
    live.add(stream)
    identity = request.app[IDENTITY]
    token = request.cookies.get(SESSION_COOKIE)

    async def refresh_actor() -> Actor | None:
        try:
            now_who = await identity.authenticate(token)
        except GatewayError:
            return None
        return actor_of(now_who.user, now_who.login)

    try:
        await ws_relay.relay(ws, stream, refresh_actor)
    finally:
        live.discard(stream)
    return ws


def install_ws(app: web.Application) -> None:
    app.router.add_get("/api/participations/{participation}/ws", participant_ws)
