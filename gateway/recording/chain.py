"""Tamper evidence for recordings: a hash chain over every line, signed checkpoints, verification.

Pure: bytes in, bytes or a ``Report`` out; no file, no clock (the caller passes ``now``/``ts``).
The writer half (``ChainWriter``) runs in the recorder's worker thread; the reader half
(``verify``) runs in the CLI, on any machine, with only the public key.

Theory of operation
-------------------
A stream (the ``.cast`` file, or the session's ``.audit.jsonl``) is a sequence of lines, each
ending in ``\\n`` (LF, 0x0A). Line 1 is the header. Every line's exact bytes, LF included, go
into a chain of SHA-256 links::

    link_0 = SHA-256(b"rcgate-chain-v1" || session_id)              for the .cast stream
    link_0 = SHA-256(b"rcgate-chain-v1" || session_id || b"/audit")  for the audit stream
    link_n = SHA-256(link_{n-1} || line_n)                           (32 raw bytes each)

so ``link_n`` commits to the session, every byte of lines 1..n and their order. The file is the
concatenation of its lines, so ``offset_n`` (bytes of lines 1..n) is where line n+1 starts.

A **checkpoint** signs the state after line n. It is one JSON object (one line of the sidecar
``<id>.chain`` / ``<id>.audit.chain``)::

    {"v": 1, "stream": "cast", "session_id": "ses_…", "seq": 3,
     "line": n, "offset": offset_n, "t": 12.5, "ts": 1767225612.345,
     "link": "<hex of link_n>", "digests": "<base64>", "key": "SHA256:…",
     "final": false, "sig": "<base64 of 64 bytes>"}

``seq`` numbers checkpoints from 0; ``t`` is the time (seconds since the recording started) of
the last line covered; ``ts`` the wall clock when it was signed; ``key`` the OpenSSH-style
SHA256 fingerprint of the signing key (``ssh-keygen -lf`` prints the same). ``digests`` holds,
for each line since the previous checkpoint, the first 8 bytes of SHA-256(line): it is what
lets ``verify`` name the first altered, inserted, removed or reordered line instead of only
"somewhere in this interval". The final checkpoint has ``"final": true`` and ``"end"`` (why the
recording ended). The signature is Ed25519 over::

    b"rcgate-checkpoint-v1\\n" || canonical JSON of the object without "sig"

where canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)`` (Python's float ``repr``; ``t`` has 6 decimals, ``ts`` 3).

The verdict rests on the links and signatures alone; ``digests`` only locate a mismatch (a
64-bit prefix: forging one to mislead the diagnosis costs 2^64 work and still cannot make a
tampered file verify).

Verification (``verify``) checks every checkpoint's signature and fields first, then walks the
file once, interval by interval: the bytes between two signed offsets must split into exactly
the signed number of lines and reproduce the signed link. Lines after the last checkpoint are
the *unsigned tail* (what a crash leaves); after a final checkpoint nothing may follow.

Cost: one SHA-256 per line and a few hundred nanoseconds of Python per line; see
``bench/verify_bench.py``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CHAIN_VERSION = 1
CHAIN_DOMAIN = b"rcgate-chain-v1"
SIGNATURE_DOMAIN = b"rcgate-checkpoint-v1\n"
DIGEST_BYTES = 8  # per-line digest prefix kept in checkpoints, for locating a mismatch
STREAM_CAST = "cast"
STREAM_AUDIT = "audit"
STREAMS = (STREAM_CAST, STREAM_AUDIT)
_NL = b"\n"
_LOCATE_WINDOW = 64  # lines searched ahead when classifying a mismatch
_sha256 = hashlib.sha256


class ChainFormatError(ValueError):
    """A chain line is not a well-formed checkpoint."""


# --- keys ---------------------------------------------------------------------------------------


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the OpenSSH key blob: what ``ssh-keygen -lf`` prints for the key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    algo = b"ssh-ed25519"
    blob = len(algo).to_bytes(4, "big") + algo + len(raw).to_bytes(4, "big") + raw
    return "SHA256:" + base64.b64encode(_sha256(blob).digest()).decode("ascii").rstrip("=")


class Signer(Protocol):
    """Signs checkpoints (``Ed25519Signer``; a test may pass a fake)."""

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class Ed25519Signer:
    """A ``Signer`` over an Ed25519 private key."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = fingerprint(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


