"""Admin policy API: the policy in force, validate-before-save, version history with diffs, explain."""

from __future__ import annotations

import difflib
from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.core.errors import BadRequest, NotFound
from gateway.core.ids import SessionId, UserId
from gateway.core.models import FactorKind, Role
from gateway.core.modes import Mode
from gateway.httpd.context import IDENTITY, POLICY, Body, json_response, read_json, require_role
from gateway.httpd.openapi import RouteTable
from gateway.policy import Actor, PolicyError, SessionFacts, explain, lint, parse_policy, policy_version
from gateway.policy.facts import action_from

routes = RouteTable()
POLICY_MAX_CHARS = 60_000  # under the 64 KiB body limit


class PolicyText(Body):
    text: str = Field(max_length=POLICY_MAX_CHARS)


class ExplainBody(Body):
    user: str = Field(max_length=64)
    owner: str | None = Field(default=None, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)
    host: str = Field(default="", max_length=253)
    assistant: str | None = Field(default=None, max_length=32)
    mode: Mode | None = None
    request: bool = False
    key: str | None = Field(default=None, max_length=32)
    tool: str | None = Field(default=None, max_length=128)
    input: str | None = Field(default=None, max_length=16_000)
    tool_input: dict[str, Any] | None = None
    remote_participants: int = Field(default=0, ge=0, le=1000)
    permission_mode: str | None = Field(default=None, max_length=64)


def _problems(exc: PolicyError) -> list[dict[str, Any]]:
    return [{"line": p.line, "field": p.field, "message": p.message} for p in exc.problems]


@routes.add(
    "GET", "/api/admin/policy", "The policy in force, its version, the last refused load", auth="admin"
)
async def get_policy(request: web.Request) -> web.StreamResponse:
    require_role(request, Role.ADMIN)
    source = request.app[POLICY]
    cur = source.current()
    versions = [name for name, _ in source.versions()]
    return json_response(
        {
            "text": cur.text,
            "version": cur.version,
            "source": cur.source,
            "loaded_at": cur.loaded_at,
            "error": source.last_error,
            "versions": versions,
            "editable": source.editable,
        }
    )


@routes.add(
    "GET",
    "/api/admin/policy/versions/{name}",
    "One kept version and its diff from the one before",
    auth="admin",
)
async def get_policy_version(request: web.Request) -> web.StreamResponse:
    require_role(request, Role.ADMIN)
    versions = request.app[POLICY].versions()
    names = [n for n, _ in versions]
    name = request.match_info["name"]
    if name not in names:
        raise NotFound("no such policy version")
    i = names.index(name)
    before = versions[i - 1][1] if i > 0 else ""
    diff = "\n".join(
        difflib.unified_diff(before.splitlines(), versions[i][1].splitlines(), "before", name, lineterm="")
    )
    return json_response({"name": name, "text": versions[i][1], "diff": diff})


@routes.add(
    "POST",
    "/api/admin/policy/validate",
    "Validate a policy text without saving it",
    body=PolicyText,
    auth="admin",
)
async def post_validate(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, PolicyText)
    require_role(request, Role.ADMIN)
    try:
        parsed = parse_policy(body.text, "policy.yaml")
    except PolicyError as exc:
        return json_response({"valid": False, "message": exc.message, "problems": _problems(exc)})
    warnings = [{"rule": w.rule, "message": w.message} for w in lint(parsed)]
    return json_response({"valid": True, "version": policy_version(body.text), "warnings": warnings})


@routes.add(
    "POST",
    "/api/admin/policy",
    "Validate, save and put in force (needs a fresh factor)",
    body=PolicyText,
    auth="admin",
    fresh=True,
)
async def post_policy(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, PolicyText)
    who = require_role(request, Role.ADMIN)
    await request.app[IDENTITY].require_fresh(who)
    try:
        loaded = await request.app[POLICY].submit(body.text, who=who.user.id)
    except PolicyError as exc:
        raise BadRequest(exc.message, code="policy_invalid") from exc
    return json_response({"version": loaded.version, "source": loaded.source})


@routes.add(
    "POST",
    "/api/admin/policy/explain",
    "Which rule decides an action, and why",
    body=ExplainBody,
    auth="admin",
)
async def post_explain(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, ExplainBody)
    require_role(request, Role.ADMIN)
    identity = request.app[IDENTITY]
    user = await identity.user_by_name(body.user)
    owner = await identity.user_by_name(body.owner) if body.owner else user
    now = identity.now()
    # Explained as if a passkey had just been presented: the question is the rules, not freshness.
    actor = Actor(UserId(user.id), user.name, user.groups, user.role, FactorKind.PASSKEY, now)
    session = SessionFacts(
        id=SessionId("ses_explain"), owner_id=UserId(owner.id), owner_name=owner.name, host=body.host,
        labels=body.labels, assistant=body.assistant, remote_participants=body.remote_participants,
        permission_mode=body.permission_mode,
    )  # fmt: skip
    try:
        action = action_from(
            mode=body.mode,
            request=body.request,
            key=body.key,
            tool=body.tool,
            text=body.input,
            tool_input=body.tool_input,
            assistant=body.assistant,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    cur = request.app[POLICY].current()
    result = explain(cur.policy, actor, session, body.mode, action, now=now)
    return json_response({"policy_version": cur.version, "text": result.render(), **result.to_dict()})
