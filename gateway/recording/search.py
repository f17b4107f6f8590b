"""Full-text search over recordings: what was shown and typed, escape sequences stripped.

The query is a plain substring, matched case-insensitively; it is never compiled as a regular
expression, so no query can make a search slow (``(a+)+$`` is six characters to find). It is at
most ``MAX_QUERY_CHARS`` long and holds no control characters (``check_query``).

Each recording is searched through its text index (``gateway.recording.textindex``), built
lazily by the first search that needs it and rebuilt when the ``.cast`` changed. The query is
folded like the index and found with ``mmap.find`` in the folded text (a C substring search,
GB/s); only a recording with a hit loads its time table, which gives each hit its time.

Bounds: ``SearchLimits.max_hits`` hits in all, ``per_recording`` per recording, ``time_s``
seconds of searching; building missing indexes has its own budget (``index_time_s``, not taken
from ``time_s``). What was left out is said (``truncated``, ``reason``, ``unindexed``), and the
next search picks up recordings that were not indexed in time.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import json
import mmap
import os
import re
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.errors import BadRequest
from gateway.recording.textindex import INDEX_VERSION, MAGIC, STREAMS, TEXT_BLOCK, build_index, fold

MAX_QUERY_CHARS = 256
SNIPPET_CHARS = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_query(query: str) -> str:
    """The query if it can be searched for; ``BadRequest`` with the reason otherwise."""
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"search text too long: {len(query)} characters, at most {MAX_QUERY_CHARS}")
    if not query.strip():
        raise BadRequest("search text is empty")
    if _CONTROL.search(query):
        raise BadRequest("search text must not contain control characters")
    return query


@dataclass(frozen=True, slots=True)
class Hit:
    """One match: where (recording, stream, seconds from the start) and a short context."""

    recording_id: str
    stream: str  # "o" shown, "i" typed, "m" marker
    t: float
    before: str
    match: str
    after: str

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.recording_id,
            "stream": self.stream,
            "t": round(self.t, 3),
            "snippet": {"before": self.before, "match": self.match, "after": self.after},
        }


@dataclass(frozen=True, slots=True)
class SearchLimits:
    max_hits: int = 100
    per_recording: int = 20
    time_s: float = 2.0
    index_time_s: float = 20.0


@dataclass(slots=True)
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    searched: int = 0  # recordings searched
    unindexed: int = 0  # recordings skipped: not indexed within the indexing budget
    indexed: int = 0  # indexes built by this search
    truncated: bool = False
    reason: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "hits": [h.to_dict() for h in self.hits],
            "searched": self.searched,
            "unindexed": self.unindexed,
            "indexed": self.indexed,
            "truncated": self.truncated,
            "reason": self.reason,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _snippet_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="ignore").replace("\n", " ⏎ ")


_Table = tuple["array.array[int]", "array.array[float]"]


_Entry = dict[str, list[int]]


class _OpenIndex:
    """A mapped index file of one recording (see ``textindex``)."""

    def __init__(self, mm: mmap.mmap | None, base: int, streams: dict[str, _Entry]) -> None:
        self.mm = mm
        self.base = base
        self.streams = streams

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()

    def _section(self, mm: mmap.mmap, where: list[int]) -> bytes:
        return mm[self.base + where[0] : self.base + where[0] + where[1]]

    def find(self, rid: str, needle: bytes, limit: int, deadline: float) -> list[Hit]:
        hits: list[Hit] = []
        if self.mm is None:
            return hits
        for name in STREAMS:
            entry = self.streams.get(name) or {}
            folded = entry.get("fold")
            if not folded:
                continue
            start = self.base + folded[0]
            end = start + folded[1]
            pos = self.mm.find(needle, start, end)
            table: _Table | None = None
            while pos >= 0 and len(hits) < limit and time.monotonic() < deadline:
                table = table or self._table(self.mm, entry)
                t = _time_at(table, pos - start + len(needle) - 1)
                hits.append(Hit(rid, name, t, *self._snippet(self.mm, entry, pos - start, len(needle))))
                pos = self.mm.find(needle, pos + len(needle), end)
        return hits

    def _table(self, mm: mmap.mmap, entry: _Entry) -> _Table:
        starts, times = array.array("q"), array.array("d")
        for arr, key in ((starts, "starts"), (times, "times")):
            if key in entry:
                arr.frombytes(self._section(mm, entry[key]))
        return starts, times

    def _original(self, mm: mmap.mmap, entry: _Entry, lo: int, hi: int) -> bytes:
        """Bytes ``lo:hi`` of the original text (decompressing only the blocks they are in)."""
        if "text_z" not in entry:
            return self._section(mm, entry["fold"])[lo:hi] if hi > lo else b""
        offsets = array.array("q")
        offsets.frombytes(self._section(mm, entry["text_blocks"]))
        first, last = lo // TEXT_BLOCK, max(hi - 1, lo) // TEXT_BLOCK
        z = entry["text_z"]
        data = b"".join(
            zlib.decompress(mm[self.base + z[0] + offsets[i] : self.base + z[0] + offsets[i + 1]])
            for i in range(first, min(last + 1, len(offsets) - 1))
        )
        return data[lo - first * TEXT_BLOCK : hi - first * TEXT_BLOCK]

    def _snippet(self, mm: mmap.mmap, entry: _Entry, rel: int, n: int) -> tuple[str, str, str]:
        """The match and up to ``SNIPPET_CHARS`` bytes of the original text on each side."""
        lo, hi = max(rel - SNIPPET_CHARS, 0), min(rel + n + SNIPPET_CHARS, entry["fold"][1])
        around = self._original(mm, entry, lo, hi)
        at, end = rel - lo, rel - lo + n
        return (
            _snippet_text(around[:at]),
            around[at:end].decode("utf-8", errors="replace"),
            _snippet_text(around[end:]),
        )


def _time_at(table: _Table, offset: int) -> float:
    """The time of the group that holds byte ``offset`` of the text (when it was on screen)."""
    starts, times = table
    group = max(bisect.bisect_right(starts, offset) - 1, 0)
    return times[group] if times else 0.0


def _open_index(path: Path, cast_stat: os.stat_result) -> _OpenIndex | None:
    """The index if it exists and matches the cast's size and mtime; None if it must be built."""
    try:
        with path.open("rb") as f:
            head = f.read(len(MAGIC) + 8)
            if len(head) < len(MAGIC) + 8 or not head.startswith(MAGIC):
                return None
            n = int.from_bytes(head[len(MAGIC) :], "little")
            header = json.loads(f.read(n))
            current = (
                isinstance(header, dict)
                and header.get("v") == INDEX_VERSION
                and header.get("size") == cast_stat.st_size
                and header.get("mtime_ns") == cast_stat.st_mtime_ns
            )
            if not current:
                return None
            streams = header.get("streams") or {}
            if os.fstat(f.fileno()).st_size == len(head) + n:  # nothing to search
                return _OpenIndex(None, 0, streams)
            return _OpenIndex(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), len(head) + n, streams)
    except (FileNotFoundError, ValueError):
        return None


