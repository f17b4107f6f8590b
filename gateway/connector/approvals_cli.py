"""`rcgate approvals list|approve|deny`: the owner decides held actions from the workstation.

The CLI signs in to the gateway's API like a browser would (user name, password and a TOTP code,
CSRF token, Origin header) and decides with a second, fresh TOTP code: the step-up at the prompt.
Each code works once (the gateway's replay guard), so the second prompt wants the next code.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import aiohttp

from gateway.connector.api_client import Ask, GatewayApi, ask_terminal
from gateway.core.errors import BadRequest, GatewayError


async def _pending(client: GatewayApi) -> list[dict[str, Any]]:
    return list((await client.call("GET", "/api/approvals")).get("approvals") or [])


def _print_table(items: list[dict[str, Any]], out: TextIO) -> None:
    if not items:
        print("nothing waits for your approval", file=out)
        return
    print(f"{'ID':<28} {'SEQ':>4} {'REQUESTER':<16} {'RULE':<24} TEXT", file=out)
    for a in items:
        text = str(a.get("text", "")).replace("\n", "\\n")[:80]
        who, rule = a.get("requester", ""), a.get("rule", "")
        print(f"{a.get('id', ''):<28} {a.get('seq', ''):>4} {who:<16} {rule:<24} {text}", file=out)


async def run(
    verb: str,
    action_id: str | None,
    gateway_url: str,
    *,
    ask: Ask = ask_terminal,
    out: TextIO = sys.stdout,
    origin: str | None = None,
) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = GatewayApi(gateway_url, http, origin)
        await client.sign_in(ask)
        if verb == "list":
            _print_table(await _pending(client), out)
            return 0
        if not action_id:
            raise BadRequest(f"rcgate approvals {verb} needs the action's ID (see rcgate approvals list)")
        items = {a.get("id"): a for a in await _pending(client)}
        item = items.get(action_id)
        if item is None:
            raise GatewayError("no such action waits for you (decided, expired, or not yours to decide)")
        print(f"{verb} #{item.get('seq')} by {item.get('requester')}: {item.get('text')}", file=out)
        code = ask("Next verification code (each code works once): ", True)
        result = await client.call(
            "POST", f"/api/approvals/{action_id}/decide-totp", {"approve": verb == "approve", "code": code}
        )
        print(f"recorded: {result.get('decision', {}).get('state', 'decided')}", file=out)
        return 0
