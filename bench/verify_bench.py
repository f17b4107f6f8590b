"""Verification speed of recordings (`python bench/verify_bench.py [--mb 100] [--repeat 3]`).

Builds a chained recording in memory with the real encoder (``asciicast.encode_event``) and
chain writer (``chain.ChainWriter``, a checkpoint every 256 KiB as the recorder writes them),
then times ``chain.verify`` on it. Two line-size profiles:

* ``session``: what a terminal session produces: 40 % small events (keystroke echo, cursor
  moves: 1-80 bytes), 40 % medium (200 B-2 KiB), 20 % bulk output chunks (2-16 KiB), with ANSI
  escape sequences;
* ``tiny``: every event 1-40 bytes (a session of nothing but keystrokes): the worst case,
  where the per-line cost of Python dominates.

Also printed: the writer's cost (hashing + line digests per batch, what the recorder's worker
thread adds per line written) and the time to locate a changed byte near the end. MB = 10^6
bytes. Target (issue 5): verify a 100 MB recording at >= 100 MB/s.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.recording.asciicast import EventCode, encode_event
from gateway.recording.chain import ChainWriter, Ed25519Signer, Outcome, verify

MB = 1e6
CHECKPOINT_BYTES = 256 * 1024
HEADER = b'{"version":2,"width":120,"height":40,"timestamp":1767225600,"rcgate":{"session_id":"ses_bench"}}\n'
ANSI = ["\x1b[2K", "\x1b[1;32m", "\x1b[0m", "\x1b[?25l", "\x1b[H", "\x1b[38;5;245m"]
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "claude",
    "edits",
    "main.py",
    "and",
    "runs",
    "pytest",
]


def machine() -> str:
    cpu = "?"
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    sha = "sha_ni" if " sha_ni" in flags else "no sha_ni"
    return (
        f"{cpu} ({os.cpu_count()} cores, {sha}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    )


def text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        piece = rng.choice(ANSI) if rng.random() < 0.15 else rng.choice(WORDS) + " "
        if rng.random() < 0.05:
            piece += "\r\n"
        out.append(piece)
        n += len(piece)
    return "".join(out)[:size]


def event_sizes(rng: random.Random, profile: str) -> int:
    if profile == "tiny":
        return rng.randint(1, 40)
    r = rng.random()
    if r < 0.4:
        return rng.randint(1, 80)
    if r < 0.8:
        return rng.randint(200, 2048)
    return rng.randint(2048, 16384)


def build(total_mb: float, profile: str, signer: Ed25519Signer) -> tuple[bytes, bytes, int, float, float]:
    """A recording of about ``total_mb`` MB: (cast, chain, lines, chain seconds, encode seconds)."""
    rng = random.Random(5)
    pool = [text(rng, size) for size in range(0, 16385, 7)]  # varied content without regenerating
    writer = ChainWriter("ses_bench", signer)
    cast: list[bytes] = [HEADER]
    chain: list[bytes] = []
    writer.feed(HEADER, 0.0)
    chain.append(writer.checkpoint(1767225600.0))
    t = 0.0
    size = len(HEADER)
    lines = 1
    batch: list[str] = []
    batch_bytes = 0
    writer_s = encode_s = 0.0
    target = int(total_mb * MB)
    while size < target:
        t += rng.expovariate(20.0)
        n = event_sizes(rng, profile)
        data = pool[n // 7][:n] or "x"
        code = EventCode.INPUT if profile == "tiny" and rng.random() < 0.5 else EventCode.OUTPUT
        start = time.perf_counter()
        line = encode_event(t, code, data)  # what the recorder's worker thread already does per line
        encode_s += time.perf_counter() - start
        batch.append(line)
        batch_bytes += len(line)
        lines += 1
        if batch_bytes >= CHECKPOINT_BYTES:
            encoded = "".join(batch).encode()
            start = time.perf_counter()
            writer.feed(encoded, t)
            chain.append(writer.checkpoint(1767225600.0 + t))
            writer_s += time.perf_counter() - start
            cast.append(encoded)
            size += len(encoded)
            batch, batch_bytes = [], 0
    encoded = "".join(batch).encode()
    start = time.perf_counter()
    writer.feed(encoded, t)
    chain.append(writer.checkpoint(1767225600.0 + t, final=True, end="bench"))
    writer_s += time.perf_counter() - start
    cast.append(encoded)
    return b"".join(cast), b"".join(chain), lines, writer_s, encode_s


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100.0, help="recording size in MB (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    ap.add_argument("--profile", choices=["session", "tiny", "both"], default="both")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer(key)
    public = key.public_key()
    print(f"machine: {machine()}")
    print(
        f"{'profile':<8} {'size':>9} {'lines':>10} {'avg line':>9} {'chain':>7}  {'verify':>9}  "
        f"{'chain writer':>23}  {'(encode)':>9}  locate 1 byte"
    )
    profiles = ["session", "tiny"] if args.profile == "both" else [args.profile]
    for profile in profiles:
        cast, chain, lines, writer_s, encode_s = build(args.mb, profile, signer)
        report = verify(cast, chain, public)
        assert report.outcome is Outcome.INTACT, report.message
        seconds = best_of(args.repeat, functools.partial(verify, cast, chain, public))
        tampered = bytearray(cast)
        at = tampered.rfind(b"x", 0, len(tampered) - 1000)
        tampered[at] = ord("y")
        changed = bytes(tampered)
        locate_s = best_of(1, functools.partial(verify, changed, chain, public))
        assert verify(changed, chain, public).outcome is Outcome.ALTERED
        print(
            f"{profile:<8} {len(cast) / MB:>6.1f} MB {lines:>10,} {len(cast) / lines:>7.0f} B "
            f"{len(chain) / len(cast):>7.1%}  {len(cast) / MB / seconds:>4.0f} MB/s  "
            f"{len(cast) / MB / writer_s:>4.0f} MB/s {writer_s / lines * 1e6:>5.2f} us/line  "
            f"{encode_s / lines * 1e6:>4.2f} us  {locate_s:.2f} s"
        )
    print("verify: best of", args.repeat, "runs of chain.verify on the whole file in memory (read excluded)")
    print("chain writer: ChainWriter.feed + checkpoint per 256 KiB batch (what the chain adds to the")
    print("  recorder's worker thread); (encode): encode_event per line, which the recorder already did")
    print("chain: size of the .chain sidecar relative to the .cast")


if __name__ == "__main__":
    main()
