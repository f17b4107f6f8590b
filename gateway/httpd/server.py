"""Builds the aiohttp application: middleware, API routes, pages, static and vendor files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.auth.action_signing import ActionSigner
from gateway.auth.device import DeviceFlow
from gateway.auth.service import IdentityService
from gateway.core.ids import LinkId
from gateway.httpd import (
    routes_admin,
    routes_approvals,
    routes_device,
    routes_hooks,
    routes_identity,
    routes_policy,
    routes_recordings,
    routes_recordings_live,
    routes_sessions,
)
from gateway.httpd.context import (
    ACTION_SIGNER,
    APPROVALS,
    CONFIG,
    DEVICE,
    HUB,
    IDENTITY,
    LINKS,
    LIVE_STREAMS,
    POLICY,
    HttpConfig,
)
from gateway.httpd.middleware import (
    csrf_middleware,
    errors_middleware,
    headers_middleware,
    identity_middleware,
)
from gateway.httpd.openapi import build_openapi
from gateway.httpd.routes_recordings import RECORDINGS
from gateway.links.service import LinkService
from gateway.policy.source import PolicySource
from gateway.recording.catalog import Catalog
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.ports import ParticipantHub, ParticipantStream

PAGES = {
    "/": "index.html",
    "/login": "login.html",
    "/enrol": "enrol.html",
    "/account": "account.html",
    "/admin": "admin.html",
    "/device": "device.html",
    "/sessions": "sessions.html",
    "/l/{token}": "link.html",
    "/p/{participation}": "session.html",
    "/approvals": "approvals.html",
    "/recordings": "recordings.html",
    "/replay/{id}": "replay.html",
}
# Only these files of web/node_modules are served, under /vendor/.
VENDOR_FILES = {
    "xterm/xterm.js": "@xterm/xterm/lib/xterm.js",
    "xterm/xterm.css": "@xterm/xterm/css/xterm.css",
    "xterm/addon-fit.js": "@xterm/addon-fit/lib/addon-fit.js",
    "asciinema-player/asciinema-player.min.js": "asciinema-player/dist/bundle/asciinema-player.min.js",
    "asciinema-player/asciinema-player.css": "asciinema-player/dist/bundle/asciinema-player.css",
}
API_TABLES = [
    routes_identity.routes,
    routes_admin.routes,
    routes_device.routes,
    routes_sessions.routes,
    routes_policy.routes,
    routes_approvals.routes,
    routes_hooks.routes,
    routes_recordings.routes,
    routes_recordings_live.routes,
]


@dataclass(frozen=True, slots=True)
class HttpServices:
    identity: IdentityService
    links: LinkService
    device: DeviceFlow
    hub: ParticipantHub
    policy: PolicySource
    approvals: ApprovalService
    signer: ActionSigner
    recordings: Catalog | None = None  # the reviewer workbench (optional in small test apps)


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


def _page(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-store", "Content-Type": "text/html"})

    return handler


def _vendor(root: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        rel = VENDOR_FILES.get(request.match_info["name"])
        if rel is None:
            raise web.HTTPNotFound()
        return web.FileResponse(root / rel)

    return handler


def make_app(services: HttpServices, config: HttpConfig) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, headers_middleware, identity_middleware, csrf_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[IDENTITY] = services.identity
    app[LINKS] = services.links
    app[DEVICE] = services.device
    app[HUB] = services.hub
    app[POLICY] = services.policy
    app[APPROVALS] = services.approvals
    app[ACTION_SIGNER] = services.signer
    if services.recordings is not None:
        app[RECORDINGS] = services.recordings
    app[LIVE_STREAMS] = dict[LinkId, set[ParticipantStream]]()
    app[CONFIG] = config
    app.router.add_get("/healthz", healthz)
    openapi = build_openapi(API_TABLES)

    async def get_openapi(request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi)

    app.router.add_get("/api/openapi.json", get_openapi)
    for table in API_TABLES:
        table.install(app)
    routes_sessions.install_ws(app)
    routes_recordings_live.install(app)
    web_dir = Path(config.web_dir)
    for route, file in PAGES.items():
        app.router.add_get(route, _page(web_dir / file))
    app.router.add_static("/static/", web_dir / "static", follow_symlinks=False)
    app.router.add_get("/vendor/{name:.+}", _vendor(Path(config.vendor_dir)))
    return app
