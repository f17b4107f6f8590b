"""`rcgate sessions list|end` and `rcgate links create|list|revoke` from a terminal.

Both go through the gateway's API after a password + TOTP sign-in (a fresh factor, which creating
links and ending sessions need); only the session's owner or an admin may act on a session.
"""

from __future__ import annotations

import sys
from typing import TextIO

import aiohttp

from gateway.connector.api_client import Ask, GatewayApi, ask_terminal
from gateway.core.errors import BadRequest

TTL_UNITS_S = {"s": 1, "m": 60, "h": 3600}


def parse_ttl(text: str) -> int:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    text = text.strip().lower()
    unit = text[-1] if text and text[-1] in TTL_UNITS_S else "s"
    number = text[:-1] if text and text[-1] in TTL_UNITS_S else text
    if not number.isdigit():
        raise BadRequest(f"--ttl takes a duration like 90s, 10m or 1h, not {text!r}")
    return int(number) * TTL_UNITS_S[unit]


async def sessions(
    verb: str,
    session_id: str | None,
    gateway_url: str,
    *,
    ask: Ask = ask_terminal,
    out: TextIO = sys.stdout,
    origin: str | None = None,
) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = GatewayApi(gateway_url, http, origin)
        await api.sign_in(ask)
        if verb == "list":
            live = (await api.call("GET", "/api/sessions")).get("sessions") or []
            if not live:
                print("no live session you own (admins see all)", file=out)
            for s in live:
                who = ", ".join(f"{p['name']} ({p['mode']})" for p in s.get("participants", [])) or "-"
                print(
                    f"{s['id']}  {s['owner']}@{s['host']}  {' '.join(s['command'])}  participants: {who}",
                    file=out,
                )
            return 0
        if not session_id:
            raise BadRequest("rcgate sessions end needs the session id (see rcgate sessions list)")
        await api.call("POST", f"/api/sessions/{session_id}/end", {})
        print(f"ended remote control of {session_id}; the program keeps running for its owner", file=out)
        return 0


async def links(
    verb: str,
    session_id: str,
    gateway_url: str,
    *,
    mode: str = "view_only",
    for_user: str | None = None,
    ttl: str = "10m",
    link_id: str | None = None,
    ask: Ask = ask_terminal,
    out: TextIO = sys.stdout,
    origin: str | None = None,
) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = GatewayApi(gateway_url, http, origin)
        await api.sign_in(ask)
        base = f"/api/sessions/{session_id}/links"
        if verb == "create":
            body = {"mode": mode, "ttl_s": parse_ttl(ttl), **({"for_user": for_user} if for_user else {})}
            made = await api.call("POST", base, body)
            print(made["url"], file=out)
            print(made["ssh"], file=out)
            return 0
        if verb == "list":
            for x in (await api.call("GET", base)).get("links") or []:
                print(f"{x['id']}  {x['mode']:<18} {x['state']:<9} for={x['for_user'] or '-'}", file=out)
            return 0
        if not link_id:
            raise BadRequest("rcgate links revoke needs the link's id (see rcgate links list)")
        await api.call("POST", f"{base}/{link_id}/revoke", {})
        print(f"revoked {link_id}; its participants were removed", file=out)
        return 0
