"""The hash chain and its verifier, pure: each way of tampering gets its outcome, line and exit code."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.recording.chain import (
    STREAM_AUDIT,
    ChainWriter,
    Ed25519Signer,
    Outcome,
    Report,
    exit_code_of,
    fingerprint,
    genesis,
    split_lines,
    verify,
)
from tests.unit.test_architecture import FORBIDDEN, imported_roots

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
SID = "ses_chain"
T0 = 1_767_225_600.0
LINES = 45  # the header and 44 events
EVERY = 10  # a checkpoint after lines 10, 20, 30, 40; the final one covers 41..45


def event(n: int) -> bytes:
    """File line ``n`` (2..): an output event at t = n/10 s."""
    return json.dumps([n / 10, "o", f"line {n}\r\n"]).encode() + b"\n"


HEADER = b'{"version":2,"width":80,"height":24,"rcgate":{"session_id":"ses_chain"}}\n'
ORIGINAL = [HEADER] + [event(n) for n in range(2, LINES + 1)]


@dataclass
class Recording:
    lines: list[bytes]  # lines[0] is file line 1
    chain: list[bytes]  # one checkpoint per item

    @property
    def cast(self) -> bytes:
        return b"".join(self.lines)

    @property
    def chain_bytes(self) -> bytes:
        return b"".join(self.chain)

    def verify(self, key: Ed25519PrivateKey = KEY, **kwargs: str) -> Report:
        return verify(self.cast, self.chain_bytes, key.public_key(), **kwargs)


def record(
    lines: list[bytes] = ORIGINAL,
    *,
    final: bool = True,
    key: Ed25519PrivateKey = KEY,
    sid: str = SID,
    stream: str = "cast",
) -> Recording:
    writer = ChainWriter(sid, Ed25519Signer(key), stream)
    chain = []
    for n, line in enumerate(lines, start=1):
        writer.feed(line, n / 10)
        if n % EVERY == 0:
            chain.append(writer.checkpoint(T0 + n))
    if final:
        chain.append(writer.checkpoint(T0 + 100, final=True, end="owner stopped sharing"))
    return Recording(list(lines), chain)


def checkpoint_json(line: bytes) -> dict[str, object]:
    obj = json.loads(line)
    assert isinstance(obj, dict)
    return obj


def dumps(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


# --- the format, pinned -------------------------------------------------------------------------


def test_the_chain_is_sha256_over_the_previous_link_and_the_exact_line_bytes() -> None:
    rec = record()
    link = hashlib.sha256(b"rcgate-chain-v1" + SID.encode()).digest()
    assert link == genesis(SID)
    for line in ORIGINAL[:EVERY]:
        link = hashlib.sha256(link + line).digest()
    first = checkpoint_json(rec.chain[0])
    assert first["link"] == link.hex()
    assert (first["line"], first["offset"], first["seq"]) == (EVERY, sum(map(len, ORIGINAL[:EVERY])), 0)
    assert base64.b64decode(str(first["digests"])) == b"".join(
        hashlib.sha256(ln).digest()[:8] for ln in ORIGINAL[:EVERY]
    )
    assert (
        genesis(SID, STREAM_AUDIT) == hashlib.sha256(b"rcgate-chain-v1" + SID.encode() + b"/audit").digest()
    )


def test_a_checkpoint_is_signed_over_its_canonical_json_with_a_domain_prefix() -> None:
    obj = checkpoint_json(record().chain[-1])
    sig = base64.b64decode(str(obj.pop("sig")))
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    PUB.verify(sig, b"rcgate-checkpoint-v1\n" + canonical)  # raises if not
    assert obj["final"] is True and obj["end"] == "owner stopped sharing"
    assert obj["key"] == fingerprint(PUB) and str(obj["key"]).startswith("SHA256:")
    assert (obj["v"], obj["stream"], obj["session_id"]) == (1, "cast", SID)


def test_the_writer_hashes_whole_lines_only() -> None:
    writer = ChainWriter(SID, Ed25519Signer(KEY))
    with pytest.raises(ValueError, match="whole lines"):
        writer.feed(b"no newline", 0.0)


def test_lines_split_at_lf_only_even_with_a_carriage_return_inside() -> None:
    assert split_lines(b"a\rb\nc\n\nd") == ([b"a\rb\n", b"c\n", b"\n"], b"d")
    assert split_lines(b"") == ([], b"")


def test_chain_py_is_pure() -> None:
    path = Path(__file__).resolve().parents[2] / "gateway" / "recording" / "chain.py"
    assert not imported_roots(path) & FORBIDDEN


# --- verdicts ----------------------------------------------------------------------------------


def test_an_untouched_recording_is_intact() -> None:
    report = record().verify(expected_session_id=SID)
    assert report.outcome is Outcome.INTACT and report.exit_code == 0
    assert (report.verified_lines, report.checkpoints, report.end_reason) == (
        LINES,
        5,
        "owner stopped sharing",
    )
    assert report.verified_bytes == len(b"".join(ORIGINAL))


def change_byte(n: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(lines: list[bytes]) -> list[bytes]:
        out = list(lines)
        out[n - 1] = out[n - 1].replace(b"line", b"lime", 1).replace(b"80", b"81", 1)
        return out

    return tamper


def remove(n: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: lines[: n - 1] + lines[n:]


def swap(n: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[: n - 1], lines[n], lines[n - 1], *lines[n + 1 :]]


def insert(n: int, line: bytes = b'[1.55, "o", "rm -rf /"]\n') -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[: n - 1], line, *lines[n - 1 :]]


TAMPERING = [
    # name, what is done to the file's lines, outcome, first bad line (1-based; the header is 1)
    ("one byte changed", change_byte(15), Outcome.ALTERED, 15),
    ("the header changed", change_byte(1), Outcome.ALTERED, 1),
    ("a byte in the final interval", change_byte(44), Outcome.ALTERED, 44),
    (
        "a carriage return slipped in",
        lambda ls: [*ls[:14], ls[14][:-2] + b"\r\n", *ls[15:]],
        Outcome.ALTERED,
        15,
    ),
    ("a line removed", remove(15), Outcome.REMOVED, 15),
    ("a line removed at a checkpoint", remove(21), Outcome.REMOVED, 21),
    ("three lines removed", lambda ls: ls[:14] + ls[17:], Outcome.REMOVED, 15),
    ("two lines swapped", swap(15), Outcome.REORDERED, 15),
    ("two lines swapped across a checkpoint", swap(10), Outcome.REORDERED, 10),
    ("a line moved further", lambda ls: [*ls[:14], *ls[15:19], ls[14], *ls[19:]], Outcome.REORDERED, 15),
    ("a line inserted", insert(15), Outcome.INSERTED, 15),
    ("a line appended after the end", lambda ls: [*ls, b'[9.9, "o", "x"]\n'], Outcome.INSERTED, 46),
    ("the signed end cut off", lambda ls: ls[:30], Outcome.REMOVED, 31),
    ("everything but the header gone", lambda ls: ls[:1], Outcome.REMOVED, 2),
]


@pytest.mark.parametrize(
    ("tamper", "outcome", "line"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampering_with_the_cast_is_found_and_located(
    tamper: Callable[[list[bytes]], list[bytes]], outcome: Outcome, line: int
) -> None:
    rec = record()
    rec.lines = tamper(rec.lines)
    report = rec.verify()
    assert (report.outcome, report.line) == (outcome, line), report.message
    assert report.exit_code == 1 and report.tampered
    assert f"line {line}" in report.message


def test_a_byte_changed_is_reported_with_how_far_the_file_is_good() -> None:
    rec = record()
    rec.lines = change_byte(25)(rec.lines)
    report = rec.verify()
    assert report.message == "first mismatch at line 25: line 25 was altered"
    assert (report.checkpoints, report.verified_lines, report.verified_t) == (2, 20, 2.0)


def test_a_crash_leaves_an_unsigned_tail_not_tampering() -> None:
    rec = record(final=False)  # checkpoints after 10, 20, 30, 40; lines 41..45 never signed
    report = rec.verify()
    assert report.outcome is Outcome.TRUNCATED_TAIL and report.exit_code == 2
    assert report.message.startswith("verified up to t=4.000 s (line 40), unsigned tail of 5 lines")
    assert (report.tail_lines, report.verified_lines) == (5, 40)


def test_a_crash_in_the_middle_of_a_line_is_still_an_unsigned_tail() -> None:
    rec = record(final=False)
    rec.lines[-1] = rec.lines[-1][:7]  # the last write was cut short
    report = rec.verify()
    assert report.outcome is Outcome.TRUNCATED_TAIL
    assert "unsigned tail of 4 lines and a partial line of 7 bytes" in report.message


def test_the_tail_cut_right_after_the_last_checkpoint_is_unsigned_not_intact() -> None:
    rec = record(final=False)
    rec.lines = rec.lines[:40]
    report = rec.verify()
    assert report.outcome is Outcome.TRUNCATED_TAIL and report.tail_lines == 0
    assert "no final checkpoint" in report.message


def resign(line: bytes, signer: Ed25519PrivateKey, **changes: object) -> bytes:
    """A checkpoint with ``changes``, signed by ``signer`` (an attacker's key, or the real one)."""
    obj = checkpoint_json(line)
    obj.pop("sig")
    obj.update(changes)
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    obj["sig"] = base64.b64encode(signer.sign(b"rcgate-checkpoint-v1\n" + canonical)).decode()
    return dumps(obj)


FOREIGN = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


def flip_sig(line: bytes) -> bytes:
    obj = checkpoint_json(line)
    sig = bytearray(base64.b64decode(str(obj["sig"])))
    sig[0] ^= 1
    obj["sig"] = base64.b64encode(bytes(sig)).decode()
    return dumps(obj)


def edit(line: bytes, **changes: object) -> bytes:
    return dumps({**checkpoint_json(line), **changes})


CHAIN_TAMPERING = [
    ("a signature altered", lambda c: [c[0], flip_sig(c[1]), *c[2:]], Outcome.BAD_SIGNATURE),
    ("a signed field altered", lambda c: [c[0], edit(c[1], t=99.0), *c[2:]], Outcome.BAD_SIGNATURE),
    ("a field added", lambda c: [c[0], edit(c[1], note="fine"), *c[2:]], Outcome.BAD_SIGNATURE),
    ("garbage", lambda c: [c[0], b"{not json\n", *c[2:]], Outcome.BAD_SIGNATURE),
    (
        "re-signed by an attacker",
        lambda c: [resign(x, FOREIGN, key=fingerprint(FOREIGN.public_key())) for x in c],
        Outcome.WRONG_KEY,
    ),
    (
        "re-signed by an attacker claiming the real key",
        lambda c: [resign(x, FOREIGN, key=fingerprint(PUB)) for x in c],
        Outcome.BAD_SIGNATURE,
    ),
    ("a checkpoint removed", lambda c: [c[0], *c[2:]], Outcome.REMOVED),
    ("checkpoints swapped", lambda c: [c[1], c[0], *c[2:]], Outcome.REORDERED),
    ("a checkpoint after the final one", lambda c: [*c, c[-1]], Outcome.INSERTED),
]


@pytest.mark.parametrize(
    ("tamper", "outcome"), [t[1:] for t in CHAIN_TAMPERING], ids=[t[0] for t in CHAIN_TAMPERING]
)
def test_tampering_with_the_checkpoints_is_found(
    tamper: Callable[[list[bytes]], list[bytes]], outcome: Outcome
) -> None:
    rec = record()
    rec.chain = tamper(rec.chain)
    report = rec.verify()
    assert report.outcome is outcome, report.message
    assert report.exit_code == 1


def test_a_foreign_public_key_is_named_as_such() -> None:
    report = record().verify(key=FOREIGN)
    assert report.outcome is Outcome.WRONG_KEY and report.exit_code == 1
    assert fingerprint(PUB) in report.message and fingerprint(FOREIGN.public_key()) in report.message


def test_removing_the_final_checkpoint_never_verifies_as_intact() -> None:
    rec = record()
    rec.chain = rec.chain[:-1]
    report = rec.verify()
    assert report.outcome is Outcome.TRUNCATED_TAIL and report.exit_code == 2


def test_a_checkpoint_cut_mid_write_is_ignored_with_a_note() -> None:
    rec = record()
    rec.chain[-1] = rec.chain[-1][:40]  # the crash hit while writing the final checkpoint
    report = rec.verify()
    assert report.outcome is Outcome.TRUNCATED_TAIL
    assert any("partial last chain line" in n for n in report.notes)


@pytest.mark.parametrize("chain", [None, b"", b"\n\n"], ids=["no file", "empty", "blank"])
def test_a_missing_chain_is_reported(chain: bytes | None) -> None:
    report = verify(record().cast, chain, PUB)
    assert report.outcome is Outcome.MISSING_CHAIN and report.exit_code == 1


def test_another_sessions_chain_is_a_mismatch() -> None:
    other = record(sid="ses_other")
    report = other.verify(expected_session_id=SID)
    assert report.outcome is Outcome.SESSION_MISMATCH and report.exit_code == 1


def test_the_audit_chain_does_not_verify_the_cast() -> None:
    audit = record(stream=STREAM_AUDIT)
    assert audit.verify(stream=STREAM_AUDIT).outcome is Outcome.INTACT
    assert audit.verify().outcome is Outcome.SESSION_MISMATCH


def test_one_exit_code_for_several_streams() -> None:
    intact, tail = record().verify(), record(final=False).verify()
    bad = verify(record().cast, None, PUB)
    assert exit_code_of([intact, intact]) == 0
    assert exit_code_of([intact, tail]) == 2
    assert exit_code_of([tail, bad]) == 1
