"""The connector link: length-prefixed binary frames between `rcgate share` and the gateway.

Theory of operation
-------------------
The connector opens one SSH session channel to the gateway (exec command ``rcgate-connector/1``)
and both sides exchange frames on it::

    frame   = length:u32be  kind:u8  payload        (length counts kind + payload)

connector -> gateway
    HELLO   JSON  {"version": 1, "resume": {"session_id", "resume_token"} | null,
                   "host", "cwd", "command": [...], "labels": {...}, "cols", "rows", "mode"}
    OUTPUT  seq:u64be  bytes      terminal output; ``seq`` is the byte offset of the first byte
                                  in the session's output stream, so a resume can skip what the
                                  gateway already has and resend the rest
    RESIZE  cols:u16be rows:u16be
    EXIT    code:i32be            the local program ended (remote control ends with it)
    STOP    (empty)               the owner stopped sharing; the program keeps running locally

gateway -> connector
    WELCOME JSON  {"session_id", "resume_token", "hook_token", "link_url", "received": int}
                  ``received`` = output bytes the gateway holds; the connector resends from there
    INPUT   bytes                 remote input the gateway allowed; written to the PTY as is
    END     JSON  {"reason"}      remote control ended (idle, revoked, maximum, recording failure)

The decoder is incremental and sans-IO: feed it bytes, take frames out. A frame larger than
``MAX_FRAME_BYTES`` or of an unknown kind is a protocol error (the link is dropped).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

MAX_FRAME_BYTES = 1024 * 1024  # 1 MiB: output is coalesced into at most 256 KiB per frame
MAX_OUTPUT_CHUNK_BYTES = 256 * 1024
EXEC_COMMAND = "rcgate-connector/1"

_HEADER = struct.Struct(">IB")
_SEQ = struct.Struct(">Q")
_SIZE = struct.Struct(">HH")
_CODE = struct.Struct(">i")


class Kind(IntEnum):
    HELLO = 1
    OUTPUT = 2
    RESIZE = 3
    EXIT = 4
    STOP = 5
    WELCOME = 16
    INPUT = 17
    END = 18


class WireError(Exception):
    """The peer sent something that is not a valid frame."""


@dataclass(frozen=True, slots=True)
class Hello:
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Output:
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Resize:
    cols: int
    rows: int


@dataclass(frozen=True, slots=True)
class Exit:
    code: int


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Welcome:
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Input:
    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    reason: str


Frame = Hello | Output | Resize | Exit | Stop | Welcome | Input | End


def _pack(kind: Kind, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload) + 1, kind) + payload


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode(frame: Frame) -> bytes:
    """Serialise one frame."""
    match frame:
        case Hello(info):
            return _pack(Kind.HELLO, _json(info))
        case Output(seq, data):
            return _pack(Kind.OUTPUT, _SEQ.pack(seq) + data)
        case Resize(cols, rows):
            return _pack(Kind.RESIZE, _SIZE.pack(cols, rows))
        case Exit(code):
            return _pack(Kind.EXIT, _CODE.pack(code))
        case Stop():
            return _pack(Kind.STOP, b"")
        case Welcome(info):
            return _pack(Kind.WELCOME, _json(info))
        case Input(data):
            return _pack(Kind.INPUT, data)
        case End(reason):
            return _pack(Kind.END, _json({"reason": reason}))
    raise TypeError(f"not a frame: {frame!r}")  # pragma: no cover - exhaustive match


def _decode_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"malformed JSON frame: {exc}") from exc
    if not isinstance(obj, dict):
        raise WireError("JSON frame must be an object")
    return obj


def _decode(kind: int, payload: bytes) -> Frame:
    try:
        k = Kind(kind)
    except ValueError:
        raise WireError(f"unknown frame kind {kind}") from None
    try:
        if k is Kind.HELLO:
            return Hello(_decode_json(payload))
        if k is Kind.OUTPUT:
            (seq,) = _SEQ.unpack_from(payload)
            return Output(seq, payload[_SEQ.size :])
        if k is Kind.RESIZE:
            cols, rows = _SIZE.unpack(payload)
            return Resize(cols, rows)
        if k is Kind.EXIT:
            (code,) = _CODE.unpack(payload)
            return Exit(code)
        if k is Kind.STOP:
            return Stop()
        if k is Kind.WELCOME:
            return Welcome(_decode_json(payload))
        if k is Kind.INPUT:
            return Input(payload)
        reason = _decode_json(payload).get("reason")
        return End(str(reason))
    except struct.error as exc:
        raise WireError(f"short {k.name} frame") from exc


class Decoder:
    """Incremental frame decoder: ``feed(bytes)`` then iterate ``frames()``."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes and return every complete frame they finish."""
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= _HEADER.size:
            length, kind = _HEADER.unpack_from(self._buf)
            if length < 1 or length > self._max:
                raise WireError(f"frame length {length} outside 1..{self._max}")
            end = 4 + length
            if len(self._buf) < end:
                break
            payload = bytes(self._buf[_HEADER.size : end])
            del self._buf[:end]
            out.append(_decode(kind, payload))
        return out
