"""Device login API for `rcgate login`: start and poll (no cookie), describe and decide (signed in)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from gateway.httpd.context import CONFIG, DEVICE, IDENTITY, Body, current, json_response, read_json, remote_of
from gateway.httpd.openapi import RouteTable

routes = RouteTable()


class DeviceStartBody(Body):
    public_key: str = Field(max_length=4096, description="the workstation's OpenSSH public key line")
    host: str = Field(max_length=253, description="the workstation's host name")


class DevicePollBody(Body):
    device_code: str = Field(max_length=128)


class DeviceDecision(Body):
    user_code: str = Field(max_length=16)
    approve: bool


@routes.add("POST", "/api/device/start", "Start a workstation login (CLI)", body=DeviceStartBody, auth="none")
async def post_device_start(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, DeviceStartBody)
    await request.app[IDENTITY].rate_limit(remote_of(request))
    start = await request.app[DEVICE].start(body.public_key, body.host)
    cfg = request.app[CONFIG]
    return json_response(
        {
            "device_code": start.device_code,
            "user_code": start.user_code,
            "verification_uri": f"{cfg.public_url}/device",
            "verification_uri_complete": f"{cfg.public_url}/device#code={start.user_code}",
            "expires_in": start.expires_in,
            "interval": start.interval,
        }
    )


@routes.add(
    "POST",
    "/api/device/poll",
    "Poll for the certificate (CLI); 202 while pending",
    body=DevicePollBody,
    auth="none",
)
async def post_device_poll(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, DevicePollBody)
    result = await request.app[DEVICE].poll(body.device_code)
    if result is None:
        return json_response({"status": "pending"}, status=202)
    cfg = request.app[CONFIG]
    return json_response(
        {
            "status": "approved",
            "certificate": result["certificate"],
            "user": result["user"],
            "ssh_host": cfg.ssh_host,
            "ssh_port": cfg.ssh_port,
            "ssh_host_key": cfg.ssh_host_key,
        }
    )


@routes.add("GET", "/api/device/{user_code}", "What a pending workstation login asks for")
async def get_device(request: web.Request) -> web.StreamResponse:
    current(request)
    return json_response(await request.app[DEVICE].describe(request.match_info["user_code"]))


@routes.add(
    "POST",
    "/api/device/decide",
    "Approve or deny a workstation login (needs a fresh factor)",
    body=DeviceDecision,
    fresh=True,
)
async def post_device_decide(request: web.Request) -> web.StreamResponse:
    body = await read_json(request, DeviceDecision)
    who = current(request)
    await request.app[IDENTITY].require_fresh(who)
    await request.app[DEVICE].decide(who.user, body.user_code, body.approve)
    return web.Response(status=204)
