"""What writing the seek index while recording costs: the same bulk output recorded without and
with the live index thread (``recordings.seek_index: live``), CPU and wall time of this process.

    .venv/bin/python bench/seek_cost_bench.py [--mb 20] [--chunk 32768]

The baseline is the recorder without a live index (the default mode, ``after``, builds the index
in a niced subprocess once the session is over). Output is 80-byte coloured lines written as
fast as the recorder's flow control lets them in. ``close`` waits up to 5 s for the index thread.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.search_bench import machine
from gateway.core.ids import SessionId, UserId
from gateway.recording.recorder import RecorderFactory
from gateway.sessions.ports import SessionMeta

META = SessionMeta(owner_id=UserId("usr_b"), owner_name="bench", host="h", cwd="/", command=("sh",))
LINE = b"\x1b[32mCompiling\x1b[0m crate src/main.rs ok: 1234 warnings, unused variable foo bar\r\n"


async def record(live_index: bool, mb: int, chunk: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="rcgate-seek-cost-") as tmp:
        factory = RecorderFactory(Path(tmp), signing_key=Ed25519PrivateKey.generate(), seek_index=live_index)
        recorder = await factory(SessionId("ses_bench"), META, lambda _: None)
        task = asyncio.ensure_future(recorder.run())
        data = (LINE * (chunk // len(LINE) + 1))[:chunk]
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(mb * 1024 * 1024 // chunk):
            recorder.output(data)
            await recorder.drain()
            await asyncio.sleep(0)
        await recorder.close("end")
        await task
        return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=32768)
    args = ap.parse_args()
    base_cpu, base_wall = asyncio.run(record(False, args.mb, args.chunk))
    live_cpu, live_wall = asyncio.run(record(True, args.mb, args.chunk))
    print(f"machine: {machine()}")
    print(f"{args.mb} MB of output in {args.chunk}-byte chunks\n")
    print("| recorder | CPU s | wall s | CPU vs baseline |")
    print("| --- | --- | --- | --- |")
    print(f"| no live index (baseline; `seek_index: after`) | {base_cpu:.2f} | {base_wall:.2f} | 1.0 |")
    ratio = live_cpu / base_cpu
    print(f"| live index thread (`seek_index: live`) | {live_cpu:.2f} | {live_wall:.2f} | {ratio:.1f} |")


if __name__ == "__main__":
    main()
