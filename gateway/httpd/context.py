"""What the HTTP handlers share: app keys, the per-request identity, client address, JSON bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.auth.action_signing import ActionSigner
from gateway.auth.device import DeviceFlow
from gateway.auth.service import Authenticated, IdentityService
from gateway.core.errors import BadRequest, PayloadTooLarge, Unauthenticated
from gateway.core.ids import LinkId
from gateway.core.models import Role
from gateway.links.service import LinkService
from gateway.policy.source import PolicySource
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.ports import ParticipantHub, ParticipantStream

SESSION_COOKIE = "rcg_session"
CSRF_COOKIE = "rcg_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    public_url: str
    origins: tuple[str, ...]
    secure_cookies: bool
    max_body_bytes: int
    web_dir: str
    vendor_dir: str
    ssh_host: str = "localhost"
    ssh_port: int = 2222
    ssh_host_key: str | None = None
    join_max_age_s: int = 5 * 60  # a factor this fresh is needed to join or rejoin a session


IDENTITY = web.AppKey("identity", IdentityService)
LINKS = web.AppKey("links", LinkService)
DEVICE = web.AppKey("device", DeviceFlow)
POLICY = web.AppKey("policy", PolicySource)
APPROVALS = web.AppKey("approvals", ApprovalService)
ACTION_SIGNER = web.AppKey("action_signer", ActionSigner)
HUB = web.AppKey("hub", ParticipantHub)
# Participant streams by the link they came through, so revoking a link removes them at once.
LIVE_STREAMS = web.AppKey("live_streams", dict[LinkId, set[ParticipantStream]])
CONFIG = web.AppKey("http_config", HttpConfig)
WHO = web.RequestKey("who", object)  # Authenticated | None, resolved once by the middleware


class Body(BaseModel):
    """Base of every JSON request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


B = TypeVar("B", bound=Body)


async def read_json(request: web.Request, model: type[B]) -> B:
    """Parse and validate a JSON body; every failure is a 400/413 with a message, never a 500."""
    limit = request.app[CONFIG].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    if not raw.strip():
        raw = b"{}"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "body"
            parts.append(f"{loc}: {'unknown field' if err['type'] == 'extra_forbidden' else err['msg']}")
        raise BadRequest("invalid request: " + "; ".join(parts)) from exc


def remote_of(request: web.Request) -> str:
    return request.remote or "unknown"


def user_agent_of(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:200]


def who_or_none(request: web.Request) -> Authenticated | None:
    who = request.get(WHO)
    return who if isinstance(who, Authenticated) else None


def current(request: web.Request, *, allow_enrolling: bool = False) -> Authenticated:
    """The signed-in identity; enrolment sessions pass only where ``allow_enrolling``."""
    who = who_or_none(request)
    if who is None:
        raise Unauthenticated("sign in first")
    if who.login.enrolling and not allow_enrolling:
        raise Unauthenticated("finish enrolment first: add a passkey or an authenticator app")
    return who


def require_role(request: web.Request, *roles: Role) -> Authenticated:
    from gateway.core.errors import Forbidden

    who = current(request)
    if who.user.role not in roles:
        raise Forbidden("your role does not allow this")
    return who


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})
