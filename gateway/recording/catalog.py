"""The reviewer's view of the recordings folder (the web workbench's back end, no HTTP here).

``Catalog`` lists recordings with what a reviewer filters and sorts on (owner, host, labels,
start, duration, size, participants, modes, and counts of joins, approvals, denials,
refusals, tool calls, redactions taken from the audit stream), and for one recording gives its
verification (``archive.verify_data``), its audit stream, its ``.cast`` for the player, an
export bundle (``archive.export_bundle``) and full-text search (``search.Searcher``).

A list entry is computed from the header line, the tail of the ``.cast`` (duration), the last
checkpoint of the ``.chain`` (finished or not) and the ``.audit.jsonl`` (counts), and cached
until one of those files changes size or mtime; verification results are cached the same way.
Every method does file I/O: the HTTP layer runs them in a worker thread.

A recording is **live** when it has no final checkpoint and its session is live on this node
(``live_ids``) or one of its files changed in the last ``archive.LIVE_QUIET_S`` seconds.
Everything returned comes from terminals and users: the web page renders it as text only.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.errors import Conflict, Unavailable
from gateway.recording import archive
from gateway.recording.asciicast import CastFormatError, Header, parse_header
from gateway.recording.chain import Report, exit_code_of, fingerprint
from gateway.recording.markers import AUDIT_LIMIT, COUNTED, AuditFacts, read_audit
from gateway.recording.recorder import sidecars_of
from gateway.recording.retention import hold_of, hold_path_of
from gateway.recording.search import Searcher, SearchLimits, SearchResult
from gateway.recording.seekindex import CastSeeker, SeekIndex, SeekStart, seek_path_of

_TAIL_BYTES = 64 * 1024
_MAX_TAIL_BYTES = 8 * 1024 * 1024
_HEADER_MAX = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One recording as the list shows it."""

    id: str
    path: Path
    title: str
    owner: str
    host: str
    cwd: str
    command: tuple[str, ...]
    labels: dict[str, str]
    start: int | None
    duration: float | None
    size: int
    finished: bool
    end_reason: str | None
    mtime: float  # newest change of the cast or a sidecar
    counts: dict[str, int]
    participants: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    width: int = 80
    height: int = 24
    hold: dict[str, object] | None = None  # legal hold: reason, by, ts (retention keeps it)

    def is_live(self, live_ids: Iterable[str], now: float) -> bool:
        return not self.finished and (self.id in live_ids or now - self.mtime < archive.LIVE_QUIET_S)

    def to_dict(self, *, live: bool) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "owner": self.owner,
            "host": self.host,
            "cwd": self.cwd,
            "command": list(self.command),
            "labels": self.labels,
            "start": self.start,
            "duration": None if self.duration is None else round(self.duration, 3),
            "size": self.size,
            "finished": self.finished,
            "end_reason": self.end_reason,
            "live": live,
            "counts": self.counts,
            "participants": list(self.participants),
            "modes": list(self.modes),
            "width": self.width,
            "height": self.height,
            "hold": self.hold,
        }

    def haystack(self) -> str:
        parts = [self.id, self.title, self.owner, self.host, self.cwd, *self.command, *self.participants]
        parts += [f"{k}={v}" for k, v in self.labels.items()]
        return "\n".join(parts).casefold()


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters (all optional, combined with AND), sort key and page of ``Catalog.select``."""

    owner: str | None = None
    host: str | None = None
    label: str | None = None  # "key" or "key=value"
    start_from: float | None = None
    start_to: float | None = None
    text: str | None = None
    live: bool | None = None
    sort: str = "-start"
    limit: int = 50
    offset: int = 0


SORT_KEYS = ("start", "duration", "size", "owner", "host", "id", *COUNTED)


def _sort_value(entry: Entry, key: str) -> tuple[int, object]:
    if key in COUNTED:
        return 0, entry.counts.get(key, 0)
    value: object = getattr(entry, key)
    if value is None:
        return -1, 0  # unknown values sort before known ones (ascending)
    return 0, value.casefold() if isinstance(value, str) else value


def _matches(e: Entry, q: ListQuery, live: bool) -> bool:
    if q.owner and e.owner.casefold() != q.owner.casefold():
        return False
    if q.host and q.host.casefold() not in e.host.casefold():
        return False
    if q.label:
        key, sep, value = q.label.partition("=")
        if key not in e.labels or (sep and e.labels[key] != value):
            return False
    if q.start_from is not None and (e.start is None or e.start < q.start_from):
        return False
    if q.start_to is not None and (e.start is None or e.start > q.start_to):
        return False
    if q.text and q.text.casefold() not in e.haystack():
        return False
    return q.live is None or q.live == live


def _read_tail_time(path: Path, size: int) -> float | None:
    """The time of the last complete event line of a cast (read from its end)."""
    want = _TAIL_BYTES
    with path.open("rb") as f:
        while True:
            start = max(size - want, 0)
            f.seek(start)
            chunk = f.read(size - start)
            lines = chunk.split(b"\n")
            for line in reversed(lines[1 if start else 0 : -1]):  # whole lines, last first
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, list) and event and isinstance(event[0], int | float):
                        return float(event[0])
            if start == 0 or want >= _MAX_TAIL_BYTES:
                return None
            want *= 4


def _read_header(path: Path) -> Header | None:
    with path.open("rb") as f:
        first = f.readline(_HEADER_MAX)
    try:
        return parse_header(first.decode("utf-8"))
    except (CastFormatError, UnicodeDecodeError):
        return None


def verification_summary(reports: Sequence[Report]) -> dict[str, object]:
    """One verdict for the badge (``intact``, ``unsigned_tail``, or the worst outcome) and the reports."""
    code = exit_code_of(reports)
    worst = next((r for r in reports if r.tampered), None) or next(
        (r for r in reports if r.exit_code == code), reports[0]
    )
    state = {0: "intact", 2: "unsigned_tail"}.get(code, worst.outcome.value)
    return {
        "state": state,
        "exit_code": code,
        "stream": worst.stream,
        "message": worst.message,
        "line": worst.line,
        "verified_t": reports[0].verified_t,
        "key": reports[0].key_id,
        "reports": [r.to_dict() for r in reports],
    }


def _stat_key(cast_path: Path) -> tuple[tuple[int, int], ...]:
    keys = []
    for p in (cast_path, *sidecars_of(cast_path), hold_path_of(cast_path)):
        try:
            st = p.stat()
            keys.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            keys.append((-1, 0))
    return tuple(keys)


class Catalog:
    """See the module docstring. ``public_key`` verifies; ``index_dir`` holds search indexes."""

    def __init__(self, root: Path, public_key: Ed25519PublicKey | None, *, index_dir: Path) -> None:
        self.root = root
        self.public_key = public_key
        self.searcher = Searcher(index_dir)
        self._entries: dict[Path, tuple[tuple[tuple[int, int], ...], Entry]] = {}
        self._verified: dict[Path, tuple[tuple[tuple[tuple[int, int], ...], str], dict[str, object]]] = {}
        self._seek: dict[Path, tuple[tuple[int, int], SeekIndex]] = {}
        self._lock = threading.Lock()

    # --- list -------------------------------------------------------------------------------

    def _build(self, cast_path: Path, key: tuple[tuple[int, int], ...]) -> Entry:
        side = sidecars_of(cast_path)
        header = _read_header(cast_path)
        meta = header.rcgate if header is not None else None
        last = archive.last_checkpoint(side.chain.read_bytes() if side.chain.exists() else None)
        facts = AuditFacts()
        for record in read_audit(side.audit)[0]:
            facts.add(record)
        size = key[0][0]
        return Entry(
            id=cast_path.stem,
            path=cast_path,
            title=(header.title or "") if header is not None else "",
            owner=meta.owner_name if meta is not None else "?",
            host=meta.host if meta is not None else "?",
            cwd=meta.cwd if meta is not None else "",
            command=meta.command if meta is not None else (),
            labels=dict(meta.labels) if meta is not None else {},
            start=header.timestamp if header is not None else None,
            duration=_read_tail_time(cast_path, size) if size > 0 else None,
            size=size,
            finished=last is not None and last.final,
            end_reason=last.end if last is not None and last.final else None,
            mtime=max(ns for _, ns in key) / 1e9,
            counts=facts.counts,
            participants=tuple(facts.participants),
            modes=tuple(facts.modes),
            width=header.width if header is not None else 80,
            height=header.height if header is not None else 24,
            hold=hold.to_dict() if (hold := hold_of(cast_path)) is not None else None,
        )

    def _entry_for(self, cast_path: Path) -> Entry:
        key = _stat_key(cast_path)
        with self._lock:
            cached = self._entries.get(cast_path)
        if cached is not None and cached[0] == key:
            return cached[1]
        entry = self._build(cast_path, key)
        with self._lock:
            self._entries[cast_path] = (key, entry)
        return entry

    def entries(self) -> list[Entry]:
        """Every recording under the root (oldest month first)."""
        found: list[Entry] = []
        paths = set()
        for cast_path in archive.iter_recordings(self.root):
            paths.add(cast_path)
            with contextlib.suppress(FileNotFoundError):
                found.append(self._entry_for(cast_path))
        with self._lock:
            for gone in set(self._entries) - paths:
                del self._entries[gone]
        return found

    def select(
        self, query: ListQuery, live_ids: Iterable[str], now: float
    ) -> tuple[int, list[dict[str, object]]]:
        """The total that match ``query`` and the requested page, as JSON-ready dicts."""
        live_set = set(live_ids)
        rows = [(e, e.is_live(live_set, now)) for e in self.entries()]
        rows = [(e, live) for e, live in rows if _matches(e, query, live)]
        key = query.sort.lstrip("-")
        rows.sort(key=lambda row: (_sort_value(row[0], key), row[0].id), reverse=query.sort.startswith("-"))
        page = rows[query.offset : query.offset + query.limit]
        return len(rows), [e.to_dict(live=live) for e, live in page]

    def entry(self, recording_id: str) -> Entry:
        """One recording by id (``BadRequest`` for a bad id, ``NotFound`` if absent)."""
        return self._entry_for(archive.find_recording(self.root, recording_id))

    # --- one recording ----------------------------------------------------------------------

    def verification(self, recording_id: str) -> dict[str, object]:
        """The verification verdict of both streams (cached until a file changes)."""
        cast_path = archive.find_recording(self.root, recording_id)
        if self.public_key is None:
            return {"state": "no_key", "exit_code": None, "message": "no recording key to verify with"}
        key = (_stat_key(cast_path), fingerprint(self.public_key))
        with self._lock:
            cached = self._verified.get(cast_path)
        if cached is not None and cached[0] == key:
            return cached[1]
        summary = verification_summary(
            archive.verify_data(archive.read_recording(cast_path), self.public_key)
        )
        with self._lock:
            self._verified[cast_path] = (key, summary)
        return summary

    def audit(self, recording_id: str, limit: int = AUDIT_LIMIT) -> tuple[list[dict[str, object]], bool]:
        return read_audit(sidecars_of(archive.find_recording(self.root, recording_id)).audit, limit)

    def cast_bytes(self, recording_id: str) -> bytes:
        """The ``.cast`` up to its last complete line (a live one may end mid-line)."""
        data = archive.find_recording(self.root, recording_id).read_bytes()
        return data[: data.rfind(b"\n") + 1]

    def seek_index(self, cast_path: Path) -> SeekIndex:
        """The recording's seek index (cached until the ``.seek`` file changes; empty if none)."""
        path = seek_path_of(cast_path)
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            return SeekIndex((), ())
        with self._lock:
            cached = self._seek.get(cast_path)
        if cached is not None and cached[0] == key:
            return cached[1]
        index = SeekIndex.load(path)
        with self._lock:
            self._seek[cast_path] = (key, index)
            while len(self._seek) > 64:
                self._seek.pop(next(iter(self._seek)))
        return index

    def seek(self, recording_id: str, t: float) -> tuple[CastSeeker, SeekStart]:
        """Playback of a recording from time ``t``: where to start (a signed keyframe's screen and
        offset, or the start of the recording) and the reader of what follows."""
        cast_path = archive.find_recording(self.root, recording_id)
        seeker = CastSeeker(cast_path, self.public_key, self.seek_index(cast_path))
        return seeker, seeker.start(t)

    def export(self, recording_id: str, *, live: bool, now: float) -> tuple[bytes, list[Report]]:
        """A bundle (``.tar.gz`` bytes) and its verification; ``Conflict`` for a live recording."""
        cast_path = archive.find_recording(self.root, recording_id)
        if live:
            raise Conflict(
                f"recording {recording_id} is live: its session is still being recorded. "
                "Export it after the session ends."
            )
        if self.public_key is None:
            raise Unavailable("no recording key: the bundle could not be verified on another machine")
        with tempfile.TemporaryDirectory(prefix="rcgate-export-") as tmp:
            out = Path(tmp) / f"{recording_id}.tar.gz"
            reports = archive.export_bundle(cast_path, out, self.public_key, now=now, allow_unfinished=True)
            return out.read_bytes(), reports

    # --- search -----------------------------------------------------------------------------

    def search(self, query: str, recording_id: str | None, limits: SearchLimits) -> SearchResult:
        """Hits across every recording (newest first) or within one."""
        if recording_id is not None:
            return self.searcher.search([archive.find_recording(self.root, recording_id)], query, limits)
        entries = self.entries()
        self.searcher.prune(e.id for e in entries)
        entries.sort(key=lambda e: (e.start or 0, e.id), reverse=True)
        return self.searcher.search([e.path for e in entries], query, limits)

    def index_all(self, budget_s: float = 3600.0) -> int:
        """Build missing or stale search indexes, newest recording first; how many were built.

        Optional: searches build what they need. A gateway may run this in a worker thread at
        start so that the first search over a large archive need not wait for its indexes.
        """
        began, built = time.monotonic(), 0
        entries = sorted(self.entries(), key=lambda e: (e.start or 0, e.id), reverse=True)
        for e in entries:
            if time.monotonic() - began > budget_s:
                break
            with contextlib.suppress(FileNotFoundError):
                index, fresh = self.searcher.open_index(e.path)
                if index is not None:
                    index.close()
                built += int(fresh)
        return built
