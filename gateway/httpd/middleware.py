"""Security middleware: identity resolution, CSRF and Origin checks, headers, error mapping.

Order (outermost first): errors → headers → identity → csrf. Each GatewayError becomes one JSON
answer with its status; anything unexpected is a 500 with no detail leaked (the detail goes to
the diagnostic log only).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.core.audit import AuditType
from gateway.core.errors import Forbidden, GatewayError, Unauthenticated
from gateway.httpd.context import (
    CONFIG,
    CSRF_COOKIE,
    CSRF_HEADER,
    IDENTITY,
    SESSION_COOKIE,
    WHO,
    remote_of,
    who_or_none,
)

log = logging.getLogger("rcgate.httpd")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Called by the CLI, not a browser, and authenticated by a secret in the body, not a cookie.
CSRF_EXEMPT = frozenset({"/api/device/start", "/api/device/poll"})
CSRF_EXEMPT_PREFIX = "/api/hooks/"  # assistants, with a per-session bearer token

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _error_body(exc: GatewayError) -> web.Response:
    resp = web.json_response(exc.to_dict(), status=exc.status, headers={"Cache-Control": "no-store"})
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None:
        resp.headers["Retry-After"] = str(retry)
    return resp


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return _error_body(exc)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(
            {"error": "payload_too_large", "message": "request body too large"}, status=413
        )
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return web.json_response({"error": "http_error", "message": exc.reason}, status=exc.status)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal", "message": "internal error"}, status=500)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        raise
    for k, v in SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    if request.app[CONFIG].secure_cookies:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return resp


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    request[WHO] = None
    if token:
        try:
            request[WHO] = await request.app[IDENTITY].authenticate(token)
        except Unauthenticated:
            request[WHO] = None
    return await handler(request)


def origin_allowed(request: web.Request) -> bool:
    origins = request.app[CONFIG].origins
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin in origins
    # No Origin header (some same-origin requests): fall back to Fetch Metadata when present.
    site = request.headers.get("Sec-Fetch-Site")
    return site in (None, "same-origin", "none")


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unsafe API requests need an allowed Origin and the CSRF token (double submit, per login)."""
    if (
        request.method in UNSAFE_METHODS
        and request.path.startswith("/api/")
        and request.path not in CSRF_EXEMPT
        and not request.path.startswith(CSRF_EXEMPT_PREFIX)
    ):
        reason = None
        if not origin_allowed(request):
            reason = "request from a foreign origin"
        else:
            sent = request.headers.get(CSRF_HEADER, "")
            who = who_or_none(request)
            expected = who.login.csrf_token if who else request.cookies.get(CSRF_COOKIE, "")
            if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                reason = "missing or wrong CSRF token; reload the page"
        if reason is not None:
            await request.app[IDENTITY].audit(
                AuditType.CSRF_REFUSED,
                outcome="fail",
                remote=remote_of(request),
                path=request.path,
                reason=reason,
            )
            raise Forbidden(reason, code="csrf")
    return await handler(request)
