"""The browser terminal relay: one WebSocket per participant, bridged to its ParticipantStream.

Wire (docs/protocol.md):
- server → browser, binary: ``seq:u64be`` + terminal bytes (``seq`` = offset of the first byte);
  text: JSON control ``{"t": "hello"|"participants"|"resize"|"refused"|"lost"|"closed"|"error", ...}``.
- browser → server, text: ``{"t": "in", "d": str}`` (keys), ``{"t": "submit", "text": str}`` (the
  composer of approved execution: one action), ``{"t": "request_mode", "mode", "reason"}``,
  ``{"t": "resize", "cols", "rows"}``,
  ``{"t": "ping"}``; binary: raw input bytes. The first browser message may be
  ``{"t": "hello", "v": 1, "resume_from": int|null}``; the stream is attached after it.

The gateway decides: every input goes to the broker, which refuses and counts it in view-only.
Oversized frames close the socket (1009); malformed messages are answered with an ``error``
control and, past ``MAX_BAD_MESSAGES``, close it with 4400.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from gateway.core.errors import GatewayError
from gateway.core.modes import Mode
from gateway.policy import Actor
from gateway.sessions.ports import Control, Output, ParticipantStream, StreamClosed

log = logging.getLogger("rcgate.ws")

RefreshActor = Callable[[], Awaitable["Actor | None"]]
"""The participant's current factor state (re-read from the login session, after a step-up)."""

MAX_MESSAGE_BYTES = 64 * 1024  # one paste or one control message
MAX_BAD_MESSAGES = 20
HELLO_TIMEOUT_S = 10.0
HEARTBEAT_S = 20.0
PROTOCOL_VERSION = 1
_SEQ = struct.Struct(">Q")

CLOSE_POLICY = 4403  # participant removed / session ended (4000 + HTTP-like status)
CLOSE_BAD = 4400


def _close_code(reason: str) -> int:
    return CLOSE_POLICY if reason else 1000


async def _pump_out(ws: web.WebSocketResponse, stream: ParticipantStream) -> str:
    """Frames from the broker to the browser until the stream closes; returns the reason."""
    while True:
        try:
            frame = await stream.next()
        except StreamClosed:
            return stream.closed_reason or "closed"
        if isinstance(frame, Output):
            await ws.send_bytes(_SEQ.pack(frame.seq) + frame.data)
        elif isinstance(frame, Control):
            await ws.send_str(json.dumps(frame.message))
            if frame.kind == "closed":
                return str(frame.message.get("reason", "closed"))


def _parse(text: str) -> dict[str, Any]:
    msg = json.loads(text)
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise ValueError("a control message is a JSON object with a string field t")
    return msg


async def _pump_in(
    ws: web.WebSocketResponse, stream: ParticipantStream, refresh_actor: RefreshActor | None
) -> None:
    bad = 0
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            stream.touch()
            await stream.send_input(bytes(msg.data))
            continue
        if msg.type != WSMsgType.TEXT:
            break
        try:
            m = _parse(msg.data)
            kind = m["t"]
            if kind == "in":
                data = m.get("d")
                if not isinstance(data, str):
                    raise ValueError("in.d must be a string")
                stream.touch()
                await stream.send_input(data.encode())
            elif kind == "submit":
                text = m.get("text")
                if not isinstance(text, str):
                    raise ValueError("submit.text must be a string")
                stream.touch()
                await stream.submit(text)
            elif kind == "request_mode":
                try:
                    wanted = Mode(str(m.get("mode")))
                except ValueError:
                    raise ValueError(
                        "request_mode.mode must be view_only, approved_execution or privileged"
                    ) from None
                reason = m.get("reason", "")
                actor = await refresh_actor() if refresh_actor is not None else None
                await stream.request_mode(wanted, reason if isinstance(reason, str) else "", actor=actor)
            elif kind == "resize":
                cols, rows = m.get("cols"), m.get("rows")
                if not isinstance(cols, int) or not isinstance(rows, int):
                    raise ValueError("resize needs integer cols and rows")
                await stream.resize(cols, rows)
            elif kind == "ping":
                # A keep-alive is not activity: an open but unattended tab still reaches the
                # participant idle timeout.
                await ws.send_str('{"t":"pong"}')
            elif kind == "hello":
                continue
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except StreamClosed:
            break
        except (ValueError, json.JSONDecodeError, GatewayError) as exc:
            bad += 1
            message = exc.message if isinstance(exc, GatewayError) else str(exc)
            await ws.send_str(json.dumps({"t": "error", "message": message[:200]}))
            if bad > MAX_BAD_MESSAGES:
                await ws.close(code=CLOSE_BAD, message=b"too many malformed messages")
                break


async def read_hello(ws: web.WebSocketResponse) -> int | None:
    """The browser's first message: which output offset to resume from (None: a fresh join)."""
    try:
        msg = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
    except TimeoutError:
        return None
    if msg.type != WSMsgType.TEXT:
        return None
    try:
        m = _parse(msg.data)
    except ValueError:
        return None
    resume = m.get("resume_from") if m.get("t") == "hello" else None
    return resume if isinstance(resume, int) and resume >= 0 else None


async def relay(
    ws: web.WebSocketResponse, stream: ParticipantStream, refresh_actor: RefreshActor | None = None
) -> None:
    """Run both directions until either ends; close the socket with the reason."""
    out = asyncio.ensure_future(_pump_out(ws, stream))
    inbound = asyncio.ensure_future(_pump_in(ws, stream, refresh_actor))
    try:
        done, _ = await asyncio.wait({out, inbound}, return_when=asyncio.FIRST_COMPLETED)
        reason = out.result() if out in done and not out.cancelled() and out.exception() is None else ""
    finally:
        for t in (out, inbound):
            t.cancel()
        for t in (out, inbound):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        stream.close()
    if not ws.closed:
        await ws.close(code=_close_code(reason), message=reason.encode()[:120])
