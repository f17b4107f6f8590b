"""Identity API: /api/me, enrolment, factors, password, sign-in, step-up, login sessions."""

from __future__ import annotations

import base64
import io
import secrets
from typing import Any

import segno
from aiohttp import web
from pydantic import Field

from gateway.auth.service import Authenticated, NewLogin
from gateway.core.models import Factor, LoginSession, User
from gateway.httpd.context import (
    CONFIG,
    CSRF_COOKIE,
    IDENTITY,
    SESSION_COOKIE,
    Body,
    current,
    json_response,
    read_json,
    remote_of,
    user_agent_of,
    who_or_none,
)
from gateway.httpd.openapi import RouteTable

routes = RouteTable()

CREDENTIAL_MAX_FIELDS = 16


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "groups": list(user.groups),
        "disabled": user.disabled,
    }


def login_json(login: LoginSession, current_id: str | None) -> dict[str, Any]:
    return {
        "id": login.id,
        "current": login.id == current_id,
        "created_at": login.created_at,
        "last_seen_at": login.last_seen_at,
        "expires_at": login.expires_at(),
        "last_factor": login.last_factor,
        "last_factor_at": login.last_factor_at,
        "enrolling": login.enrolling,
        "user_agent": login.user_agent,
    }


def factor_json(f: Factor) -> dict[str, Any]:
    return {
        "id": f.id,
        "kind": f.kind,
        "name": f.name,
        "created_at": f.created_at,
        "last_used_at": f.last_used_at,
    }


def _set_login_cookie(request: web.Request, resp: web.StreamResponse, new: NewLogin) -> None:
    cfg = request.app[CONFIG]
    resp.set_cookie(
        SESSION_COOKIE,
        new.token,
        httponly=True,
        samesite="Strict",
        secure=cfg.secure_cookies,
        path="/",
        max_age=int(new.login.expires_at() - new.login.created_at),
    )


# ---- bodies ---------------------------------------------------------------------------------------


class Empty(Body):
    pass


class EnrolStart(Body):
    token: str = Field(max_length=256)


class CredentialBody(Body):
    challenge_id: str = Field(max_length=128)
    credential: dict[str, Any]
    name: str | None = Field(default=None, max_length=64)


class TotpConfirm(Body):
    challenge_id: str = Field(max_length=128)
    code: str = Field(max_length=32)
    name: str | None = Field(default=None, max_length=64)


class Rename(Body):
    name: str = Field(min_length=1, max_length=64)


class PasswordBody(Body):
    password: str = Field(max_length=1024)


class TotpSignin(Body):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    code: str = Field(max_length=32)


class TotpCode(Body):
    code: str = Field(max_length=32)


# ---- session ----------------------------------------------------------------------------------------


@routes.add("GET", "/api/me", "Who is signed in, and the CSRF token for state-changing requests", auth="none")
async def get_me(request: web.Request) -> web.StreamResponse:
    who = who_or_none(request)
    cfg = request.app[CONFIG]
    if who is not None:
        return json_response(
            {
                "user": user_json(who.user),
                "login": login_json(who.login, who.login.id),
                "csrf_token": who.login.csrf_token,
            }
        )
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
    resp = json_response({"user": None, "login": None, "csrf_token": token})
    resp.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=cfg.secure_cookies, path="/")
    return resp


@routes.add("POST", "/api/logout", "Sign out of this browser", body=Empty)
async def post_logout(request: web.Request) -> web.StreamResponse:
    who = current(request, allow_enrolling=True)
    await request.app[IDENTITY].sign_out(who, remote=remote_of(request))
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@routes.add("GET", "/api/logins", "The signed-in user's login sessions")
async def get_logins(request: web.Request) -> web.StreamResponse:
    who = current(request)
    logins = await request.app[IDENTITY].logins_of(who.user.id)
    return json_response({"logins": [login_json(x, who.login.id) for x in logins]})


@routes.add("DELETE", "/api/logins/{login_id}", "End one of the user's login sessions")
async def delete_login(request: web.Request) -> web.StreamResponse:
    who = current(request)
    await request.app[IDENTITY].end_login(who, request.match_info["login_id"], remote=remote_of(request))
    return web.Response(status=204)


# ---- enrolment and factors ---------------------------------------------------------------------------


@routes.add("POST", "/api/enrol/start", "Redeem a one-time enrolment link", body=EnrolStart, auth="none")
async def post_enrol_start(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, EnrolStart)
    new = await request.app[IDENTITY].start_enrolment(
        body.token, user_agent=user_agent_of(request), remote=remote_of(request)
    )
    resp = json_response({"user": user_json(new.user)})
    _set_login_cookie(request, resp, new)
    return resp


@routes.add("GET", "/api/factors", "The user's factors", auth="enrolling")
async def get_factors(request: web.Request) -> web.StreamResponse:
    who = current(request, allow_enrolling=True)
    factors = await request.app[IDENTITY].factors_of(who.user.id)
    return json_response(
        {"factors": [factor_json(f) for f in factors], "has_password": who.user.password_hash is not None}
    )


@routes.add(
    "POST",
    "/api/factors/passkey/options",
    "Start registering a passkey",
    body=Empty,
    auth="enrolling",
    fresh=True,
)
async def post_passkey_options(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request, allow_enrolling=True)
    cid, options = await request.app[IDENTITY].passkey_registration_options(who)
    return json_response({"challenge_id": cid, "options": options})


