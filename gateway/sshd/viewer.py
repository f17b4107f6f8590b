"""SSH viewers: `ssh -p 2222 -t LINKTOKEN@gateway` joins a session through a link.

Theory of operation
-------------------
The SSH user name is the link token (the last part of the link URL). Keyboard-interactive
authentication asks for the rcgate user name, password and a TOTP code: a factor presented
right now, so the freshness rule of every mode holds. The code is checked with the same
replay guard and lockout as the web sign-in, then the link is redeemed for that user (single
use, bound to them, expired and revoked links refused, all audited). Only then does the login
succeed; the channel attaches a participant (view-only from SSH) and relays the session's
output. Whatever the viewer types goes to the session broker, which refuses and counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncssh

from gateway.core.errors import GatewayError
from gateway.core.models import Link, User
from gateway.core.modes import Mode
from gateway.sessions.ports import Control, Output, ParticipantHub, ParticipantStream, StreamClosed
from gateway.sshd.connector_channel import exit_channel

log = logging.getLogger(__name__)

LINK_TOKEN_CHARS = 22  # 128-bit tokens, base64url without padding
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
PROMPTS = [("rcgate user name: ", True), ("Password: ", False), ("Verification code: ", False)]
READ_BYTES = 64 * 1024

CheckFactors = Callable[[str, str, str, str], Awaitable[User]]
"""``(user name, password, code, remote) -> User``; raises a GatewayError when refused."""
RedeemLink = Callable[[str, User, str], Awaitable[Link]]
"""``(token, user, remote) -> Link``; raises a GatewayError when refused."""


def looks_like_link_token(username: str) -> bool:
    """Decided by shape alone, so the offered methods never reveal whether a user exists."""
    return len(username) == LINK_TOKEN_CHARS and set(username) <= _TOKEN_ALPHABET


@dataclass(frozen=True, slots=True)
class ViewerGrant:
    user: User
    link: Link


async def authenticate_viewer(
    token: str, responses: Sequence[str], check: CheckFactors, redeem: RedeemLink, remote: str
) -> ViewerGrant | None:
    """The kbdint answers → a redeemed link for a freshly authenticated user, or None."""
    if len(responses) != len(PROMPTS):
        return None
    name, password, code = (r.strip() if i != 1 else r for i, r in enumerate(responses))
    try:
        user = await check(name, password, code, remote)
        link = await redeem(token, user, remote)
    except GatewayError as exc:
        log.info("ssh viewer refused from %s: %s", remote, exc.code)
        return None
    return ViewerGrant(user, link)


async def _pump_out(stream: ParticipantStream, stdout: asyncssh.SSHWriter[bytes]) -> str:
    while True:
        try:
            frame = await stream.next()
        except StreamClosed:
            return stream.closed_reason or "closed"
        if isinstance(frame, Output):
            stdout.write(frame.data)
            await stdout.drain()
        elif isinstance(frame, Control) and frame.kind == "refused":
            stdout.write(b"\r\n\x1b[7m[rcgate] view-only: your input was not sent\x1b[0m\r\n")
        elif isinstance(frame, Control) and frame.kind == "closed":
            return str(frame.message.get("reason") or "closed")


async def _pump_in(stream: ParticipantStream, stdin: asyncssh.SSHReader[bytes]) -> None:
    while True:
        try:
            data = await stdin.read(READ_BYTES)
        except asyncssh.TerminalSizeChanged as change:
            with contextlib.suppress(GatewayError):
                await stream.resize(change.width, change.height)
            continue
        except asyncssh.BreakReceived:
            continue
        if not data:
            return
        try:
            stream.touch()
            await stream.send_input(data)
        except StreamClosed:
            return
        except GatewayError:
            continue


async def serve_viewer(
    grant: ViewerGrant,
    hub: ParticipantHub,
    stdin: asyncssh.SSHReader[bytes],
    stdout: asyncssh.SSHWriter[bytes],
) -> None:
    """Attach the participant (view-only over SSH) and relay until the session or viewer ends."""
    try:
        stream = await hub.attach(grant.link.session_id, grant.user.id, grant.user.name, Mode.VIEW_ONLY)
    except GatewayError as exc:
        stdout.write(f"rcgate: cannot join: {exc.message}\r\n".encode())
        exit_channel(stdout, 1)
        return
    stdout.write(f"\x1b[7m[rcgate] joined as {grant.user.name}: view only\x1b[0m\r\n".encode())
    out = asyncio.ensure_future(_pump_out(stream, stdout))
    inbound = asyncio.ensure_future(_pump_in(stream, stdin))
    reason = "closed"
    try:
        done, _ = await asyncio.wait({out, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if out in done and out.exception() is None:
            reason = out.result()
    finally:
        for t in (out, inbound):
            t.cancel()
        for t in (out, inbound):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        stream.close()
    with contextlib.suppress(OSError, asyncssh.Error):
        stdout.write(f"\r\n\x1b[7m[rcgate] disconnected: {reason}\x1b[0m\r\n".encode())
        exit_channel(stdout, 0)
