"""A small client of the gateway's JSON API for the workstation CLI verbs (approvals, links, sessions).

It signs in like a browser would (user name, password and a TOTP code; CSRF token; Origin header),
so every rule the pages obey applies to it too: step-up freshness, policy, audit.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.core.errors import BadRequest, Forbidden, Unauthenticated, Unavailable

HTTP_TIMEOUT_S = 30.0
Ask = Callable[[str, bool], str]  # (prompt, secret) -> answer


def ask_terminal(prompt: str, secret: bool) -> str:
    return getpass.getpass(prompt) if secret else input(prompt)


class GatewayApi:
    """The gateway's JSON API as a browser would use it: cookie, CSRF token, Origin header."""

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

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._call(method, path, body)
