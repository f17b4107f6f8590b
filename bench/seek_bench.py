"""Seek speed in a long recording (`python bench/seek_bench.py [--mb 100] [--hours 1] [--points 10]`).

Writes a synthetic recording the way the recorder does: a ``.cast`` of session-like output
(prompts, coloured lines, full-screen redraws, bursts of build output) spread over ``--hours``,
hashed into its chain with a checkpoint every 10 s or 256 KiB (``chain.ChainWriter``), then
builds its seek index (``seekindex.build_seek_index``: pyte, a keyframe per checkpoint).

Then, at ``--points`` times spread over the recording, measures what the server does for
``GET /api/recordings/{id}/cast?from=T`` up to its first frame (``Catalog.seek`` and the first
chunk of ``CastSeeker.chunks``: header + screen snapshot + 256 KiB of events):

* cold: a new ``Catalog`` per point (the ``.seek`` file is read and parsed, the keyframe's
  signature checked), with the OS page cache dropped for neither file (it is warm after the
  build; see --drop-note in the README);
* warm: the same ``Catalog`` (its parsed index cached).

Also printed: building the index (MB/s of ``.cast``), the index's size, and for comparison what
starting at T costs without an index (reading the ``.cast`` up to T). Target (issue 5): first
frame at any point of a 1-hour 100 MB recording in <= 300 ms, server side.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.search_bench import machine
from gateway.recording.asciicast import EventCode, encode_event
from gateway.recording.catalog import Catalog
from gateway.recording.chain import ChainWriter, Ed25519Signer
from gateway.recording.seekindex import build_seek_index, seek_path_of

MB = 1e6
CHECKPOINT_BYTES = 256 * 1024
CHECKPOINT_S = 10.0
SID = "ses_seekbench"
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "claude", "edits", "main.py"]


def chunk(rng: random.Random, size: int) -> str:
    kind = rng.random()
    if kind < 0.1:  # a full-screen redraw
        rows = [
            f"\x1b[{y};1H\x1b[2K\x1b[38;5;{rng.randrange(256)}m" + " ".join(rng.choices(WORDS, k=12))
            for y in range(1, 41)
        ]
        return "\x1b[H\x1b[2J" + "".join(rows) + "\x1b[0m"
    lines = []
    n = 0
    while n < size:
        line = (
            f"\x1b[1;32m{rng.randrange(10**6):06d}\x1b[0m "
            + " ".join(rng.choices(WORDS, k=rng.randrange(4, 16)))
            + "\r\n"
        )
        lines.append(line)
        n += len(line)
    return "".join(lines)


def write_recording(path: Path, signer: Ed25519Signer, mb: float, hours: float) -> tuple[int, int, float]:
    rng = random.Random(42)
    target = int(mb * MB)
    duration = hours * 3600
    events_n = int(duration / 0.1)
    per_event = max(target // events_n, 64)
    chain = ChainWriter(SID, signer)
    header = (
        f'{{"version":2,"width":120,"height":40,"timestamp":1767225600,"rcgate":{{"session_id":"{SID}",'
        '"owner_id":"usr_a","owner_name":"alice","host":"bench","cwd":"/","command":["bash"],"labels":{}}}\n'
    ).encode()
    size = 0
    checkpoints = 0
    with path.open("wb") as cast, path.with_suffix(".chain").open("wb") as side:
        cast.write(header)
        chain.feed(header, 0.0)
        side.write(chain.checkpoint(1767225600.0))
        last_cp = 0.0
        t = 0.0
        batch: list[str] = []
        while size < target:
            t = max(t, duration * size / target)  # spread evenly over the whole duration
            line = encode_event(
                t, EventCode.OUTPUT, chunk(rng, rng.randrange(per_event // 2, per_event * 3 // 2))
            )
            batch.append(line)
            size += len(line)
            if len(batch) >= 8:  # the recorder writes batches, checkpoints after a batch
                data = "".join(batch).encode()
                batch = []
                cast.write(data)
                chain.feed(data, t)
                if chain.unsigned_bytes >= CHECKPOINT_BYTES or t - last_cp >= CHECKPOINT_S:
                    side.write(chain.checkpoint(1767225600.0 + t))
                    last_cp = t
                    checkpoints += 1
        data = "".join(batch).encode() + encode_event(t, EventCode.MARKER, "end: bench").encode()
        cast.write(data)
        chain.feed(data, t)
        side.write(chain.checkpoint(1767225600.0 + t, final=True, end="bench"))
    return path.stat().st_size, checkpoints, t


def first_frame(catalog: Catalog, t: float) -> tuple[float, int, float]:
    began = time.perf_counter()
    seeker, start = catalog.seek(SID, t)
    chunks = seeker.chunks(start)
    first = next(chunks) + next(chunks, b"")  # header + snapshot, then the first 256 KiB of events
    elapsed = time.perf_counter() - began
    chunks.close()
    return elapsed, len(first), start.base_t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=100.0)
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = p.parse_args()
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer(key)
    with tempfile.TemporaryDirectory(prefix="rcgate-seek-", dir=args.dir) as tmp:
        root = Path(tmp) / "recordings"
        month = root / "2026" / "01"
        month.mkdir(parents=True)
        cast = month / f"{SID}.cast"
        t0 = time.perf_counter()
        size, checkpoints, last_t = write_recording(cast, signer, args.mb, args.hours)
        print(
            f"wrote {size / MB:.1f} MB, {checkpoints} checkpoints in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        t0 = time.perf_counter()
        built = build_seek_index(cast, signer)
        build_s = time.perf_counter() - t0
        seek_size = seek_path_of(cast).stat().st_size
        duration = args.hours * 3600
        points = [duration * (i + 0.5) / args.points for i in range(args.points)]
        rows = []
        warm_catalog = Catalog(root, key.public_key(), index_dir=Path(tmp) / "idx")
        for t in points:
            cold, n, base = first_frame(Catalog(root, key.public_key(), index_dir=Path(tmp) / "idx"), t)
            warm, _, _ = first_frame(warm_catalog, t)
            warm, _, _ = first_frame(warm_catalog, t)
            rows.append((t, base, cold, warm, n))
        # Without an index: read the .cast from the start up to T (what the player would need).
        t0 = time.perf_counter()
        with cast.open("rb") as f:
            while f.read(8 * 1024 * 1024):
                pass
        read_all = time.perf_counter() - t0
        print()
        print(f"machine: {machine()}")
        print(
            f"recording: {size / MB:.1f} MB, {last_t / 3600:.2f} h, {checkpoints + 2} checkpoints; "
            f"seek index: {built.keyframes} keyframes, {seek_size / MB:.2f} MB, "
            f"built in {build_s:.1f} s ({size / MB / build_s:.2f} MB/s of .cast)"
        )
        print()
        print("| seek to (s) | keyframe at (s) | first frame, cold (ms) | warm (ms) | bytes in first frame |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for t, base, cold, warm, n in rows:
            print(f"| {t:8.0f} | {base:8.1f} | {cold * 1000:8.1f} | {warm * 1000:8.1f} | {n} |")
        worst = max(r[2] for r in rows)
        print()
        verdict = "PASS" if worst <= 0.3 else "FAIL"
        print(f"worst cold first frame: {worst * 1000:.1f} ms (target <= 300 ms: {verdict})")
        print(
            f"for comparison, only reading the whole .cast once (page cache warm): {read_all * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
