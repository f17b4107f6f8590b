"""rcgate benchmark: `make bench` (= .venv/bin/python bench/run.py [--quick] [--profile DIR]).

Processes: this driver (the participants' WebSocket clients, the direct PTY baseline, the idle
connectors of the RSS test), the gateway in a process of its own (``harness.py gateway``:
``running_gateway``, embedded store, free ports), and for each measured session a real
`rcgate share -- sh -c ...` subprocess logged in with a certificate from the gateway CA. All on
loopback on one machine: the processes share its cores. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import harness as h

ECHO_SCRIPT = "stty raw -echo; printf R; exec cat"  # R: ready; then every key comes back as is
KEY = json.dumps({"t": "in", "d": "x"})
MB = 1e6
LINE = ("rcgate bench " * 7)[:79]  # bulk output: lines of printable text, 80 bytes with the newline


@dataclass
class Row:
    what: str
    value: str
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


@dataclass
class Received:
    """What one participant got in a bulk run."""

    got: int = 0  # output bytes
    at: float = 0.0  # when the last one came
    reason: str = ""  # why the stream closed, if it did before ``want``
    resumes: int = 0  # reconnections after "too slow"
    lost: int = 0  # bytes that fell out of the scrollback meanwhile


@dataclass
class BulkResult:
    delivered: int
    seconds: float
    cpu: dict[str, float]  # CPU used, in cores (1.0 = one core busy for the whole run)
    received: list[Received]
    wanted: int  # bytes for all participants together
    stalled_reason: str = ""

    @property
    def mbps(self) -> float:
        return self.delivered / MB / self.seconds

    @property
    def resumes(self) -> int:
        return sum(r.resumes for r in self.received)


def median(runs: list[BulkResult]) -> float:
    return statistics.median(r.mbps for r in runs)


def rate(runs: list[BulkResult]) -> str:
    """The median rate, and how often participants were cut off as "too slow" (all runs)."""
    resumes = sum(r.resumes for r in runs)
    lost = sum(x.lost for r in runs for x in r.received) / sum(r.wanted for r in runs)
    return f"{median(runs):.1f} MB/s" + (f" ({resumes} cut off, {lost:.0%} lost)" if resumes else "")


def summary(runs: list[BulkResult]) -> str:
    """Every run's rate; the CPU each process used in the median run; resumes."""
    mid = sorted(runs, key=lambda r: r.mbps)[len(runs) // 2]
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in mid.cpu.items())
    resumes = sum(r.resumes for r in runs)
    lost = sum(x.lost for r in runs for x in r.received)
    more = f"; {resumes} resumes after 'too slow' ({lost / MB:.1f} MB lost)" if resumes else ""
    return ", ".join(f"{r.mbps:.1f}" for r in runs) + f" MB/s; cores used: {cpu}{more}"


