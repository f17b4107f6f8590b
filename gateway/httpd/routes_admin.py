"""Admin API: users (add, disable, reset factors) and the audit log."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from gateway.core.ids import UserId
from gateway.core.models import Role
from gateway.httpd.context import IDENTITY, Body, json_response, read_json, require_role
from gateway.httpd.openapi import RouteTable
from gateway.httpd.routes_identity import Empty, user_json

routes = RouteTable()
AUDIT_PAGE_MAX = 500


class NewUser(Body):
    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.MEMBER
    groups: list[str] = Field(default_factory=list, max_length=32)


@routes.add("GET", "/api/admin/users", "Every user", auth="admin")
async def get_users(request: web.Request) -> web.StreamResponse:
    require_role(request, Role.ADMIN)
    users = await request.app[IDENTITY].list_users()
    return json_response({"users": [user_json(u) for u in users]})


@routes.add(
    "POST",
    "/api/admin/users",
    "Add a user; answers a one-time enrolment link",
    body=NewUser,
    auth="admin",
    fresh=True,
)
async def post_user(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, NewUser)
    who = require_role(request, Role.ADMIN)
    identity = request.app[IDENTITY]
    await identity.require_fresh(who)
    user, url = await identity.add_user(body.name, body.role, body.groups, actor=who.user.id)
    return json_response({"user": user_json(user), "enrol_url": url})


@routes.add(
    "POST",
    "/api/admin/users/{user_id}/disable",
    "Disable a user and end their logins",
    body=Empty,
    auth="admin",
    fresh=True,
)
async def post_disable(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = require_role(request, Role.ADMIN)
    identity = request.app[IDENTITY]
    await identity.require_fresh(who)
    user = await identity.disable_user(UserId(request.match_info["user_id"]), actor=who.user.id)
    return json_response({"user": user_json(user)})


@routes.add(
    "POST",
    "/api/admin/users/{user_id}/reset-factors",
    "Remove a user's factors; new enrolment link",
    body=Empty,
    auth="admin",
    fresh=True,
)
async def post_reset(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = require_role(request, Role.ADMIN)
    identity = request.app[IDENTITY]
    await identity.require_fresh(who)
    user, url = await identity.reset_factors(UserId(request.match_info["user_id"]), actor=who.user.id)
    return json_response({"user": user_json(user), "enrol_url": url})


@routes.add("GET", "/api/admin/audit", "Audit events, oldest first, after a sequence number", auth="admin")
async def get_audit(request: web.Request) -> web.StreamResponse:
    require_role(request, Role.ADMIN)
    try:
        after = max(0, int(request.query.get("after", "0")))
        limit = min(AUDIT_PAGE_MAX, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        from gateway.core.errors import BadRequest

        raise BadRequest("after and limit are integers") from None
    events = await request.app[IDENTITY].audit_events(after_seq=after, limit=limit)
    return json_response({"events": [e.model_dump(mode="json") for e in events]})
