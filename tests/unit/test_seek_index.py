"""The seek index: screen snapshots that redraw the screen, keyframe lookup, signatures, rebuilding."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyte
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.recording.asciicast import EventCode, encode_event
from gateway.recording.chain import ChainWriter, Ed25519Signer
from gateway.recording.screen import ScreenState
from gateway.recording.seekindex import (
    CastSeeker,
    SeekIndex,
    build_seek_index,
    seek_path_of,
)

KEY = Ed25519PrivateKey.generate()
SIGNER = Ed25519Signer(KEY)
SID = "ses_seek"


def _cells(screen: pyte.Screen) -> list[list[tuple[object, ...]]]:
    return [[tuple(screen.buffer[y][x]) for x in range(screen.columns)] for y in range(screen.lines)]


def _replay(snapshot: str, cols: int, rows: int) -> pyte.Screen:
    screen = pyte.Screen(cols, rows)
    pyte.Stream(screen).feed(snapshot)
    return screen


def _random_output(rng: random.Random, n: int) -> list[str]:
    pieces = [
        "hello ", "world", "\r\n", "\x1b[31m", "\x1b[1;44m", "\x1b[0m", "\x1b[38;5;208m", "\x1b[48;2;1;2;3m",
        "\x1b[2J", "\x1b[H", "\x1b[5;10H", "\x1b[K", "\x1b[3A", "\x1b[7m", "\x1b[4m", "\t", "\b", "é", "日本",
        "\x1b[?25l", "\x1b[?25h", "\x1b[2;20r", "\x1b[r", "x" * 100, "\x1b[1P", "\x1b[2@", "\x1b[L",
    ]  # fmt: skip
    return [rng.choice(pieces) for _ in range(n)]


def test_a_snapshot_redraws_the_same_screen_colours_and_cursor() -> None:
    rng = random.Random(7)
    for case in range(40):
        cols, rows = rng.choice([(80, 24), (40, 10), (132, 50)])
        state = ScreenState(cols, rows)
        reference = pyte.Screen(cols, rows)
        stream = pyte.Stream(reference)
        for piece in _random_output(rng, 300):
            state.feed(piece)
            stream.feed(piece)
        again = _replay(state.snapshot(), cols, rows)
        assert again.display == reference.display, f"case {case}"
        assert _cells(again) == _cells(reference), f"case {case}: colours and attributes"
        assert (again.cursor.x, again.cursor.y) == (reference.cursor.x, reference.cursor.y), f"case {case}"
        assert (pyte.modes.DECTCEM in again.mode) == (pyte.modes.DECTCEM in reference.mode)
        assert again.margins == reference.margins
        assert tuple(again.cursor.attrs)[1:] == tuple(reference.cursor.attrs)[1:], "the pen carries on"


def test_a_sequence_split_across_events_is_carried() -> None:
    state = ScreenState(20, 3)
    for part in ("\x1b[", "3", "1mred", "\x1b[0m ok"):
        state.feed(part)
    assert state.display()[0].startswith("red ok")
    assert "\x1b[0;31mred" in state.snapshot()


def test_the_alternate_screen_and_a_resize_are_kept() -> None:
    state = ScreenState(80, 24)
    state.feed("\x1b[?1049hfull screen app")
    state.resize(100, 30)
    snap = state.snapshot()
    assert snap.startswith("\x1b[?1049h")
    assert state.size == (100, 30)


def write_chained(path: Path, events: list[tuple[float, str, str]], *, every: int = 10) -> None:
    """A .cast with a .chain checkpoint every ``every`` event lines (as the recorder would)."""
    chain = ChainWriter(SID, SIGNER)
    header = json.dumps({"version": 2, "width": 40, "height": 5}).encode() + b"\n"
    cast, sidecar = [header], []
    chain.feed(header, 0.0)
    sidecar.append(chain.checkpoint(1.0))
    for i, (t, code, data) in enumerate(events, 1):
        line = encode_event(t, EventCode(code), data).encode()
        cast.append(line)
        chain.feed(line, t)
        if i % every == 0:
            sidecar.append(chain.checkpoint(1.0 + t))
    sidecar.append(chain.checkpoint(2.0, final=True, end="done"))
    path.write_bytes(b"".join(cast))
    path.with_suffix(".chain").write_bytes(b"".join(sidecar))


def _events(n: int) -> list[tuple[float, str, str]]:
    return [(float(i), "o", f"line {i}\r\n") for i in range(n)]


def test_lookup_picks_the_last_keyframe_at_or_before_t(tmp_path: Path) -> None:
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, _events(100), every=10)
    result = build_seek_index(cast, SIGNER)
    assert result.keyframes == 10 and result.note is None
    index = SeekIndex.load(seek_path_of(cast))
    assert [k.t for k in index.keyframes][:3] == [9.0, 19.0, 29.0]
    seeker = CastSeeker(cast, KEY.public_key(), index)
    for t, expected in ((0.0, None), (8.99, None), (9.0, 9.0), (55.5, 49.0), (1000.0, 99.0)):
        start = seeker.start(t)
        assert (start.keyframe.t if start.keyframe else None) == expected, t
    start = seeker.start(55.5)
    lines = b"".join(seeker.chunks(start)).decode().splitlines()
    header = json.loads(lines[0])
    assert header["rcgate_seek"]["from"] == 49.0 and (header["width"], header["height"]) == (40, 5)
    screen = _replay(json.loads(lines[1])[2], 40, 5)
    assert [row.rstrip() for row in screen.display] == [f"line {i}" for i in range(45, 50)] or screen.display[
        -2
    ].startswith("line 49")
    assert json.loads(lines[2]) == [1.0, "o", "line 50\r\n"], "times count from the keyframe"
    assert json.loads(lines[-1])[2] == "line 99\r\n"


def test_playback_from_a_keyframe_shows_what_playing_from_the_start_shows(tmp_path: Path) -> None:
    rng = random.Random(3)
    events = [(i * 0.5, "o", piece) for i, piece in enumerate(_random_output(rng, 400))]
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, events, every=37)
    build_seek_index(cast, SIGNER)
    seeker = CastSeeker(cast, KEY.public_key(), SeekIndex.load(seek_path_of(cast)))
    full = pyte.Screen(40, 5)
    pyte.Stream(full).feed("".join(d for _, _, d in events))
    start = seeker.start(150.0)
    assert start.keyframe is not None
    sought = pyte.Screen(40, 5)
    stream = pyte.Stream(sought)
    for raw in b"".join(seeker.chunks(start)).splitlines()[1:]:
        stream.feed(json.loads(raw)[2])
    assert sought.display == full.display
    assert _cells(sought) == _cells(full)


def test_a_keyframe_that_does_not_verify_is_never_used(tmp_path: Path) -> None:
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, _events(50), every=10)
    build_seek_index(cast, SIGNER)
    seek = seek_path_of(cast)
    lines = seek.read_bytes().splitlines(keepends=True)
    forged = json.loads(lines[3])  # the keyframe at t=29
    forged["screen"] = "\x1b]52;c;ZXZpbA==\x07forged screen"
    lines[3] = json.dumps(forged).encode() + b"\n"
    seek.write_bytes(b"".join(lines))
    seeker = CastSeeker(cast, KEY.public_key(), SeekIndex.load(seek))
    start = seeker.start(35.0)
    assert start.keyframe is not None and start.keyframe.t == 19.0, "falls back to the previous keyframe"
    other = CastSeeker(cast, Ed25519PrivateKey.generate().public_key(), SeekIndex.load(seek))
    assert other.start(35.0).keyframe is None, "another key: from the start"
    assert CastSeeker(cast, None, SeekIndex.load(seek)).start(35.0).keyframe is None


def test_an_offset_that_is_not_a_line_start_is_refused(tmp_path: Path) -> None:
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, _events(30), every=10)
    build_seek_index(cast, SIGNER)
    data = cast.read_bytes()
    cast.write_bytes(b"x" + data)  # every offset shifts by one byte
    seeker = CastSeeker(cast, KEY.public_key(), SeekIndex.load(seek_path_of(cast)))
    assert seeker.start(25.0).keyframe is None


def test_rebuilding_stops_where_the_cast_no_longer_matches_its_chain(tmp_path: Path) -> None:
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, _events(50), every=10)
    cast.write_bytes(cast.read_bytes().replace(b"line 25", b"line XX"))
    result = build_seek_index(cast, SIGNER)
    assert result.keyframes == 2
    assert result.note is not None and "does not match" in result.note


def test_no_index_means_playback_from_the_start(tmp_path: Path) -> None:
    cast = tmp_path / f"{SID}.cast"
    write_chained(cast, _events(5))
    seeker = CastSeeker(cast, KEY.public_key(), SeekIndex.load(seek_path_of(cast)))
    start = seeker.start(3.0)
    assert start.keyframe is None and start.offset == len(cast.read_bytes().split(b"\n")[0]) + 1
    assert b"".join(seeker.chunks(start)) == cast.read_bytes()