class Searcher:
    """Searches recordings through their indexes in ``index_dir`` (thread-safe)."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def index_path(self, recording_id: str) -> Path:
        return self.index_dir / f"{recording_id}.idx"

    def _lock(self, rid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(rid, threading.Lock())

    def open_index(self, cast_path: Path) -> tuple[_OpenIndex | None, bool]:
        """The current index of ``cast_path``, building it first if needed (and whether it did)."""
        rid = cast_path.stem
        path = self.index_path(rid)
        with self._lock(rid):
            index = _open_index(path, cast_path.stat())
            if index is not None:
                return index, False
            build_index(cast_path, path)
            return _open_index(path, cast_path.stat()), True  # None: the cast grew meanwhile

    def prune(self, keep: Iterable[str]) -> None:
        """Delete the indexes of recordings that no longer exist (retention, deletion)."""
        wanted = {f"{rid}.idx" for rid in keep}
        with contextlib.suppress(FileNotFoundError):
            for p in self.index_dir.iterdir():
                if p.suffix == ".idx" and p.name not in wanted:
                    p.unlink(missing_ok=True)

    def search(self, casts: Iterable[Path], query: str, limits: SearchLimits | None = None) -> SearchResult:
        """Hits for ``query`` (see ``check_query``) in ``casts``, in the order given."""
        limits = limits or SearchLimits()
        needle = fold(check_query(query)).encode("utf-8")
        began = time.monotonic()
        building = 0.0  # seconds spent building indexes: not taken from the search budget
        result = SearchResult()
        for cast_path in casts:
            if time.monotonic() - began - building > limits.time_s:
                result.truncated, result.reason = True, "time"
                break
            rid = cast_path.stem
            try:
                index = _open_index(self.index_path(rid), cast_path.stat())
                if index is None:
                    if building >= limits.index_time_s:
                        result.unindexed += 1
                        continue
                    t0 = time.monotonic()
                    index, built = self.open_index(cast_path)
                    building += time.monotonic() - t0
                    result.indexed += int(built)
            except FileNotFoundError:
                continue  # deleted meanwhile
            if index is None:  # the cast changed while it was indexed (live): next time
                result.unindexed += 1
                continue
            try:
                left = min(limits.max_hits - len(result.hits), limits.per_recording)
                deadline = began + building + limits.time_s
                result.hits.extend(index.find(rid, needle, left, deadline))
            finally:
                index.close()
            result.searched += 1
            if len(result.hits) >= limits.max_hits:
                result.truncated, result.reason = True, "hits"
                break
        if result.unindexed and not result.truncated:
            result.truncated, result.reason = True, "indexing"
        result.elapsed_s = time.monotonic() - began
        return result
