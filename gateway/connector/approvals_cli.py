"""`rcgate approvals list|approve|deny`: the owner decides held actions from the workstation.

The CLI signs in to the gateway's API like a browser would (user name, password and a TOTP code,
CSRF token, Origin header) and decides with a second, fresh TOTP code: the step-up at the prompt.
Each code works once (the gateway's replay guard), so the second prompt wants the next code.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

import aiohttp

from gateway.core.errors import BadRequest, Forbidden, GatewayError, Unauthenticated, Unavailable

HTTP_TIMEOUT_S = 30.0
Ask = Callable[[str, bool], str]  # (prompt, secret) -> answer


def ask_terminal(prompt: str, secret: bool) -> str:
    return getpass.getpass(prompt) if secret else input(prompt)


class ApprovalsClient:
    def __init__(self, gateway_url: str, session: aiohttp.ClientSession, origin: str | None = None) -> None:
        self._base = gateway_url.rstrip("/")
        self._origin = (origin or gateway_url).rstrip("/")
        self._http = session
        self._csrf = ""

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Origin": self._origin, "X-CSRF-Token": self._csrf}
        try:
            async with self._http.request(
                method,
                self._base + path,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            ) as r:
                data = await r.json(content_type=None) if r.content_length != 0 else {}
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"cannot reach the gateway at {self._base}: {exc}") from exc
        data = data if isinstance(data, dict) else {}
        if status >= 400:
            message = str(data.get("message") or f"HTTP {status}")
            raise (Unauthenticated if status == 401 else Forbidden if status == 403 else BadRequest)(message)
        return data

    async def sign_in(self, ask: Ask) -> str:
        me = await self._call("GET", "/api/me")
        self._csrf = str(me.get("csrf_token", ""))
        name = ask("rcgate user name: ", False)
        password = ask("Password: ", True)
        code = ask("Verification code: ", True)
        await self._call("POST", "/api/login/totp", {"username": name, "password": password, "code": code})
        me = await self._call("GET", "/api/me")
        self._csrf = str(me.get("csrf_token", ""))
        return name

    async def pending(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "/api/approvals")
        return list(data.get("approvals") or [])

    async def decide(self, action_id: str, approve: bool, code: str) -> dict[str, Any]:
        return await self._call(
            "POST", f"/api/approvals/{action_id}/decide-totp", {"approve": approve, "code": code}
        )


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
        client = ApprovalsClient(gateway_url, http, origin)
        await client.sign_in(ask)
        if verb == "list":
            _print_table(await client.pending(), out)
            return 0
        if not action_id:
            raise BadRequest(f"rcgate approvals {verb} needs the action's ID (see rcgate approvals list)")
        items = {a.get("id"): a for a in await client.pending()}
        item = items.get(action_id)
        if item is None:
            raise GatewayError("no such action waits for you (decided, expired, or not yours to decide)")
        print(f"{verb} #{item.get('seq')} by {item.get('requester')}: {item.get('text')}", file=out)
        code = ask("Next verification code (each code works once): ", True)
        result = await client.decide(action_id, verb == "approve", code)
        print(f"recorded: {result.get('decision', {}).get('state', 'decided')}", file=out)
        return 0
