"""Seek index, retention and legal hold, search and play: the real recorder and the real `rcgate` CLI.

The CLI runs as a subprocess (`.venv/bin/rcgate recordings …`), as a reviewer or an admin would
run it; audit events are read back from the embedded store it wrote to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app import services
from gateway.core.ids import SessionId, UserId
from gateway.recording.keys import RECORDING_KEY_FILE, load_or_create_signing_key
from gateway.recording.recorder import RecorderFactory, sidecars_of
from gateway.recording.retention import files_of, prune
from gateway.recording.seekindex import CastSeeker, SeekIndex, seek_path_of
from gateway.sessions.ports import SessionMeta
from gateway.settings import load_settings
from tests.fixtures.recordings import Step, write_recording

RCGATE = Path(sys.executable).with_name("rcgate")
ASCIINEMA = Path(sys.executable).with_name("asciinema")
DAY = 86_400.0
META = SessionMeta(owner_id=UserId("usr_a"), owner_name="alice", host="laptop", cwd="/src", command=("sh",))


@dataclass
class Place:
    root: Path
    data: Path
    recordings: Path
    key: Ed25519PrivateKey

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(RCGATE), "recordings", *args, "--data-dir", str(self.data)]
        argv += ["--recordings-dir", str(self.recordings)]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False
        )

    async def audit_events(self) -> list[tuple[str, str | None, dict[str, object]]]:
        settings = load_settings(data_dir=str(self.data))
        async with services(settings) as svc:
            events = await svc.store.events(limit=1000, type_prefix="recording.")
        return [(e.type, e.subject, dict(e.detail)) for e in events]


@pytest_asyncio.fixture
async def place(tmp_path: Path) -> AsyncIterator[Place]:
    data = tmp_path / "data"
    key = load_or_create_signing_key(data / RECORDING_KEY_FILE)
    yield Place(tmp_path, data, tmp_path / "recordings", key)


def age(cast: Path, days: float) -> None:
    """Make every file of a recording look ``days`` old."""
    when = time.time() - days * DAY
    for p in files_of(cast):
        if p.exists():
            os.utime(p, (when, when))


async def recording(place: Place, sid: str, text: str, *, days_ago: float, finish: bool = True) -> Path:
    steps = [Step(0.5, "o", "$ "), Step(1.0, "i", "make deploy\r"), Step(0.5, "o", f"{text}\r\n")]
    path = await write_recording(
        place.recordings, place.key, sid, steps, started=time.time() - days_ago * DAY, finish=finish
    )
    age(path, days_ago)
    return path


# --- the seek index written while recording ----------------------------------------------------


async def test_the_recorder_writes_a_signed_seek_index_and_asciinema_reads_the_cast(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    factory = RecorderFactory(tmp_path, signing_key=key, batch_window_s=0.01, checkpoint_interval_s=0)
    recorder = await factory(SessionId("ses_live_idx"), META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    for i in range(40):
        recorder.output(b"\x1b[1;32mstep %d\x1b[0m\r\n" % i)
        await asyncio.sleep(0.01)
    recorder.resize(100, 30)
    recorder.output(b"after resize\r\n")
    await recorder.close("done")
    await runner
    assert recorder.seek is not None and recorder.seek.wait(10)
    index = SeekIndex.load(seek_path_of(recorder.path))
    assert len(index.keyframes) >= 5
    assert index.keyframes[-1].cols == 100 and index.keyframes[-1].rows == 30
    seeker = CastSeeker(recorder.path, key.public_key(), index)
    start = seeker.start(index.keyframes[2].t + 0.001)
    assert start.keyframe == index.keyframes[2]
    assert all(k.verifies(key.public_key()) for k in index.keyframes)
    # The .cast is untouched by the index: asciinema reads it as before.
    cat = subprocess.run(
        [str(ASCIINEMA), "cat", str(recorder.path)], capture_output=True, timeout=30, check=False
    )
    assert cat.returncode == 0, cat.stderr
    assert b"step 39" in cat.stdout and b"after resize" in cat.stdout
    assert not any(b"rcgate_seek" in line for line in recorder.path.read_bytes().splitlines())


async def test_a_seek_index_that_cannot_be_created_does_not_stop_the_recording(tmp_path: Path) -> None:
    from gateway.recording.recorder import RecordingFile, open_recording_file

    def opener(path: Path) -> RecordingFile:
        if path.suffix == ".seek":
            raise PermissionError(13, "Permission denied")
        return open_recording_file(path)

    factory = RecorderFactory(tmp_path, signing_key=Ed25519PrivateKey.generate(), sidecar_opener=opener)
    recorder = await factory(SessionId("ses_noidx"), META, lambda _: None)
    runner = asyncio.ensure_future(recorder.run())
    recorder.output(b"still recorded\r\n")
    await recorder.close("done")
    await runner
    assert recorder.seek is None and not recorder.failed
    assert b"still recorded" in recorder.path.read_bytes()


# --- retention and hold (the library) ------------------------------------------------------------


async def test_prune_deletes_old_recordings_with_an_audit_event_and_keeps_held_and_live(place: Place) -> None:
    old = await recording(place, "ses_old", "old output", days_ago=40)
    held = await recording(place, "ses_held", "held output", days_ago=40)
    fresh = await recording(place, "ses_fresh", "fresh output", days_ago=2)
    live = await recording(place, "ses_live", "live output", days_ago=0, finish=False)
    live_old = await recording(place, "ses_live_old", "live but quiet", days_ago=40, finish=False)
    r = place.run("hold", "ses_held", "--reason", "case 42")
    assert r.returncode == 0, r.stderr
    index_dir = place.data / "search-index"
    index_dir.mkdir(parents=True)
    (index_dir / "ses_old.idx").write_bytes(b"x")
    events: list[tuple[str, str, str, dict[str, object]]] = []
    result = prune(
        place.recordings, 30, now=time.time(), audit=lambda *e: events.append(e),
        live_ids={"ses_live_old"}, index_dirs=[index_dir],
    )  # fmt: skip
    assert [c.id for c in result.deleted] == ["ses_old"]
    assert result.kept_held == 1 and result.kept_live == 1
    assert not any(p.exists() for p in files_of(old)), "cast, chain, audit, seek: all gone"
    assert not (index_dir / "ses_old.idx").exists()
    assert events == [("recording.deleted", "ses_old", "ok", events[0][3])]
    assert events[0][3]["reason"] == "retention" and events[0][3]["retain_days"] == 30
    for kept in (held, fresh, live, live_old):
        assert kept.exists() and sidecars_of(kept).chain.exists()


# --- the CLI as a subprocess ----------------------------------------------------------------------


async def test_hold_list_release_and_prune_from_the_cli(place: Place) -> None:
    await recording(place, "ses_a", "alpha", days_ago=100)
    await recording(place, "ses_b", "beta", days_ago=100)
    r = place.run("hold", "ses_a", "--reason", "legal \x1b]52;c;eA==\x07case")
    assert r.returncode == 0, r.stderr
    listed = place.run("list")
    assert listed.returncode == 0, listed.stderr
    line_a = next(ln for ln in listed.stdout.splitlines() if ln.startswith("ses_a"))
    assert "HELD (legal  ]52;c;eA== case)" in line_a, "control characters never reach the terminal"
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    doc = json.loads(place.run("list", "--json").stdout)
    assert {d["id"]: bool(d["hold"]) for d in doc} == {"ses_a": True, "ses_b": False}
    no_days = place.run("prune")
    assert no_days.returncode == 3 and "retain_days" in no_days.stderr
    dry = place.run("prune", "--dry-run", env={"RCGATE_RECORDINGS__RETAIN_DAYS": "30"})
    assert "would delete ses_b" in dry.stdout and "ses_a" not in dry.stdout.split("kept")[0]
    pruned = place.run("prune", env={"RCGATE_RECORDINGS__RETAIN_DAYS": "30"})
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted ses_b" in pruned.stdout and "kept 1 on hold" in pruned.stdout
    released = place.run("release", "ses_a")
    assert released.returncode == 0, released.stderr
    again = place.run("prune", "--days", "30")
    assert "deleted ses_a" in again.stdout
    assert list(place.recordings.rglob("*")) == [], "every file and the empty month folders are gone"
    events = await place.audit_events()
    kinds = [(t, s) for t, s, _ in events]
    assert kinds == [
        ("recording.held", "ses_a"),
        ("recording.deleted", "ses_b"),
        ("recording.released", "ses_a"),
        ("recording.deleted", "ses_a"),
    ]
    assert events[0][2]["reason"] == "legal  ]52;c;eA== case"
    assert events[1][2]["reason"] == "retention" and events[1][2]["retain_days"] == 30


async def test_search_prints_hits_with_id_time_kind_and_snippet(place: Place) -> None:
    await recording(place, "ses_s1", "Deployed build 1234 to production", days_ago=1)
    await recording(place, "ses_s2", "nothing here", days_ago=1)
    r = place.run("search", "BUILD 1234")
    assert r.returncode == 0, r.stderr
    hits = [ln for ln in r.stdout.splitlines() if ln.startswith("ses_")]
    assert len(hits) == 1 and "ses_s1" in hits[0] and "shown" in hits[0] and "[build 1234]" in hits[0]
    typed = place.run("search", "make deploy", "--id", "ses_s2")
    assert [ln.split()[0] for ln in typed.stdout.splitlines() if ln.startswith("ses_")] == ["ses_s2"]
    assert "typed" in typed.stdout
    doc = json.loads(place.run("search", "production", "--json").stdout)
    assert doc["hits"][0]["id"] == "ses_s1" and doc["hits"][0]["stream"] == "o"
    searched = [(t, s, d) for t, s, d in await place.audit_events() if t == "recording.searched"]
    assert len(searched) == 3 and searched[1][1] == "ses_s2"
    assert all("make deploy" not in json.dumps(d) for _, _, d in searched), "never the query's text"


async def test_play_strips_dangerous_sequences_and_keeps_colours(place: Place) -> None:
    evil = (
        "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"
        "\x1b[6n\x1b[c\x1bP+q544e\x1b\\\x1b[1;31mred\x1b[0m"
    )
    steps = [Step(0.2, "o", evil[:9]), Step(0.2, "o", evil[9:40]), Step(0.2, "o", evil[40:])]
    await write_recording(place.recordings, place.key, "ses_evil", steps)
    r = place.run("play", "ses_evil", "--speed", "100")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "click" in out and "\x1b[1;31mred\x1b[0m" in out
    for bad in ("\x1b]", "\x1bP", "\x1b[6n", "\x1b[c", "pwned", "evil.example", "cm0gLXJmIH4"):
        assert bad not in out, bad


@pytest.mark.parametrize("bad", ["../ses_a", "/etc/passwd", "a/b"])
async def test_ids_that_are_paths_are_refused_by_hold_release_search_and_play(place: Place, bad: str) -> None:
    await recording(place, "ses_a", "alpha", days_ago=1)
    for args in (["hold", bad], ["release", bad], ["search", "alpha", "--id", bad], ["play", bad]):
        r = place.run(*args)
        assert r.returncode == 3, (args, r.stdout, r.stderr)
        assert "not a recording id" in r.stderr, (args, r.stderr)
    assert not list(place.recordings.rglob("*.hold"))


async def test_reindex_rebuilds_the_seek_index_and_asciinema_reads_every_recording(place: Place) -> None:
    steps = [Step(3.0, "o", f"tick {i}\r\n") for i in range(30)]  # 90 s: a checkpoint every 10 s
    path = await write_recording(place.recordings, place.key, "ses_long", steps)
    seek = seek_path_of(path)
    seek.unlink()
    r = place.run("reindex", "ses_long")
    assert r.returncode == 0, r.stderr
    assert seek.exists() and "keyframe" in r.stdout
    for cast in place.recordings.rglob("*.cast"):
        cat = subprocess.run([str(ASCIINEMA), "cat", str(cast)], capture_output=True, timeout=30, check=False)
        assert cat.returncode == 0, cat.stderr


# --- the seek index built after the session (recordings.seek_index: after, the default) ------------


async def test_finished_recordings_without_an_index_get_one_in_a_subprocess(place: Place) -> None:
    from types import SimpleNamespace

    from gateway.app import seek_index_loop
    from gateway.recording.retention import unindexed

    done = await recording(place, "ses_done", "deployed", days_ago=1)
    unfinished = await recording(place, "ses_open", "running", days_ago=0, finish=False)
    for cast in (done, unfinished):
        seek_path_of(cast).unlink()
    assert unindexed(place.recordings, now=time.time()) == [done], "a live one is left to its recorder"

    settings = load_settings(data_dir=str(place.data), recordings_dir=str(place.recordings))
    assert settings.recordings.seek_index == "after"
    hub = SimpleNamespace(sessions=lambda: [])
    loop = asyncio.ensure_future(seek_index_loop(settings, hub, poll_s=0.2))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(60):
            while not seek_path_of(done).exists() or unindexed(place.recordings, now=time.time()):
                await asyncio.sleep(0.1)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    index = SeekIndex.load(seek_path_of(done))
    assert index.keyframes and all(k.verifies(place.key.public_key()) for k in index.keyframes)
    assert not seek_path_of(unfinished).exists()