@routes.add(
    "POST",
    "/api/factors/passkey",
    "Finish registering a passkey",
    body=CredentialBody,
    auth="enrolling",
    fresh=True,
)
async def post_passkey(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, CredentialBody)
    who = current(request, allow_enrolling=True)
    factor, _ = await request.app[IDENTITY].add_passkey(
        who, body.challenge_id, body.credential, body.name, remote=remote_of(request)
    )
    return json_response({"factor": factor_json(factor)})


@routes.add(
    "POST",
    "/api/factors/totp/options",
    "Start setting up an authenticator app",
    body=Empty,
    auth="enrolling",
    fresh=True,
)
async def post_totp_options(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request, allow_enrolling=True)
    setup = await request.app[IDENTITY].totp_setup(who)
    # A standalone SVG document (an <img> needs its xmlns), base64 in a data: URL.
    svg = io.BytesIO()
    segno.make(setup.otpauth_uri, error="m").save(svg, kind="svg", scale=5)
    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()
    return json_response(
        {
            "challenge_id": setup.challenge_id,
            "secret": setup.secret,
            "otpauth_uri": setup.otpauth_uri,
            "qr_svg": data_url,
        }
    )


@routes.add(
    "POST",
    "/api/factors/totp",
    "Confirm an authenticator app with one code",
    body=TotpConfirm,
    auth="enrolling",
    fresh=True,
)
async def post_totp(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, TotpConfirm)
    who = current(request, allow_enrolling=True)
    factor, _ = await request.app[IDENTITY].add_totp(
        who, body.challenge_id, body.code, body.name, remote=remote_of(request)
    )
    return json_response({"factor": factor_json(factor)})


@routes.add("PATCH", "/api/factors/{factor_id}", "Rename a factor", body=Rename)
async def patch_factor(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, Rename)
    who = current(request)
    factor = await request.app[IDENTITY].rename_factor(who, request.match_info["factor_id"], body.name)
    return json_response({"factor": factor_json(factor)})


@routes.add("DELETE", "/api/factors/{factor_id}", "Remove a factor (not the last one)", fresh=True)
async def delete_factor(request: web.Request) -> web.StreamResponse:
    who = current(request)
    await request.app[IDENTITY].remove_factor(who, request.match_info["factor_id"], remote=remote_of(request))
    return web.Response(status=204)


@routes.add(
    "POST",
    "/api/password",
    "Set the password of the password + TOTP path",
    body=PasswordBody,
    auth="enrolling",
    fresh=True,
)
async def post_password(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, PasswordBody)
    who = current(request, allow_enrolling=True)
    await request.app[IDENTITY].set_password(who, body.password, remote=remote_of(request))
    return web.Response(status=204)


# ---- sign-in and step-up -----------------------------------------------------------------------------


@routes.add("POST", "/api/login/passkey/options", "Start signing in with a passkey", body=Empty, auth="none")
async def post_login_passkey_options(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    cid, options = await request.app[IDENTITY].passkey_signin_options(remote=remote_of(request))
    return json_response({"challenge_id": cid, "options": options})


def _signed_in(request: web.Request, new: NewLogin) -> web.StreamResponse:
    resp = json_response({"user": user_json(new.user)})
    _set_login_cookie(request, resp, new)
    return resp


@routes.add("POST", "/api/login/passkey", "Sign in with a passkey", body=CredentialBody, auth="none")
async def post_login_passkey(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, CredentialBody)
    new = await request.app[IDENTITY].signin_passkey(
        body.challenge_id, body.credential, user_agent=user_agent_of(request), remote=remote_of(request)
    )
    return _signed_in(request, new)


@routes.add(
    "POST", "/api/login/totp", "Sign in with user name, password and TOTP code", body=TotpSignin, auth="none"
)
async def post_login_totp(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, TotpSignin)
    new = await request.app[IDENTITY].signin_totp(
        body.username, body.password, body.code, user_agent=user_agent_of(request), remote=remote_of(request)
    )
    return _signed_in(request, new)


@routes.add("POST", "/api/stepup/passkey/options", "Start a passkey step-up", body=Empty)
async def post_stepup_options(request: web.Request) -> web.StreamResponse:
    await read_json(request, Empty)
    who = current(request)
    cid, options = await request.app[IDENTITY].stepup_options(who)
    return json_response({"challenge_id": cid, "options": options})


def _stepped(who: Authenticated) -> web.StreamResponse:
    return json_response({"login": login_json(who.login, who.login.id)})


@routes.add("POST", "/api/stepup/passkey", "Finish a passkey step-up", body=CredentialBody)
async def post_stepup_passkey(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, CredentialBody)
    who = current(request)
    return _stepped(
        await request.app[IDENTITY].stepup_passkey(
            who, body.challenge_id, body.credential, remote=remote_of(request)
        )
    )


@routes.add("POST", "/api/stepup/totp", "Step up with a TOTP code", body=TotpCode)
async def post_stepup_totp(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, TotpCode)
    who = current(request)
    return _stepped(await request.app[IDENTITY].stepup_totp(who, body.code, remote=remote_of(request)))