# --- the chain ----------------------------------------------------------------------------------


def genesis(session_id: str, stream: str = STREAM_CAST) -> bytes:
    """``link_0`` of a stream (see the module docstring)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}")
    suffix = b"" if stream == STREAM_CAST else b"/" + stream.encode("ascii")
    return _sha256(CHAIN_DOMAIN + session_id.encode("utf-8") + suffix).digest()


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Whole lines of ``data`` (each with its LF) and the partial line after the last LF."""
    end = data.rfind(_NL) + 1
    whole, partial = data[:end], data[end:]
    if not whole:
        return [], partial
    if b"\r" not in whole:  # bytes.splitlines also splits at CR; without one it is exact and fast
        return whole.splitlines(keepends=True), partial
    parts = whole.split(_NL)
    parts.pop()  # the empty string after the final LF
    return [p + _NL for p in parts], partial


def line_digest(line: bytes) -> bytes:
    return _sha256(line).digest()[:DIGEST_BYTES]


def _canonical(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signed_payload(body: dict[str, object]) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return SIGNATURE_DOMAIN + _canonical(body)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed checkpoint (the fields of the module docstring; ``sig`` raw bytes)."""

    stream: str
    session_id: str
    seq: int
    line: int
    offset: int
    t: float
    ts: float
    link: bytes
    digests: bytes
    key: str
    final: bool = False
    end: str | None = None
    sig: bytes = b""

    def body(self) -> dict[str, object]:
        obj: dict[str, object] = {
            "v": CHAIN_VERSION,
            "stream": self.stream,
            "session_id": self.session_id,
            "seq": self.seq,
            "line": self.line,
            "offset": self.offset,
            "t": self.t,
            "ts": self.ts,
            "link": self.link.hex(),
            "digests": base64.b64encode(self.digests).decode("ascii"),
            "key": self.key,
            "final": self.final,
        }
        if self.end is not None:
            obj["end"] = self.end
        return obj

    def encode(self) -> bytes:
        """The sidecar line, LF included."""
        obj = self.body()
        obj["sig"] = base64.b64encode(self.sig).decode("ascii")
        return _canonical(obj) + _NL

    def line_digests(self) -> list[bytes]:
        d = self.digests
        return [d[i : i + DIGEST_BYTES] for i in range(0, len(d), DIGEST_BYTES)]


def _str(obj: dict[str, object], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ChainFormatError(f"field {name!r} missing or not a string")
    return value


def _int(obj: dict[str, object], name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChainFormatError(f"field {name!r} missing or not an integer")
    return value


def _number(obj: dict[str, object], name: str) -> float:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChainFormatError(f"field {name!r} missing or not a number")
    return float(value)


def parse_checkpoint(line: bytes) -> tuple[Checkpoint, dict[str, object]]:
    """A checkpoint and the exact body its signature must cover; ``ChainFormatError`` if malformed."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChainFormatError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ChainFormatError("not a JSON object")
    sig_text = obj.pop("sig", None)
    if obj.get("v") != CHAIN_VERSION:
        raise ChainFormatError(f"unknown version {obj.get('v')!r}")
    if not isinstance(sig_text, str):
        raise ChainFormatError("field 'sig' missing or not a string")
    try:
        sig = base64.b64decode(sig_text, validate=True)
        digests = base64.b64decode(_str(obj, "digests"), validate=True)
        link = bytes.fromhex(_str(obj, "link"))
    except (binascii.Error, ValueError) as exc:
        raise ChainFormatError(f"bad encoding: {exc}") from None
    end = obj.get("end")
    if end is not None and not isinstance(end, str):
        raise ChainFormatError("field 'end' is not a string")
    final = obj.get("final")
    if not isinstance(final, bool):
        raise ChainFormatError("field 'final' missing or not a boolean")
    cp = Checkpoint(
        stream=_str(obj, "stream"),
        session_id=_str(obj, "session_id"),
        seq=_int(obj, "seq"),
        line=_int(obj, "line"),
        offset=_int(obj, "offset"),
        t=_number(obj, "t"),
        ts=_number(obj, "ts"),
        link=link,
        digests=digests,
        key=_str(obj, "key"),
        final=final,
        end=end,
        sig=sig,
    )
    if len(link) != 32 or len(digests) % DIGEST_BYTES or len(sig) != 64:
        raise ChainFormatError("link, digests or signature has the wrong length")
    if cp.line < 0 or cp.offset < 0:
        raise ChainFormatError("negative line or offset")
    return cp, obj


class ChainWriter:
    """The writer's side of one stream's chain (used by one thread at a time).

    ``feed`` hashes whole lines as they are written; ``checkpoint`` signs the state and returns
    the sidecar line to append after the lines it covers are written.
    """

    __slots__ = (
        "_digests",
        "_link",
        "_signer",
        "_t",
        "line",
        "offset",
        "seq",
        "session_id",
        "stream",
        "unsigned_bytes",
        "unsigned_lines",
    )

    def __init__(self, session_id: str, signer: Signer, stream: str = STREAM_CAST) -> None:
        self.session_id = session_id
        self.stream = stream
        self._signer = signer
        self._link = genesis(session_id, stream)
        self._digests: list[bytes] = []
        self._t = 0.0
        self.line = 0
        self.offset = 0
        self.seq = 0
        self.unsigned_lines = 0
        self.unsigned_bytes = 0

    def feed(self, data: bytes, t: float) -> None:
        """Hash ``data`` (whole lines, ending in LF); ``t`` is the time of its last line."""
        lines, partial = split_lines(data)
        if partial:
            raise ValueError("the chain covers whole lines only")
        link = self._link
        digests = self._digests
        sha = _sha256
        for ln in lines:
            link = sha(link + ln).digest()
            digests.append(sha(ln).digest()[:DIGEST_BYTES])
        self._link = link
        self._t = max(self._t, t)
        self.line += len(lines)
        self.offset += len(data)
        self.unsigned_lines += len(lines)
        self.unsigned_bytes += len(data)

    @property
    def link(self) -> bytes:
        """``link_line``: the chain after the last fed line."""
        return self._link

    @property
    def t(self) -> float:
        """The time of the last fed line."""
        return self._t

    def checkpoint(self, ts: float, *, final: bool = False, end: str | None = None) -> bytes:
        """Sign the state after the last fed line; returns the sidecar line (LF included)."""
        cp = Checkpoint(
            stream=self.stream,
            session_id=self.session_id,
            seq=self.seq,
            line=self.line,
            offset=self.offset,
            t=round(self._t, 6),
            ts=round(ts, 3),
            link=self._link,
            digests=b"".join(self._digests),
            key=self._signer.key_id,
            final=final,
            end=end if final else None,
        )
        sig = self._signer.sign(signed_payload(cp.body()))
        self.seq += 1
        self._digests = []
        self.unsigned_lines = self.unsigned_bytes = 0
        return dataclasses.replace(cp, sig=sig).encode()


# --- verification -------------------------------------------------------------------------------


class Outcome(StrEnum):
    INTACT = "intact"
    TRUNCATED_TAIL = "truncated_tail"
    ALTERED = "altered"
    INSERTED = "inserted"
    REMOVED = "removed"
    REORDERED = "reordered"
    BAD_SIGNATURE = "bad_signature"
    WRONG_KEY = "wrong_key"
    MISSING_CHAIN = "missing_chain"
    SESSION_MISMATCH = "session_mismatch"


EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_UNSIGNED_TAIL = 2
EXIT_USAGE = 3


@dataclass(frozen=True, slots=True)
class Report:
    """What ``verify`` found. ``line`` is 1-based in the file (the header is line 1)."""

    outcome: Outcome
    message: str
    stream: str = STREAM_CAST
    session_id: str | None = None
    key_id: str | None = None
    line: int | None = None
    checkpoints: int = 0
    verified_lines: int = 0
    verified_bytes: int = 0
    verified_t: float | None = None
    tail_lines: int = 0
    tail_bytes: int = 0
    end_reason: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        if self.outcome is Outcome.INTACT:
            return EXIT_INTACT
        if self.outcome is Outcome.TRUNCATED_TAIL:
            return EXIT_UNSIGNED_TAIL
        return EXIT_TAMPERED

    @property
    def tampered(self) -> bool:
        return self.exit_code == EXIT_TAMPERED

    def to_dict(self) -> dict[str, object]:
        return {
            "stream": self.stream,
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "message": self.message,
            "session_id": self.session_id,
            "key": self.key_id,
            "line": self.line,
            "checkpoints": self.checkpoints,
            "verified_lines": self.verified_lines,
            "verified_bytes": self.verified_bytes,
            "verified_t": self.verified_t,
            "tail_lines": self.tail_lines,
            "tail_bytes": self.tail_bytes,
            "end_reason": self.end_reason,
            "notes": list(self.notes),
        }


def exit_code_of(reports: Sequence[Report]) -> int:
    """One exit code for several streams: tampered beats unsigned tail beats intact."""
    codes = {r.exit_code for r in reports}
    for code in (EXIT_TAMPERED, EXIT_UNSIGNED_TAIL):
        if code in codes:
            return code
    return EXIT_INTACT


@dataclass(slots=True)
class _Progress:
    """How far the file has been verified (the last good checkpoint)."""

    checkpoints: int = 0
    line: int = 0
    offset: int = 0
    t: float | None = None

    def report(
        self,
        template: Report,
        outcome: Outcome,
        message: str,
        *,
        line: int | None = None,
        end_reason: str | None = None,
        tail: tuple[int, int] = (0, 0),
    ) -> Report:
        return dataclasses.replace(
            template,
            outcome=outcome,
            message=message,
            line=line,
            end_reason=end_reason,
            tail_lines=tail[0],
            tail_bytes=tail[1],
            checkpoints=self.checkpoints,
            verified_lines=self.line,
            verified_bytes=self.offset,
            verified_t=self.t,
        )


def verify(
    cast: bytes,
    chain: bytes | None,
    public_key: Ed25519PublicKey,
    *,
    stream: str = STREAM_CAST,
    expected_session_id: str | None = None,
) -> Report:
    """Check ``cast`` (a stream's bytes) against its ``chain`` sidecar and ``public_key``.

    Args:
        cast: the whole ``.cast`` (or ``.audit.jsonl``) file.
        chain: the whole sidecar file, or None when it does not exist.
        public_key: the gateway's recording key (``rcgate recordings pubkey``).
        stream: which stream this is (``"cast"`` or ``"audit"``); checkpoints must say the same.
        expected_session_id: the id the caller asked for; another session's chain is a mismatch.

    Returns:
        A ``Report``; its ``exit_code`` is 0 intact, 1 tampered, 2 unsigned tail only.
    """
    template = Report(Outcome.MISSING_CHAIN, "", stream=stream, key_id=fingerprint(public_key))
    if not chain or not chain.strip():
        return dataclasses.replace(template, message="no chain sidecar: nothing proves this recording")
    checked = _check_checkpoints(chain, public_key, template, expected_session_id)
    if isinstance(checked, Report):
        return checked
    cps, notes = checked
    template = dataclasses.replace(template, session_id=cps[0].session_id, notes=tuple(notes))
    progress = _Progress()
    link = genesis(cps[0].session_id, stream)
    sha = _sha256
    for cp in cps:
        region = cast[progress.offset : cp.offset]
        count = cp.line - progress.line
        ok = len(region) == cp.offset - progress.offset and (count == 0 or region.endswith(_NL))
        if ok:
            lines, _ = split_lines(region)
            ok = len(lines) == count
            if ok:
                for ln in lines:
                    link = sha(link + ln).digest()
                ok = link == cp.link
        if not ok:
            return _diagnose(cast, cps, progress, template)
        progress.checkpoints += 1
        progress.line, progress.offset, progress.t = cp.line, cp.offset, cp.t
    last = cps[-1]
    tail = cast[progress.offset :]
    tail_lines, partial = split_lines(tail)
    sizes = (len(tail_lines), len(tail))
    if last.final and tail:
        what = f"{len(tail_lines)} line(s)" + (f" and {len(partial)} byte(s)" if partial else "")
        message = (
            f"first mismatch at line {last.line + 1}: {what} after the final checkpoint, appended after "
            "the recording ended"
        )
        return progress.report(
            template, Outcome.INSERTED, message, line=last.line + 1, end_reason=last.end, tail=sizes
        )
    if last.final:
        message = f"intact: {last.line} lines, {last.offset} bytes, t={last.t:.3f} s, ended: {last.end}"
        return progress.report(template, Outcome.INTACT, message, end_reason=last.end)
    partial_note = f" and a partial line of {len(partial)} bytes" if partial else ""
    message = (
        f"verified up to t={last.t:.3f} s (line {last.line}), unsigned tail of {len(tail_lines)} lines"
        f"{partial_note}; no final checkpoint (the session is live, or the gateway stopped before "
        "closing it)"
    )
    return progress.report(template, Outcome.TRUNCATED_TAIL, message, tail=sizes)


def _check_checkpoints(
    chain: bytes,
    public_key: Ed25519PublicKey,
    template: Report,
    expected_session_id: str | None,
) -> tuple[list[Checkpoint], list[str]] | Report:
    """Parse and check every checkpoint (signature, key, order, fields) before any content."""
    raw_lines, partial = split_lines(chain)
    notes: list[str] = []
    if partial.strip():
        notes.append(f"ignored a partial last chain line ({len(partial)} bytes): a write cut short")
    cps: list[Checkpoint] = []
    for k, raw in enumerate(ln for ln in raw_lines if ln.strip()):
        where = f"checkpoint {k} of the chain"
        failed = dataclasses.replace(template, checkpoints=k)
        try:
            cp, body = parse_checkpoint(raw)
        except ChainFormatError as exc:
            return dataclasses.replace(
                failed, outcome=Outcome.BAD_SIGNATURE, message=f"{where} is malformed: {exc}"
            )
        failed = dataclasses.replace(failed, session_id=cp.session_id)
        if cp.key != template.key_id:
            message = f"{where} is signed by key {cp.key}, not by the given key {template.key_id}"
            return dataclasses.replace(failed, outcome=Outcome.WRONG_KEY, message=message)
        try:
            public_key.verify(cp.sig, signed_payload(body))
        except InvalidSignature:
            message = f"{where}: the signature does not match its content (the checkpoint was altered)"
            return dataclasses.replace(failed, outcome=Outcome.BAD_SIGNATURE, message=message)
        cps.append(cp)
    seqs = {cp.seq for cp in cps}
    for k, cp in enumerate(cps):  # every one is authentic: now their order and coverage
        problem = _order_problem(
            cp,
            cps[k - 1] if k else None,
            k=k,
            seqs=seqs,
            stream=template.stream,
            expected_session_id=expected_session_id,
        )
        if problem is not None:
            outcome, message = problem
            return dataclasses.replace(
                template,
                outcome=outcome,
                message=f"checkpoint {k} of the chain: {message}",
                checkpoints=k,
                session_id=cp.session_id,
            )
    if not cps:
        return dataclasses.replace(template, message="the chain sidecar holds no checkpoint")
    return cps, notes


def _order_problem(
    cp: Checkpoint,
    prev: Checkpoint | None,
    *,
    k: int,
    seqs: set[int],
    stream: str,
    expected_session_id: str | None,
) -> tuple[Outcome, str] | None:
    """What is wrong with a validly signed checkpoint's place in the chain, if anything."""
    if cp.stream != stream:
        return Outcome.SESSION_MISMATCH, f"belongs to the {cp.stream!r} stream, not {stream!r}"
    sid = prev.session_id if prev is not None else expected_session_id
    if sid is not None and cp.session_id != sid:
        return Outcome.SESSION_MISMATCH, f"belongs to session {cp.session_id}, not {sid}"
    if prev is not None and prev.final:
        return Outcome.INSERTED, "a checkpoint after the final one"
    if cp.seq != k and k in seqs:
        return Outcome.REORDERED, f"has seq {cp.seq}, expected {k}: checkpoints were reordered"
    if cp.seq != k:
        return Outcome.REMOVED, f"has seq {cp.seq}, expected {k}: checkpoint {k} was removed"
    prev_line, prev_offset = (prev.line, prev.offset) if prev is not None else (0, 0)
    if cp.line < prev_line or cp.offset < prev_offset:
        return Outcome.REORDERED, "covers less than the checkpoint before it"
    if len(cp.digests) != DIGEST_BYTES * (cp.line - prev_line):
        return Outcome.BAD_SIGNATURE, "its line digests do not match its line count"
    return None


def _diagnose(cast: bytes, cps: Sequence[Checkpoint], progress: _Progress, template: Report) -> Report:
    """The chain broke after the last good checkpoint: find and classify the first bad line."""
    actual, _ = split_lines(cast[progress.offset :])
    expected: list[bytes] = []
    for cp in cps[progress.checkpoints :]:
        expected.extend(cp.line_digests())
    memo: dict[int, bytes] = {}

    def act(i: int) -> bytes | None:
        if i >= len(actual):
            return None
        if i not in memo:
            memo[i] = line_digest(actual[i])
        return memo[i]

    def exp(i: int) -> bytes | None:
        return expected[i] if i < len(expected) else None

    i = 0
    while i < len(expected) and act(i) == expected[i]:
        i += 1
    first = progress.line + i + 1  # 1-based line in the file
    if i == len(expected):  # every signed line is there, in order: only a link can differ
        message = (
            f"first mismatch in lines {progress.line + 1}..{cps[progress.checkpoints].line}: the chain "
            "link differs although every line digest matches"
        )
        return progress.report(template, Outcome.ALTERED, message, line=progress.line + 1)
    if act(i) is None:
        message = (
            f"first mismatch at line {first}: the file ends there but lines up to {cps[-1].line} were "
            "signed (the file was cut after signing)"
        )
        return progress.report(template, Outcome.REMOVED, message, line=first)
    removed = _first(lambda j: act(i) == exp(i + j))
    inserted = _first(lambda j: act(i + j) == exp(i))
    if removed == 1 and inserted == 1:
        outcome, what = Outcome.REORDERED, f"lines {first} and {first + 1} are swapped"
    elif removed is not None and inserted is not None:
        outcome, what = Outcome.REORDERED, f"line {first} was moved (lines are out of order)"
    elif removed is not None:
        outcome, what = Outcome.REMOVED, f"{removed} signed line(s) are missing before it"
    elif inserted is not None:
        outcome, what = Outcome.INSERTED, f"{inserted} line(s) were inserted there"
    elif act(i + 1) == exp(i + 1) or act(i + 1) is None:
        outcome, what = Outcome.ALTERED, f"line {first} was altered"
    else:
        outcome, what = Outcome.ALTERED, f"line {first} was altered (and lines after it differ too)"
    return progress.report(template, outcome, f"first mismatch at line {first}: {what}", line=first)


def _first(match: Callable[[int], bool]) -> int | None:
    return next((j for j in range(1, _LOCATE_WINDOW + 1) if match(j)), None)
