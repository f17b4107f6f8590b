"""Full-text search speed (`python bench/search_bench.py [--mb 1024] [--recordings 64] [--keep DIR]`).

Generates ``--mb`` MB of asciicast v2 recordings (MB = 10^6 bytes) spread over ``--recordings``
files in the gateway's layout (``<root>/2026/01/<id>.cast``), each a terminal session: prompts,
typed commands (one input event per key), and output in bursts of 1-200 lines (program output
with ANSI colour and cursor sequences, 20 % of events within 0.1 s of the previous one, pauses
of up to 30 s). One command, ``deploy-canary-7f3a``, is typed in a single recording near the end.

Then, with ``gateway.recording.search.Searcher`` exactly as the gateway calls it:

* **cold**: the first search, which builds every text index (a one-off per recording; the
  gateway does it lazily on the first search that needs it; budget raised so it finishes);
* **warm**: searches with the indexes built: the rare command (2 hits), an absent string (a full
  scan of every index: the worst case), and a common word (stops at 100 hits).

Target (issue 5): a search across 1 GB of recordings answers in <= 2 s (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.recording.search import Searcher, SearchLimits, SearchResult

MB = 1e6
RARE = "deploy-canary-7f3a"
ANSI = ["\x1b[1;32m", "\x1b[0m", "\x1b[38;5;245m", "\x1b[2K", "\x1b[K", "\x1b[?25l", "\x1b[?25h"]
WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "claude", "edits",
    "main.py", "and", "runs", "pytest", "collected", "passed", "failed", "error", "warning", "build",
    "step", "docker", "image", "layer", "cache", "pushed", "pulled",
]  # fmt: skip
COMMANDS = ["ls -la", "git status", "pytest -q", "make build", "docker ps", "cat README.md", "vim app.py"]


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu} ({os.cpu_count()} cores, {mem}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def output_line(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = rng.choice(ANSI) + words[i] + "\x1b[0m"
    return " ".join(words) + "\r\n"


def write_recording(path: Path, size: int, rng: random.Random, *, rare: bool) -> int:
    header = {"version": 2, "width": 120, "height": 40, "timestamp": 1767225600, "title": path.stem}
    out = [json.dumps(header) + "\n"]
    n, t = len(out[0]), 0.0
    rare_at = int(size * 0.9) if rare else -1
    while n < size:
        command = RARE if 0 <= rare_at <= n else rng.choice(COMMANDS)
        if command == RARE:
            rare_at = -1
        t += rng.uniform(0.5, 30.0)
        lines = [json.dumps([round(t, 6), "o", "\x1b[1;34muser@host\x1b[0m:~/app$ "]) + "\n"]
        for ch in command + "\r":
            t += rng.uniform(0.05, 0.25)
            lines.append(json.dumps([round(t, 6), "i", ch]) + "\n")
            lines.append(json.dumps([round(t + 0.002, 6), "o", ch if ch != "\r" else "\r\n"]) + "\n")
        for _ in range(rng.randint(1, 8)):  # bursts of output
            t += rng.uniform(0.001, 0.09) if rng.random() < 0.2 else rng.uniform(0.1, 2.0)
            burst = "".join(output_line(rng) for _ in range(rng.randint(1, 25)))
            lines.append(json.dumps([round(t, 6), "o", burst], ensure_ascii=False) + "\n")
        chunk = "".join(lines)
        out.append(chunk)
        n += len(chunk.encode())
    data = "".join(out).encode()
    path.write_bytes(data)
    return len(data)


def generate(root: Path, total_mb: int, count: int) -> list[Path]:
    rng = random.Random(5)
    folder = root / "2026" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    per = int(total_mb * MB / count)
    paths = []
    for i in range(count):
        p = folder / f"ses_bench{i:04d}.cast"
        write_recording(p, per, rng, rare=i == count // 2)
        paths.append(p)
    return paths


def run(
    searcher: Searcher, casts: list[Path], query: str, limits: SearchLimits
) -> tuple[float, SearchResult]:
    began = time.perf_counter()
    result = searcher.search(casts, query, limits)
    return time.perf_counter() - began, result


def describe(result: SearchResult) -> str:
    extra = f", truncated ({result.reason})" if result.truncated else ""
    return f"{len(result.hits)} hits in {result.searched} recordings{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=1024, help="MB of recordings to generate (default 1024)")
    ap.add_argument("--recordings", type=int, default=64, help="number of recordings (default 64)")
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per query, median (default 5)")
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="rcgate-search-bench-"))
    try:
        print(f"machine: {machine()}")
        t0 = time.perf_counter()
        casts = generate(work / "recordings", args.mb, args.recordings)
        size = sum(p.stat().st_size for p in casts)
        print(f"generated {size / MB:.0f} MB in {len(casts)} recordings in {time.perf_counter() - t0:.1f} s")
        searcher = Searcher(work / "index")
        cold_s, cold = run(searcher, casts, RARE, SearchLimits(time_s=600, index_time_s=3600))
        index_mb = sum(p.stat().st_size for p in (work / "index").glob("*.idx")) / MB
        print(
            f"cold (builds {cold.indexed} indexes, {index_mb:.0f} MB): {cold_s:.2f} s = "
            f"{size / MB / cold_s:.0f} MB/s; {describe(cold)}"
        )
        for label, query in (("rare command", RARE), ("absent (full scan)", "no-such-text-anywhere"),
                             ("common word", "pytest")):  # fmt: skip
            times, result = [], None
            for _ in range(args.repeat):
                seconds, result = run(searcher, casts, query, SearchLimits())
                times.append(seconds)
            assert result is not None
            med = statistics.median(times)
            verdict = "OK" if med <= 2.0 else "OVER the 2 s target"
            print(f"warm {label:<20} median {med:.3f} s (min {min(times):.3f}) = "
                  f"{size / MB / med:,.0f} MB/s; {describe(result)}  [{verdict}]")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
