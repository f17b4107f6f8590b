"""Following a recording as it is written: Server-Sent Events for the replay page (reviewer, admin).

Two streams per recording, both read from the files the recorder writes and flushes (it is at
most about ``recorder.BATCH_WINDOW_S`` behind the session), so they work on any node that sees
the recordings folder and need nothing from the session itself:

* ``GET /api/recordings/{id}/live``: the ``.cast`` in the form of asciinema-player's
  ``eventsource`` driver. The first message is a reset ``{"cols", "rows", "time"}`` (the
  header's size, the recording's current length), then every output and resize event from the
  start of the recording, then each new one as it is written:
  ``[t, "o", text]`` and ``[t, "r", {"cols", "rows"}]`` (input and markers are not sent: the
  page's audit timeline shows markers). A reconnect starts again with a reset.
* ``GET /api/recordings/{id}/audit/live``: the audit stream for the timeline: an ``event: reset``
  (the page clears its list), then each record as ``GET /api/recordings/{id}/audit`` gives it
  (with its ``kind``), as ``event: audit``.

Both end with ``event: done`` once the recording is finished (its ``end:`` marker is written,
or on a check every ``CHECK_S`` while quiet: a final checkpoint, or no longer live, as the list
decides). Only complete lines are sent; each one is parsed and encoded again, so a line of the
file never becomes more than one ``data:`` line. A follower stops when the browser goes away, when
its login ends or loses the reviewer role (checked every ``REAUTH_S``), when the file shrinks or
is removed, and when the gateway shuts down (``install`` registers that). Opening the ``.cast``
stream is audited like the cast route (``recording.viewed``, ``live: true``).

Wiring (``gateway/httpd/server.py``): ``routes`` in ``API_TABLES`` and ``install(app)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from gateway.core.errors import NotFound, Unauthenticated, Unavailable
from gateway.core.models import Role
from gateway.httpd.context import HUB, IDENTITY, SESSION_COOKIE, remote_of
from gateway.httpd.middleware import SECURITY_HEADERS
from gateway.httpd.openapi import RouteTable
from gateway.httpd.routes_recordings import _catalog, _recording_id, _reviewer
from gateway.recording.asciicast import CastFormatError, parse_resize
from gateway.recording.markers import event_kind
from gateway.recording.recorder import sidecars_of

routes = RouteTable()

POLL_S = 0.2  # how often a follower looks for new lines (the recorder batches for 0.2 s)
CHECK_S = 2.0  # while quiet: is the recording finished, or no longer live?
REAUTH_S = 30.0  # the follower's login and role are checked again this often
HEARTBEAT_S = 15.0  # an SSE comment while nothing else is sent
RETRY_MS = 2000  # the browser's EventSource reconnects after this
READ_BYTES = 1024 * 1024  # one read of the file
MAX_LINE_BYTES = 64 * 1024 * 1024  # a partial line longer than this: not a recording, stop
MAX_FOLLOWERS = 256  # streams open at once on this node

Convert = Callable[[list[bytes]], tuple[bytes, bool]]
"""Complete lines of the file -> SSE bytes to send, and whether the recording's end was seen."""


class Followers:
    """The live streams of one app: counted, and told to stop when the gateway shuts down."""

    def __init__(self) -> None:
        self.open = 0
        self.stopping = asyncio.Event()


FOLLOWERS = web.AppKey("recording_followers", Followers)


def install(app: web.Application) -> None:
    """Registers the followers and their stop at shutdown (before aiohttp waits for handlers)."""
    app[FOLLOWERS] = Followers()
    app.on_shutdown.append(_stop_followers)


async def _stop_followers(app: web.Application) -> None:
    app[FOLLOWERS].stopping.set()


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


DONE = _sse({}, "done")


