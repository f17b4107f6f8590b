"""The connector frame codec: round trips, incremental feeding and every kind of bad input."""

from __future__ import annotations

import struct

import pytest

from gateway.protocol import connector_wire as wire

FRAMES: list[wire.Frame] = [
    wire.Hello({"version": 1, "resume": None, "host": "ws1", "cols": 80, "rows": 24, "command": ["bash"]}),
    wire.Output(0, b""),
    wire.Output(2**64 - 1, b"\x00\xff\x1b[31mred\r\n"),
    wire.Resize(65535, 1),
    wire.Exit(-1),
    wire.Exit(255),
    wire.Stop(),
    wire.Welcome({"session_id": "ses_x", "resume_token": "t", "link_url": "", "received": 12}),
    wire.Input(b"ls -la\r"),
    wire.End("idle timeout"),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_every_frame_kind_round_trips(frame: wire.Frame) -> None:
    assert wire.Decoder().feed(wire.encode(frame)) == [frame]


def test_frames_fed_one_byte_at_a_time_come_out_whole_and_in_order() -> None:
    stream = b"".join(wire.encode(f) for f in FRAMES)
    decoder = wire.Decoder()
    out: list[wire.Frame] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == FRAMES


def test_many_frames_in_one_feed_and_a_split_tail_is_kept_for_later() -> None:
    stream = b"".join(wire.encode(f) for f in FRAMES)
    decoder = wire.Decoder()
    assert decoder.feed(stream[:-3]) == FRAMES[:-1]
    assert decoder.feed(stream[-3:]) == FRAMES[-1:]


def test_largest_output_chunk_fits_in_a_frame() -> None:
    frame = wire.Output(7, b"x" * wire.MAX_OUTPUT_CHUNK_BYTES)
    assert wire.Decoder().feed(wire.encode(frame)) == [frame]


def test_oversize_frame_is_refused_from_its_header_alone() -> None:
    header = struct.pack(">IB", wire.MAX_FRAME_BYTES + 1, wire.Kind.OUTPUT)
    with pytest.raises(wire.WireError, match="outside"):
        wire.Decoder().feed(header)


def test_zero_length_frame_is_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.Decoder().feed(struct.pack(">IB", 0, 0))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(wire.WireError, match="unknown frame kind 99"):
        wire.Decoder().feed(struct.pack(">IB", 1, 99))


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"\xff\xfe", b"[1, 2]", b'"a string"', b""],
    ids=["broken", "not-utf8", "array", "string", "empty"],
)
def test_malformed_json_bodies_are_refused(payload: bytes) -> None:
    frame = struct.pack(">IB", len(payload) + 1, wire.Kind.HELLO) + payload
    with pytest.raises(wire.WireError):
        wire.Decoder().feed(frame)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [(wire.Kind.OUTPUT, b"\x00" * 7), (wire.Kind.RESIZE, b"\x00\x50"), (wire.Kind.EXIT, b"\x00")],
    ids=["output-without-seq", "resize-short", "exit-short"],
)
def test_short_binary_frames_are_refused(kind: wire.Kind, payload: bytes) -> None:
    frame = struct.pack(">IB", len(payload) + 1, kind) + payload
    with pytest.raises(wire.WireError, match="short"):
        wire.Decoder().feed(frame)


def test_a_smaller_limit_can_be_chosen_per_decoder() -> None:
    with pytest.raises(wire.WireError):
        wire.Decoder(max_frame_bytes=16).feed(wire.encode(wire.Input(b"x" * 16)))
