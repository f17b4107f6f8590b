"""Reviewer workbench API: list, inspect, replay, search and export recordings.

Every route needs the role ``reviewer`` or ``admin``. Ids are checked against ``recorder.SAFE_ID``
(letters, digits, ``_``, ``-``) before any file is touched: ``..``, ``a.b`` or an encoded
``../x`` is a 400. All file work runs in a worker thread (``asyncio.to_thread``).

Wiring (``gateway/httpd/server.py``): ``routes_recordings.routes`` in ``API_TABLES``, and
``app[RECORDINGS] = Catalog(recordings_dir, recording_public_key, index_dir=...)``.

Reading a recording's content (its ``.cast``, an export) and searching are audited
(``recording.viewed``, ``recording.exported``, ``recording.searched``; never the query text,
which may hold what a reviewer suspects is a secret).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time

from aiohttp import web

from gateway.core.errors import BadRequest
from gateway.core.models import Role
from gateway.httpd.context import HUB, IDENTITY, json_response, remote_of, require_role
from gateway.httpd.openapi import RouteTable
from gateway.recording.catalog import SORT_KEYS, Catalog, ListQuery
from gateway.recording.recorder import SAFE_ID
from gateway.recording.search import MAX_QUERY_CHARS, SearchLimits

RECORDINGS = web.AppKey("recordings", Catalog)
CAST_TYPE = "application/x-asciicast"
MAX_PAGE = 200
MAX_HITS = 500
MAX_AUDIT = 20_000
MAX_PARAM_CHARS = 200

routes = RouteTable()


def _catalog(request: web.Request) -> Catalog:
    catalog = request.app.get(RECORDINGS)
    if catalog is None:
        raise web.HTTPNotFound()
    return catalog


def _live_ids(request: web.Request) -> set[str]:
    hub = request.app.get(HUB)
    return {str(s.session_id) for s in hub.sessions()} if hub is not None else set()


def _param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_PARAM_CHARS:
        raise BadRequest(f"{name}: at most {MAX_PARAM_CHARS} characters")
    return value


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = _param(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: not a whole number: {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name}: must be between {lo} and {hi}")
    return value


def _time(request: web.Request, name: str, *, end_of_day: bool = False) -> float | None:
    """Unix seconds, or an ISO 8601 date or date-time (UTC unless it says otherwise)."""
    raw = _param(request, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        if len(raw) == 10:  # a date: the whole day
            day = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), tzinfo=dt.UTC)
            return day.timestamp() + (86_399 if end_of_day else 0)
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected unix seconds or an ISO 8601 date, got {raw[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _check_id(text: str) -> str:
    if not SAFE_ID.fullmatch(text):
        raise BadRequest(f"not a recording id: {text[:80]!r} (ids are letters, digits, '_' and '-')")
    return text


def _recording_id(request: web.Request) -> str:
    return _check_id(request.match_info["id"])


def _reviewer(request: web.Request) -> str:
    return require_role(request, Role.REVIEWER, Role.ADMIN).user.id


@routes.add("GET", "/api/recordings", "Recordings with filters, sort and paging (reviewer, admin)")
async def list_recordings(request: web.Request) -> web.StreamResponse:
    _reviewer(request)
    sort = _param(request, "sort") or "-start"
    if sort.lstrip("-") not in SORT_KEYS:
        raise BadRequest(f"sort: one of {', '.join(SORT_KEYS)} (prefix '-' for descending)")
    live = _param(request, "live")
    if live not in (None, "true", "false"):
        raise BadRequest("live: true or false")
    query = ListQuery(
        owner=_param(request, "owner"),
        host=_param(request, "host"),
        label=_param(request, "label"),
        start_from=_time(request, "from"),
        start_to=_time(request, "to", end_of_day=True),
        text=_param(request, "text"),
        live=None if live is None else live == "true",
        sort=sort,
        limit=_int(request, "limit", 50, 1, MAX_PAGE),
        offset=_int(request, "offset", 0, 0, 10**9),
    )
    total, items = await asyncio.to_thread(_catalog(request).select, query, _live_ids(request), time.time())
    return json_response(
        {"total": total, "offset": query.offset, "limit": query.limit, "sort": sort, "recordings": items}
    )


@routes.add("GET", "/api/recordings/{id}", "One recording: metadata and verification (reviewer, admin)")
async def get_recording(request: web.Request) -> web.StreamResponse:
    _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    entry = await asyncio.to_thread(catalog.entry, rid)
    verification = await asyncio.to_thread(catalog.verification, rid)
    live = entry.is_live(_live_ids(request), time.time())
    return json_response({**entry.to_dict(live=live), "verification": verification})


def _seconds(request: web.Request, name: str) -> float | None:
    raw = _param(request, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}: seconds, not {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"{name}: a number of seconds >= 0")
    return value


async def _cast_from(
    request: web.Request, who: str, rid: str, start_t: float, until: float | None
) -> web.StreamResponse:
    """The recording from ``start_t`` through its seek index: a keyframe's screen, then what follows.

    The first line is the header (with ``rcgate_seek.from``: the keyframe's time; event times
    count from it), the second the screen snapshot; header ``X-Rcgate-Seek-From`` says the same.
    """
    seeker, start = await asyncio.to_thread(_catalog(request).seek, rid, start_t)
    base = start.base_t
    await request.app[IDENTITY].audit(
        "recording.viewed", actor=who, subject=rid, outcome="ok", remote=remote_of(request),
        start=round(start_t, 3), keyframe=round(base, 3),
    )  # fmt: skip
    response = web.StreamResponse(
        headers={
            "Content-Type": CAST_TYPE,
            "Cache-Control": "no-store",
            "Content-Disposition": "inline",
            "X-Rcgate-Seek-From": f"{base:.6f}",
        }
    )
    await response.prepare(request)
    chunks = seeker.chunks(start, until)
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await response.write(chunk)
    finally:
        chunks.close()
    await response.write_eof()
    return response


@routes.add("GET", "/api/recordings/{id}/cast", "The asciicast v2 file, for the player (reviewer, admin)")
async def get_cast(request: web.Request) -> web.StreamResponse:
    who = _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    start_t = _seconds(request, "from")
    if start_t is not None:
        return await _cast_from(request, who, rid, start_t, _seconds(request, "to"))
    data = await asyncio.to_thread(catalog.cast_bytes, rid)
    await request.app[IDENTITY].audit(
        "recording.viewed", actor=who, subject=rid, outcome="ok", remote=remote_of(request), bytes=len(data)
    )
    return web.Response(
        body=data,
        headers={"Content-Type": CAST_TYPE, "Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


@routes.add(
    "GET", "/api/recordings/{id}/audit", "The session's audit stream: markers and events (reviewer, admin)"
)
async def get_audit(request: web.Request) -> web.StreamResponse:
    _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    limit = _int(request, "limit", MAX_AUDIT, 1, MAX_AUDIT)
    records, truncated = await asyncio.to_thread(catalog.audit, rid, limit)
    return json_response({"id": rid, "events": records, "truncated": truncated})


@routes.add(
    "GET", "/api/recordings/{id}/export", "A bundle that verifies offline; 409 while live (reviewer, admin)"
)
async def get_export(request: web.Request) -> web.StreamResponse:
    who = _reviewer(request)
    rid, catalog = _recording_id(request), _catalog(request)
    entry = await asyncio.to_thread(catalog.entry, rid)
    live = entry.is_live(_live_ids(request), time.time())
    data, reports = await asyncio.to_thread(catalog.export, rid, live=live, now=time.time())
    state = {0: "intact", 2: "unsigned_tail"}.get(max(r.exit_code for r in reports), "tampered")
    await request.app[IDENTITY].audit(
        "recording.exported", actor=who, subject=rid, outcome="ok", remote=remote_of(request), state=state
    )
    return web.Response(
        body=data,
        headers={
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{rid}.tar.gz"',
            "Cache-Control": "no-store",
            "X-Rcgate-Verification": state,
        },
    )


@routes.add("GET", "/api/search", "Full-text search over what was shown and typed (reviewer, admin)")
async def search(request: web.Request) -> web.StreamResponse:
    who = _reviewer(request)
    query = request.query.get("q", "")
    if len(query) > MAX_QUERY_CHARS:  # before anything else: never echo or process a huge query
        raise BadRequest(f"search text too long: {len(query)} characters, at most {MAX_QUERY_CHARS}")
    rid = _param(request, "id")
    if rid is not None:
        _check_id(rid)
    limits = SearchLimits(max_hits=_int(request, "limit", 100, 1, MAX_HITS))
    result = await asyncio.to_thread(_catalog(request).search, query, rid, limits)
    await request.app[IDENTITY].audit(
        "recording.searched", actor=who, subject=rid, outcome="ok", remote=remote_of(request),
        chars=len(query), hits=len(result.hits),
    )  # fmt: skip
    return json_response({"query": query, "id": rid, **result.to_dict()})