@dataclass
class Bench:
    args: argparse.Namespace
    gw: h.GatewayProc
    owner: h.Browser
    viewer: h.Browser
    profiler: h.Profiler
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0

    # --- 1. keystroke to echo --------------------------------------------------------------

    async def latency(self) -> None:
        n = self.args.keys
        base = await pty_baseline(n)
        proc = h.share(self.gw.work, "echo", ECHO_SCRIPT)
        try:
            sid = await self.owner.session_id("echo", proc)
            [part] = await h.participations(self.owner, self.viewer, sid, "approved_execution", 1)
            ws = await h.attach(self.viewer, part)
            probe, ready, typing = h.EchoProbe(), asyncio.Event(), asyncio.Event()
            held: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            async def read() -> None:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        if ready.is_set():
                            probe.feed(len(msg.data) - 8, time.perf_counter())
                        elif b"R" in msg.data[8:]:
                            ready.set()
                    elif (m := json.loads(msg.data))["t"] == "verdict" and m["state"] == "held":
                        held.set_result(m["action_id"])
                    elif m["t"] == "mode" and m["mode"] == "privileged":
                        typing.set()

            reader = asyncio.create_task(read())
            await h.become_privileged(ws, self.owner, held)
            await asyncio.wait_for(asyncio.gather(ready.wait(), typing.wait()), 20)
            await probe.run(lambda: ws.send_str(KEY), 20, None)  # warm-up
            runs = {"back to back": await probe.run(lambda: ws.send_str(KEY), n, None)}
            pids = {"gateway": self.gw.pid, "connector": proc.pid, "driver": os.getpid()}
            cpu0 = {k: h.cpu_s(p) for k, p in pids.items()}
            self.profiler.start("echo", {"gateway": self.gw.pid, "connector": proc.pid})
            runs["paced 20 ms"] = await probe.run(lambda: ws.send_str(KEY), n, 0.02)
            self.notes += self.profiler.stop()
            per_key = ", ".join(f"{k} {(h.cpu_s(p) - cpu0[k]) / n * 1e6:.0f} µs" for k, p in pids.items())
            self.notes.append(f"echo paced: CPU time per key: {per_key}")
            await ws.close()
            reader.cancel()
        finally:
            proc.terminate()
            h.end_share(proc)
        for label, ms in runs.items():
            paced = label.startswith("paced")
            for p, limit in ((50, 1.0), (99, 5.0)):
                got, floor = h.percentile(ms, p), h.percentile(base[label], p)
                value = f"{got:.2f} ms (PTY {floor:.3f} ms, x{got / floor:.0f})"
                target = f"≤ {limit:g} ms" if paced else ""
                self.rows.append(
                    Row(f"echo {label}, {n} keys: p{p}", value, target, got <= limit if paced else None)
                )

    # --- 2./3. bulk output -------------------------------------------------------------------

    async def bulk(
        self,
        clients: int,
        nbytes: int,
        *,
        recording: bool = True,
        stalled: int = 0,
        deflate: bool = False,
        shipped: bool = False,
        profile: str = "",
    ) -> BulkResult:
        """``nbytes`` of text printed at once, to ``clients`` participants (+ ``stalled`` that never
        read). Unless ``shipped``, the connector may buffer the whole burst (see harness.share)."""
        self.runs += 1
        name, fifo = f"bulk{self.runs}", self.gw.work / f"bulk{self.runs}.fifo"
        os.mkfifo(fifo)
        script = f"stty raw -echo; read go < {fifo}; yes '{LINE}' | head -c {nbytes}"
        replay_mib = 0 if shipped else nbytes // 2**20 + 64
        proc = h.share(self.gw.work, name, script, recording=recording, replay_mib=replay_mib)
        try:
            sid = await self.owner.session_id(name, proc)
            parts = await h.participations(self.owner, self.viewer, sid, "view_only", clients + stalled)
            sockets = [await h.attach(self.viewer, p, deflate=deflate) for p in parts]
            pids = {"gateway": self.gw.pid, "connector": proc.pid, "driver": os.getpid()}
            cpu0, busy0 = {k: h.cpu_s(p) for k, p in pids.items()}, h.busy_s()
            counting = [
                asyncio.create_task(receive(self.viewer, parts[i], sockets[i], nbytes, deflate))
                for i in range(clients)
            ]
            if profile:
                self.profiler.start(profile, {"gateway": self.gw.pid, "connector": proc.pid})
            t0 = time.perf_counter()
            await go(fifo)
            done = await asyncio.wait_for(asyncio.gather(*counting), self.args.timeout)
            seconds = max(r.at for r in done) - t0
            cpu = {k: (h.cpu_s(p) - cpu0[k]) / seconds for k, p in pids.items()}
            cpu["rest of the machine"] = (h.busy_s() - busy0) / seconds - sum(cpu.values())
            self.notes += self.profiler.stop()
            result = BulkResult(sum(r.got for r in done), seconds, cpu, list(done), clients * nbytes)
            for ws in sockets[clients:]:  # what became of the participant that never read
                never = await asyncio.wait_for(receive(self.viewer, "", ws, 1 << 62), 30)
                result.stalled_reason = never.reason or "not cut off"
            for ws in sockets:
                await ws.close()
        finally:
            h.end_share(proc)
        return result

    async def throughput(self) -> None:
        mb = self.args.mb
        burst = await self.bulk(1, int(mb * MB), shipped=True)
        [r] = burst.received
        value = f"{r.reason} after {r.got / MB:.0f} MB" if r.got < mb * MB else "complete"
        self.rows.append(
            Row(f"{mb} MB burst, shipped connector (8 MiB replay)", value, "completes", r.reason == "")
        )
        for clients, size in ((1, mb), (10, mb // 2), (100, mb // 10)):
            on: list[BulkResult] = []
            off: list[BulkResult] = []
            for i in range(self.args.repeat):  # interleaved: drift in the machine's load hits both
                tag = f"bulk{clients}" if i == 0 and clients != 10 else ""  # py-spy with --profile
                on.append(await self.bulk(clients, int(size * MB), profile=tag))
                off.append(await self.bulk(clients, int(size * MB), recording=False))
            self.notes.append(f"bulk, recording on ({clients} x {size} MB): {summary(on)}")
            self.notes.append(f"bulk, recording off ({clients} x {size} MB): {summary(off)}")
            target = {1: 40, 100: 250}.get(clients)
            goal, ok = (f"≥ {target} MB/s", median(on) >= target) if target else ("", None)
            self.rows.append(Row(f"bulk to {clients}, recording on", rate(on), goal, ok))
            self.rows.append(Row(f"bulk to {clients}, recording off", rate(off)))
            cost, gw = (
                1 - median(on) / median(off),
                [statistics.median(r.cpu["gateway"] for r in x) for x in (on, off)],
            )
            value = f"{cost:.1%} (gateway busy {gw[0]:.2f} / {gw[1]:.2f} cores)"
            self.rows.append(Row(f"recording cost, {clients} participant(s)", value, "≤ 10 %", cost <= 0.1))
        deflated = [await self.bulk(10, int(mb // 2 * MB), deflate=True) for _ in range(self.args.repeat)]
        self.notes.append(f"bulk, recording on, permessage-deflate (10 x {mb // 2} MB): {summary(deflated)}")
        self.rows.append(Row("bulk to 10, recording on, permessage-deflate", rate(deflated)))

    async def slow_reader(self) -> None:
        clients, mb = 10, self.args.mb // 2
        alone: list[BulkResult] = []
        beside: list[BulkResult] = []
        for _ in range(self.args.repeat):
            alone.append(await self.bulk(clients, int(mb * MB)))
            beside.append(await self.bulk(clients, int(mb * MB), stalled=1))
        reasons = ", ".join(sorted({r.stalled_reason for r in beside}))
        self.notes.append(f"{clients} readers alone ({clients} x {mb} MB): {summary(alone)}")
        self.notes.append(
            f"{clients} readers + 1 never reading: {summary(beside)}; the non-reader: {reasons}"
        )
        ratio = median(beside) / median(alone)
        value = f"{ratio:.0%}: {rate(beside)} vs {rate(alone)} alone; non-reader: {reasons}"
        self.rows.append(
            Row(f"{clients} participants beside one that never reads", value, "≥ 90 %", ratio >= 0.9)
        )


async def receive(
    viewer: h.Browser, part: str, ws: aiohttp.ClientWebSocketResponse, want: int, deflate: bool = False
) -> Received:
    """Count output bytes until ``want`` or the end. Like the session page, a participant cut off
    as "too slow" resumes from its offset (here at once; the page waits 500 ms)."""
    r = Received()
    while True:
        resume_from = None
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                r.got += len(msg.data) - 8
                r.at = time.perf_counter()
                if r.got >= want:
                    return r
            elif msg.type == aiohttp.WSMsgType.TEXT:
                m = json.loads(msg.data)
                if m["t"] == "lost":
                    r.lost += m["to"] - m["from"]
                elif m["t"] == "closed":
                    r.reason, resume_from = str(m["reason"]), m.get("resume_from")
                    break
        await ws.close()
        if r.reason != "too slow" or not part:
            return r
        r.resumes += 1
        try:
            ws = await h.attach(viewer, part, resume_from, deflate=deflate)
        except (aiohttp.WSServerHandshakeError, h.ClosedBeforeHello) as exc:  # the session ended meanwhile
            r.reason = f"too slow, then {exc} on resume"
            return r


async def go(fifo: Path) -> None:
    """Release the program waiting in `read go < FIFO`."""
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: the program has not opened it yet
            await asyncio.sleep(0.01)
    os.write(fd, b"go\n")
    os.close(fd)


async def pty_baseline(n: int) -> dict[str, list[float]]:
    """The same program on a PTY this process reads directly: the floor of echo latency."""
    master, slave = pty.openpty()
    argv = ["sh", "-c", ECHO_SCRIPT]
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    probe, ready = h.EchoProbe(), asyncio.Event()

    def readable() -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(master, 65536)
            if ready.is_set():
                probe.feed(len(data), time.perf_counter())
            elif b"R" in data:
                ready.set()

    async def key() -> None:
        os.write(master, b"x")

    loop.add_reader(master, readable)
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await probe.run(key, 20, None)
        return {"back to back": await probe.run(key, n, None), "paced 20 ms": await probe.run(key, n, 0.02)}
    finally:
        loop.remove_reader(master)
        proc.kill()
        proc.wait()
        os.close(master)


# --- 4. memory ---------------------------------------------------------------------------------


async def rss(args: argparse.Namespace, work: Path) -> list[Row]:
    """Idle sessions, then idle participants, on a fresh gateway process: its VmRSS deltas.

    The idle connectors are `GatewayLink`s in this process (real SSH logins with the
    certificate, each printing a prompt); only the gateway process is measured.
    """
    from gateway.connector.config import load_identity
    from gateway.connector.link import GatewayLink, ShareInfo

    gw = h.GatewayProc(work)
    ready = await gw.wait_ready()
    owner, viewer = h.Browser(ready["url"]), h.Browser(ready["url"])
    identity = await asyncio.to_thread(load_identity, work / "config" / "rcgate")
    links: list[GatewayLink] = []
    tasks: list[asyncio.Task[object]] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def open_sessions(k: int) -> None:
        for _ in range(k):
            info = ShareInfo("bench", "/", ["sh"], {"bench": f"idle{len(links)}"})
            links.append(GatewayLink(identity, info, size=(80, 24), on_notice=lambda _: None))
            tasks.append(asyncio.create_task(links[-1].run()))
        await asyncio.wait_for(asyncio.gather(*(link.welcomed.wait() for link in links[-k:])), 60)
        for link in links[-k:]:
            link.push_output(b"\r\nbench$ ")  # an idle shell has printed its prompt

    async def join(name: str, m: int) -> None:
        for p in await h.participations(owner, viewer, await owner.session_id(name), "view_only", m):
            sockets.append(await h.attach(viewer, p))
            tasks.append(asyncio.create_task(receive(viewer, "", sockets[-1], 1 << 62)))

    async def settled() -> int:
        await asyncio.sleep(1.5)
        return h.rss_kib(gw.pid)

    try:
        await owner.enrol(ready["enrol"][h.OWNER])
        await viewer.enrol(ready["enrol"][h.VIEWER])
        await open_sessions(4)  # warm-up: lazy imports, worker threads, the first participants
        await join("idle0", 4)
        base = await settled()
        await open_sessions(args.sessions)
        sessions = await settled()
        await join("idle4", args.participants)
        participants = await settled()
    finally:
        for ws in sockets:
            await ws.close()
        for link in links:
            link.stop()
        await asyncio.wait(tasks, timeout=15)
        for task in tasks:
            task.cancel()
        await owner.http.close()
        await viewer.http.close()
        gw.stop()
    per_s, per_p = (sessions - base) / args.sessions, (participants - sessions) / args.participants
    return [  # a participant's cost includes its redeemed link in the store
        Row(f"RSS per idle session ({args.sessions})", f"{per_s:.0f} KiB", "≤ 256 KiB", per_s <= 256),
        Row(f"RSS per idle participant ({args.participants})", f"{per_p:.0f} KiB", "≤ 64 KiB", per_p <= 64),
        Row("gateway VmRSS: base / +sessions / +participants", f"{base} / {sessions} / {participants} KiB"),
    ]


def table(facts: list[str], rows: list[Row], notes: list[str], command: str) -> str:
    w = [max(len(x) for x in col) for col in zip(*((r.what, r.value, r.target) for r in rows), strict=True)]
    lines = [
        f"rcgate bench: {command}",
        *facts,
        f"load average at the end: {h.load()}",
        "",
        f"| {'measurement':<{w[0]}} | {'result':<{w[1]}} | {'target':<{w[2]}} | verdict |",
        f"|{'-' * (w[0] + 2)}|{'-' * (w[1] + 2)}|{'-' * (w[2] + 2)}|---------|",
    ]
    lines += [f"| {r.what:<{w[0]}} | {r.value:<{w[1]}} | {r.target:<{w[2]}} | {r.verdict:<7} |" for r in rows]
    return "\n".join([*lines, "", *(f"- {n}" for n in notes)])


async def main(args: argparse.Namespace, command: str) -> None:
    facts = h.machine_facts()
    work = Path(tempfile.mkdtemp(prefix="rcgate-bench-"))
    started = time.monotonic()
    phases = set(args.phases.split(","))
    gw = h.GatewayProc(work / "gateway")
    ready = await gw.wait_ready()
    owner, viewer = h.Browser(ready["url"]), h.Browser(ready["url"])
    bench = Bench(args, gw, owner, viewer, h.Profiler(args.profile))
    try:
        await owner.enrol(ready["enrol"][h.OWNER])
        await viewer.enrol(ready["enrol"][h.VIEWER])
        if "latency" in phases:
            await bench.latency()
        if "bulk" in phases:
            await bench.throughput()
        if "slow" in phases:
            await bench.slow_reader()
    finally:
        await owner.http.close()
        await viewer.http.close()
        gw.stop()
    if "rss" in phases:
        bench.rows += await rss(args, work / "rss")
    bench.notes.append(f"total {time.monotonic() - started:.0f} s; logs and recordings: {work}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        bench.notes[-1] += " (deleted; --keep keeps them)"
    print(table(facts, bench.rows, bench.notes, command))


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="one run each, fewer keys, less output, fewer idle objects")
    add("--phases", default="latency,bulk,slow,rss", help="comma list (default: all)")
    add("--keys", type=int, help="keys per echo run (500; quick 200)")
    add("--mb", type=int, help="MB printed to 1 participant; to 10: half, to 100: a tenth (200; quick 50)")
    add("--repeat", type=int, help="runs of each bulk measurement, median reported (3; quick 1)")
    add("--sessions", type=int, help="idle sessions for RSS (100; quick 30)")
    add("--participants", type=int, help="idle participants for RSS (200; quick 50)")
    add("--timeout", type=float, default=120.0, help="seconds one bulk run may take")
    add("--keep", action="store_true", help="keep the work dir (logs, recordings: GBs)")
    add("--profile", type=Path, help="py-spy the gateway and connector into DIR (pip install py-spy)")
    args = parser.parse_args()
    quick = args.quick
    args.repeat = args.repeat or (1 if quick else 3)
    args.keys = args.keys or (200 if quick else 500)
    args.mb = args.mb or (50 if quick else 200)
    args.sessions = args.sessions or (30 if quick else 100)
    args.participants = args.participants or (50 if quick else 200)
    command = " ".join(["bench/run.py", *sys.argv[1:]]) + ("  (= make bench)" if len(sys.argv) == 1 else "")
    asyncio.run(main(args, command))


if __name__ == "__main__":
    cli()
