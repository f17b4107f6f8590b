"""The asciicast v2 codec: header and events out, parsed back, UTF-8 split across chunks."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.recording.asciicast import (
    CastFormatError,
    EventCode,
    Header,
    RcgateMeta,
    TextStream,
    encode_event,
    encode_header,
    format_resize,
    parse_cast,
    parse_event,
    parse_header,
    parse_resize,
    title_for,
)

META = RcgateMeta(
    session_id="ses_1",
    owner_id="usr_1",
    owner_name="alice",
    host="laptop",
    cwd="/home/alice/src",
    command=("claude", "--resume"),
    labels={"repo": "rcgate"},
)


def test_header_is_one_json_line_with_the_rcgate_metadata() -> None:
    header = Header(width=100, height=30, timestamp=1_767_225_600, title="t", rcgate=META)
    line = encode_header(header)
    assert line.endswith("\n") and line.count("\n") == 1
    obj = json.loads(line)
    assert obj["version"] == 2
    assert (obj["width"], obj["height"], obj["timestamp"]) == (100, 30, 1_767_225_600)
    assert obj["env"] == {"TERM": "xterm-256color"}
    assert obj["rcgate"]["session_id"] == "ses_1"
    assert obj["rcgate"]["command"] == ["claude", "--resume"]
    assert obj["rcgate"]["labels"] == {"repo": "rcgate"}
    assert parse_header(line) == header


def test_header_parser_ignores_keys_of_other_tools() -> None:
    header = parse_header('{"version": 2, "width": 80, "height": 24, "duration": 1.5, "theme": {}}')
    assert (header.width, header.height, header.rcgate) == (80, 24, None)


@pytest.mark.parametrize(
    ("code", "data"),
    [
        (EventCode.OUTPUT, "héllo\r\n\x1b[31mred\x1b[0m"),
        (EventCode.INPUT, "\x03"),
        (EventCode.RESIZE, "120x40"),
        (EventCode.MARKER, "join bob (view_only)"),
    ],
)
def test_event_round_trip(code: EventCode, data: str) -> None:
    line = encode_event(1.2345678, code, data)
    assert line.endswith("\n") and line.count("\n") == 1, "newlines inside data are escaped"
    assert json.loads(line) == [1.234568, code.value, data]
    event = parse_event(line)
    assert (event.time, event.code, event.data) == (1.234568, code, data)


def test_resize_format() -> None:
    assert format_resize(120, 40) == "120x40"
    assert parse_resize("120x40") == (120, 40)
    for bad in ("120", "x40", "120x", "ax40", "-1x4"):
        with pytest.raises(CastFormatError):
            parse_resize(bad)


def test_a_character_split_across_chunks_is_carried_to_the_next_event() -> None:
    text = TextStream()
    assert text.feed(b"caf\xc3") == "caf"
    assert text.feed(b"\xa9!") == "é!"
    emoji = "🙂".encode()
    assert [text.feed(emoji[i : i + 1]) for i in range(4)] == ["", "", "", "🙂"]
    assert text.finish() == ""


def test_only_truly_invalid_bytes_become_replacement_characters() -> None:
    text = TextStream()
    assert text.feed(b"ok\xff\xfeok") == "ok\ufffd\ufffdok"
    assert text.feed(b"\xe2\x82") == ""
    assert text.finish() == "\ufffd", "a character cut by the end of the stream is replaced once"


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_incremental_decoding_equals_decoding_the_whole(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    text = TextStream()
    pieces = [text.feed(data[a:b]) for a, b in itertools.pairwise(bounds)]
    assert "".join(pieces) + text.finish() == data.decode("utf-8", errors="replace")


def test_parse_cast_reads_a_whole_recording() -> None:
    lines = [
        encode_header(Header(width=80, height=24, rcgate=META)),
        encode_event(0.1, EventCode.OUTPUT, "$ "),
        encode_event(0.2, EventCode.MARKER, "join bob (view_only)"),
        encode_event(0.3, EventCode.OUTPUT, "ls\r\n"),
        encode_event(0.4, EventCode.MARKER, "end: idle timeout"),
    ]
    cast = parse_cast("".join(lines).splitlines())
    assert cast.header.rcgate == META
    assert cast.output_text() == "$ ls\r\n"
    assert cast.markers() == ["join bob (view_only)", "end: idle timeout"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"a": 1}', "only asciicast v2"),
        ('{"version": 1, "width": 80, "height": 24}', "only asciicast v2"),
        ('{"version": 2, "width": 0, "height": 24}', "bad header"),
        ("[1, 2]", "header must be a JSON object"),
    ],
)
def test_bad_headers_are_refused(line: str, message: str) -> None:
    with pytest.raises(CastFormatError, match=message):
        parse_header(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ('[1.0, "o"]', "JSON array"),
        ('{"t": 1}', "JSON array"),
        ('["1", "o", "x"]', "non-negative number"),
        ('[-1, "o", "x"]', "non-negative number"),
        ('[true, "o", "x"]', "non-negative number"),
        ('[1, "z", "x"]', "unknown event code"),
        ('[1, "o", 5]', "must be a string"),
        ('[1, "r", "wide"]', "COLSxROWS"),
    ],
)
def test_bad_events_are_refused(line: str, message: str) -> None:
    with pytest.raises(CastFormatError, match=message):
        parse_event(line)


def test_an_empty_recording_has_no_header() -> None:
    with pytest.raises(CastFormatError, match="no header"):
        parse_cast([])


def test_title() -> None:
    assert title_for("alice", "laptop", ["claude", "--resume"]) == "alice@laptop: claude --resume"
    assert title_for("alice", "laptop", []) == "alice@laptop"
