"""Retention of recordings: legal holds, and deleting what is older than ``recordings.retain_days``.

A **hold** is a sidecar ``<id>.hold`` beside the ``.cast`` (JSON: ``reason``, ``by``, ``ts``;
mode 0600). A held recording is never deleted by retention. ``hold`` refuses a recording that
does not exist; ``release`` deletes the sidecar.

**Age**: a recording's age is counted from the later of its last signed checkpoint's wall
clock (``ts``: when the session ended, for a finished one) and the newest change of its
``.cast``, ``.chain``, ``.audit.jsonl`` or ``.audit.chain``, so copying a recording back from a
backup never makes it expire sooner (a hold or a rebuilt seek index does not count).

**Prune** (``prune``) deletes every recording whose age is over ``retain_days``, except one
that is held, or live (no final checkpoint and its session is live on this node or one of its
files changed within ``archive.LIVE_QUIET_S`` seconds). Each deletion removes the ``.cast``
first (so a half-deleted recording no longer lists), then every sidecar (``.chain``,
``.audit.jsonl``, ``.audit.chain``, ``.seek``) and the search index, then the month folder if
it is empty; then it is reported to ``audit`` (``recording.deleted``) before the next one. The
hold and the liveness are checked again right before each deletion.

The gateway runs ``prune`` periodically in a worker thread (``app``); ``rcgate recordings
prune`` runs it once. Both audit into the gateway's audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import NotFound
from gateway.recording import archive
from gateway.recording.recorder import sidecars_of
from gateway.recording.seekindex import seek_path_of

HOLD_SUFFIX = ".hold"
DAY_S = 86_400.0
MAX_HOLD_REASON = 500

# (type, subject, outcome, detail): how retention reports to the gateway's audit log.
AuditSink = Callable[[str, str, str, dict[str, str | int | float | bool | None]], None]


def hold_path_of(cast_path: Path) -> Path:
    return cast_path.with_name(cast_path.name.removesuffix(".cast") + HOLD_SUFFIX)


def files_of(cast_path: Path) -> list[Path]:
    """Every file of a recording beside its ``.cast`` (the ``.cast`` first)."""
    return [cast_path, *sidecars_of(cast_path), seek_path_of(cast_path), hold_path_of(cast_path)]


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str
    by: str
    ts: float

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "by": self.by, "ts": self.ts}


def hold_of(cast_path: Path) -> Hold | None:
    """The recording's hold, or None. An unreadable hold file still counts as a hold."""
    path = hold_path_of(cast_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(raw)
        return Hold(str(obj.get("reason", "")), str(obj.get("by", "")), float(obj.get("ts", 0.0)))
    except (ValueError, AttributeError, TypeError):
        return Hold("(unreadable hold file)", "?", 0.0)


def place_hold(root: Path, recording_id: str, *, reason: str, by: str, now: float) -> tuple[Path, Hold, bool]:
    """Hold a recording (``BadRequest`` for a bad id, ``NotFound`` if absent); whether it is new.

    An existing hold is replaced (the new reason is kept).
    """
    cast_path = archive.find_recording(root, recording_id)
    reason = "".join(ch if ch.isprintable() else " " for ch in reason)[:MAX_HOLD_REASON]
    hold = Hold(reason, by, round(now, 3))
    path = hold_path_of(cast_path)
    new = not path.exists()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(hold.to_dict(), f)
        f.write("\n")
    os.replace(tmp, path)
    return cast_path, hold, new


def release_hold(root: Path, recording_id: str) -> tuple[Path, Hold]:
    """Remove a hold; ``NotFound`` if the recording has none."""
    cast_path = archive.find_recording(root, recording_id)
    hold = hold_of(cast_path)
    if hold is None:
        raise NotFound(f"recording {recording_id} is not on hold")
    hold_path_of(cast_path).unlink(missing_ok=True)
    return cast_path, hold


@dataclass(frozen=True, slots=True)
class Candidate:
    """A recording as retention sees it."""

    cast_path: Path
    age_s: float
    finished: bool
    held: bool
    live: bool
    size: int

    @property
    def id(self) -> str:
        return self.cast_path.stem


def _newest_mtime(cast_path: Path) -> tuple[float, int]:
    """The newest change of the recording itself (not of its hold or its rebuildable index)."""
    newest, size = 0.0, 0
    for p in (cast_path, *sidecars_of(cast_path)):
        with contextlib.suppress(FileNotFoundError):
            st = p.stat()
            newest = max(newest, st.st_mtime)
            if p == cast_path:
                size = st.st_size
    return newest, size


def examine(cast_path: Path, *, now: float, live_ids: Iterable[str] = ()) -> Candidate:
    side = sidecars_of(cast_path)
    chain = side.chain.read_bytes() if side.chain.exists() else None
    last = archive.last_checkpoint(chain)
    finished = last is not None and last.final
    newest, size = _newest_mtime(cast_path)
    ended = max(newest, last.ts if last is not None else 0.0)
    live = not finished and (cast_path.stem in set(live_ids) or now - newest < archive.LIVE_QUIET_S)
    return Candidate(cast_path, now - ended, finished, hold_of(cast_path) is not None, live, size)


def expired(root: Path, retain_days: float, *, now: float, live_ids: Iterable[str] = ()) -> list[Candidate]:
    """Recordings older than ``retain_days`` that may be deleted (not held, not live), oldest first."""
    live = set(live_ids)
    found = []
    for cast_path in archive.iter_recordings(root):
        with contextlib.suppress(FileNotFoundError):
            c = examine(cast_path, now=now, live_ids=live)
            if c.age_s > retain_days * DAY_S and not c.held and not c.live:
                found.append(c)
    found.sort(key=lambda c: -c.age_s)
    return found


def unindexed(root: Path, *, now: float, live_ids: Iterable[str] = ()) -> list[Path]:
    """Recordings that are over (not live) and have no seek index, or one older than the cast:
    newest first (what a reviewer opens next)."""
    live = set(live_ids)
    found: list[tuple[float, Path]] = []
    for cast_path in archive.iter_recordings(root):
        with contextlib.suppress(FileNotFoundError):
            c = examine(cast_path, now=now, live_ids=live)
            seek = seek_path_of(cast_path)
            fresh = seek.exists() and seek.stat().st_mtime >= cast_path.stat().st_mtime
            if not c.live and not fresh:
                found.append((c.age_s, cast_path))
    return [p for _, p in sorted(found)]


def delete_recording(cast_path: Path, index_dirs: Iterable[Path] = ()) -> list[Path]:
    """Delete a recording's files (the ``.cast`` first) and its search index; what was deleted."""
    deleted = []
    for p in files_of(cast_path):
        try:
            p.unlink()
            deleted.append(p)
        except FileNotFoundError:
            pass
    rid = cast_path.stem
    for d in index_dirs:
        p = d / f"{rid}.idx"
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            deleted.append(p)
    with contextlib.suppress(OSError):  # the month (and year) folder, if now empty
        cast_path.parent.rmdir()
        cast_path.parent.parent.rmdir()
    return deleted


@dataclass(frozen=True, slots=True)
class PruneResult:
    deleted: list[Candidate]
    kept_held: int
    kept_live: int


def prune(
    root: Path,
    retain_days: float,
    *,
    now: float,
    audit: AuditSink,
    live_ids: Iterable[str] = (),
    index_dirs: Iterable[Path] = (),
    dry_run: bool = False,
) -> PruneResult:
    """Delete what retention allows (see the module docstring), auditing each deletion."""
    live = set(live_ids)
    deleted: list[Candidate] = []
    held = kept_live = 0
    for cast_path in list(archive.iter_recordings(root)):
        try:
            c = examine(cast_path, now=now, live_ids=live)
        except FileNotFoundError:
            continue
        if c.age_s <= retain_days * DAY_S:
            continue
        if c.held:
            held += 1
            continue
        if c.live:
            kept_live += 1
            continue
        if dry_run:
            deleted.append(c)
            continue
        # Checked again right before: a hold placed meanwhile wins.
        if hold_of(cast_path) is not None:
            held += 1
            continue
        files = delete_recording(cast_path, index_dirs)
        deleted.append(c)
        audit(
            "recording.deleted",
            c.id,
            "ok",
            {
                "reason": "retention",
                "retain_days": retain_days,
                "age_days": round(c.age_s / DAY_S, 2),
                "finished": c.finished,
                "bytes": c.size,
                "files": len(files),
            },
        )
    return PruneResult(deleted, held, kept_live)