class _Tail:
    """The complete lines appended to a file, from its first byte (file work: a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.behind = False  # the last read stopped short of the end of the file

    def read(self) -> list[bytes]:
        """New complete lines (at most about ``READ_BYTES``); ``OSError`` if the file shrank."""
        with self.path.open("rb") as f:
            size = f.seek(0, 2)
            if size < self.offset:
                raise OSError(f"{self.path.name} shrank from {self.offset} to {size} bytes")
            f.seek(self.offset)
            data = f.read(READ_BYTES)
        self.offset += len(data)
        self.behind = self.offset < size
        *lines, self.partial = (self.partial + data).split(b"\n")
        if len(self.partial) > MAX_LINE_BYTES:
            raise OSError(f"{self.path.name}: a line longer than {MAX_LINE_BYTES} bytes")
        return lines


def _json(line: bytes) -> object:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _resize(text: str) -> dict[str, int] | None:
    try:
        cols, rows = parse_resize(text)
    except CastFormatError:
        return None
    if 0 < cols <= 10_000 and 0 < rows <= 10_000:
        return {"cols": cols, "rows": rows}
    return None


def cast_events(lines: list[bytes], *, skip_header: bool) -> tuple[bytes, bool]:
    """Player messages for lines of a ``.cast`` (the header line skipped when it is among them)."""
    out: list[bytes] = []
    ended = False
    for i, line in enumerate(lines):
        if skip_header and i == 0:
            continue
        ev = _json(line)
        if not (isinstance(ev, list) and len(ev) == 3 and isinstance(ev[1], str) and isinstance(ev[2], str)):
            continue
        t = ev[0]
        if isinstance(t, bool) or not isinstance(t, int | float):
            continue
        if ev[1] == "o":
            out.append(_sse([t, "o", ev[2]]))
        elif ev[1] == "r" and (size := _resize(ev[2])) is not None:
            out.append(_sse([t, "r", size]))
        elif ev[1] == "m" and ev[2].startswith("end: "):
            ended = True  # the recorder's last line
    return b"".join(out), ended


def audit_events(lines: list[bytes]) -> tuple[bytes, bool]:
    """Timeline records for lines of an ``.audit.jsonl`` (the rules of ``markers.read_audit``)."""
    out: list[bytes] = []
    ended = False
    for line in lines:
        obj = _json(line)
        if not isinstance(obj, dict) or "rcgate_audit" in obj:
            continue
        t = obj.get("t")
        if isinstance(t, bool) or not isinstance(t, int | float):
            continue
        record = {**obj, "kind": event_kind(obj)}
        out.append(_sse(record, "audit"))
        ended = ended or record["kind"] == "end"
    return b"".join(out), ended


def _live_ids(request: web.Request) -> set[str]:
    hub = request.app.get(HUB)
    return {str(s.session_id) for s in hub.sessions()} if hub is not None else set()


async def _still_allowed(request: web.Request) -> bool:
    try:
        who = await request.app[IDENTITY].authenticate(request.cookies.get(SESSION_COOKIE))
    except Unauthenticated:
        return False
    return who.user.role in (Role.REVIEWER, Role.ADMIN)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _follow(
    request: web.Request, rid: str, path: Path, first: bytes, convert: Convert
) -> web.StreamResponse:
    """Send ``first``, then every complete line of ``path`` converted, until the recording ends."""
    followers = request.app.get(FOLLOWERS)
    if followers is not None and followers.open >= MAX_FOLLOWERS:
        raise Unavailable("too many recordings are being followed on this node; try again later")
    catalog = _catalog(request)
    resp = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    tail = _Tail(path)
    loop = asyncio.get_running_loop()
    stopping = followers.stopping if followers is not None else asyncio.Event()
    if followers is not None:
        followers.open += 1
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {RETRY_MS}\n\n".encode() + first)
        now = loop.time()
        sent_at = checked_at = authed_at = now
        while not stopping.is_set() and not _gone(request):
            try:
                lines = await asyncio.to_thread(tail.read)
            except OSError:
                break  # removed (retention), shrunk or garbled: nothing more to follow
            data, ended = convert(lines)
            if data:
                await resp.write(data)
                sent_at = loop.time()
            if ended:
                await resp.write(DONE)
                break
            if tail.behind:
                continue  # a backlog: read on at once
            now = loop.time()
            if now - authed_at >= REAUTH_S:
                if not await _still_allowed(request):
                    break
                authed_at = now
            if not lines and now - checked_at >= CHECK_S:
                checked_at = now
                entry = await asyncio.to_thread(catalog.entry, rid)
                if entry.finished or not entry.is_live(_live_ids(request), time.time()):
                    with contextlib.suppress(OSError):  # what came since the last read
                        await resp.write(convert(await asyncio.to_thread(tail.read))[0])
                    await resp.write(DONE)
                    break
            if now - sent_at >= HEARTBEAT_S:
                await resp.write(b": heartbeat\n\n")
                sent_at = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL_S)
    except (ConnectionError, NotFound):
        pass  # the browser went away, or the recording did
    finally:
        if followers is not None:
            followers.open -= 1
    return resp


@routes.add(
    "GET",
    "/api/recordings/{id}/live",
    "Follow a recording as it is written: asciinema-player eventsource messages (reviewer, admin)",
)
async def get_live_cast(request: web.Request) -> web.StreamResponse:
    who = _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    entry = await asyncio.to_thread(catalog.entry, rid)
    await request.app[IDENTITY].audit(
        "recording.viewed", actor=who, subject=rid, outcome="ok", remote=remote_of(request), live=True
    )
    reset = _sse({"cols": entry.width, "rows": entry.height, "time": round(entry.duration or 0.0, 6)})
    header_pending = True

    def convert(lines: list[bytes]) -> tuple[bytes, bool]:
        nonlocal header_pending
        skip, header_pending = header_pending and bool(lines), header_pending and not lines
        return cast_events(lines, skip_header=skip)

    return await _follow(request, rid, entry.path, reset, convert)


@routes.add(
    "GET",
    "/api/recordings/{id}/audit/live",
    "Follow a recording's audit stream as it is written: timeline records (reviewer, admin)",
)
async def get_live_audit(request: web.Request) -> web.StreamResponse:
    _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    entry = await asyncio.to_thread(catalog.entry, rid)
    return await _follow(request, rid, sidecars_of(entry.path).audit, _sse({}, "reset"), audit_events)
