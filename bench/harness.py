"""Bench plumbing: the gateway process, browser-protocol clients, echo timing, /proc, py-spy.

``harness.py gateway WORKDIR HTTP_PORT SSH_PORT`` is the bench's gateway process:
``gateway.app.running_gateway`` with an embedded store in WORKDIR, the policy ``BENCH_POLICY``,
two users, and a connector certificate issued directly by the gateway CA. One bench-only change,
made by replacing a name in ``gateway.app`` before it starts (no gateway file is edited):
"recording off" did not exist, so ``RecorderFactory`` returns ``NullRecorder`` (the
``SessionRecorder`` protocol, doing nothing) for sessions shared with the label ``recording=off``.

``harness.py share MIB ARGS`` is `rcgate ARGS` with a MIB MiB connector replay buffer (see ``share``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)  # this checkout's gateway package and tests/fixtures
from tests.fixtures.soft_authenticator import SoftAuthenticator  # noqa: E402

OWNER, VIEWER = "bench-owner", "bench-viewer"
BENCH_POLICY = f"""version: 1
description: rcgate bench. Everyone may watch; {VIEWER} may type raw keys once the owner approves.
grants:
  - id: bench-typist
    who: {{users: [{VIEWER}]}}
    modes:
      view_only: {{}}
      approved_execution: {{}}
      privileged: {{enabled: true, max_grant_s: 900, approvers: {{owner: true}}}}
  - id: bench-watch
    who: {{everyone: true}}
    modes: [view_only]
"""
TICK = os.sysconf("SC_CLK_TCK")


# --- the machine and its processes ---------------------------------------------------------------


def machine_facts() -> list[str]:
    """What the run ran on: cores, CPU model, kernel, versions, the gateway's code, the load."""
    import asyncssh

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    commit, dirty = git("rev-parse", "--short", "HEAD").strip(), git("status", "--porcelain", "gateway")
    code = f"commit {commit} + {len(dirty.splitlines())} changed files under gateway/"
    code = code if commit else "not a git checkout"
    return [
        f"machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}, load average {load()}",
        f"versions: Python {platform.python_version()}, aiohttp {aiohttp.__version__}, asyncssh "
        f"{asyncssh.__version__}; gateway code: {code}",
    ]


def git(*args: str) -> str:
    where = str(Path(__file__).parent)
    return subprocess.run(["git", "-C", where, *args], check=False, capture_output=True, text=True).stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:", 1)[1].split()[0])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def busy_s() -> float:
    """CPU seconds the whole machine (all cores, every process, the kernel) has been busy."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(f) - f[3] - f[4]) / TICK  # all but idle and iowait


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the gateway process -------------------------------------------------------------------------


class NullRecorder:
    """``SessionRecorder`` that records nothing: the bench's "recording off"."""

    failed = False
    failure: str | None = None

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    def output(self, data: bytes) -> None: ...
    def input(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def marker(self, label: str) -> None: ...
    async def drain(self) -> None: ...

    async def run(self) -> None:
        await self._closed.wait()

    async def close(self, end_reason: str) -> None:
        self._closed.set()


def _patch_gateway() -> None:
    """Recording off for sessions labelled ``recording=off`` (the only change to the gateway)."""
    import gateway.app as app
    from gateway.recording.recorder import RecorderFactory

    class BenchRecorders(RecorderFactory):
        async def __call__(self, session_id: Any, meta: Any, on_failure: Callable[[str], None]) -> Any:
            if meta.labels.get("recording") == "off":
                return NullRecorder()
            return await super().__call__(session_id, meta, on_failure)

    app.RecorderFactory = BenchRecorders  # type: ignore[attr-defined]


async def serve_gateway(work: Path, http_port: int, ssh_port: int) -> None:
    _patch_gateway()
    from gateway.app import HOST_KEY_FILE, running_gateway
    from gateway.auth.ssh_ca import load_or_create_host_key, public_key_line
    from gateway.connector.config import GatewayInfo, ensure_key, save_certificate, save_gateway
    from gateway.settings import load_settings

    (work / "policy.yaml").write_text(BENCH_POLICY)
    policy = str(work / "policy.yaml")
    overrides = {"http.port": http_port, "ssh.host": "127.0.0.1", "ssh.port": ssh_port, "policy.file": policy}
    settings = load_settings(None, data_dir=str(work / "data"), recordings_dir=str(work / "rec"), **overrides)
    async with running_gateway(settings) as rt:
        enrol = {name: (await rt.services.identity.add_user(name))[1] for name in (OWNER, VIEWER)}
        conf = work / "config" / "rcgate"  # XDG_CONFIG_HOME=WORKDIR/config for `rcgate share`
        cert = rt.ca.issue_user_certificate(ensure_key(conf), OWNER, "bench", now=time.time())
        save_certificate(cert, conf)
        host_key = public_key_line(load_or_create_host_key(settings.data_dir / HOST_KEY_FILE))
        url = settings.public_url
        info = GatewayInfo(
            url=url, ssh_host="127.0.0.1", ssh_port=ssh_port, user=OWNER, ssh_host_key=host_key
        )
        save_gateway(info, conf)
        (work / "ready.tmp").write_text(json.dumps({"url": url, "enrol": enrol}))
        (work / "ready.tmp").replace(work / "ready.json")
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


class GatewayProc:
    """The gateway subprocess, seen from the driver."""

    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        with open(work / "gateway.log", "wb") as log:
            argv = [sys.executable, __file__, "gateway", str(work), str(free_port()), str(free_port())]
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        atexit.register(self.stop)  # even when the driver dies of an exception

    async def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        path, deadline = self.work / "ready.json", time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start; see {self.work / 'gateway.log'}")
            await asyncio.sleep(0.05)
        return dict(json.loads(path.read_text()))

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def share(
    work: Path, name: str, script: str, *, recording: bool = True, replay_mib: int = 0
) -> subprocess.Popen[bytes]:
    """`rcgate share -- sh -c SCRIPT` in a subprocess (stdin: a pipe that stays open and empty,
    stdout: /dev/null). With ``replay_mib`` the connector's replay buffer holds that many MiB
    instead of 8, so that a burst faster than the link is buffered rather than ending the share
    ("the gateway fell too far behind"): the connector has no back-pressure to the program."""
    labels = ["--label", f"bench={name}", *(["--label", "recording=off"] * (not recording))]
    rcgate = [str(Path(sys.executable).parent / "rcgate")]
    if replay_mib:
        rcgate = [sys.executable, __file__, "share", str(replay_mib)]
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "PYTHONPATH": ROOT}
    with open(work / f"share-{name}.log", "wb") as log:
        argv = [*rcgate, "share", *labels, "--", "sh", "-c", script]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, env=env)


def end_share(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    if proc.stdin is not None:
        proc.stdin.close()


def share_with_replay_buffer(mib: int, argv: list[str]) -> int:
    import gateway.connector.share as share_module
    from gateway.cli import main
    from gateway.connector.link import GatewayLink

    class BigReplayLink(GatewayLink):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, buffer_limit_bytes=mib * 1024 * 1024, **kwargs)

    share_module.GatewayLink = BigReplayLink  # type: ignore[attr-defined]
    return main(argv)


# --- a browser: login, step-up, links, the participant WebSocket ---------------------------------


class Browser:
    """One browser profile: cookie jar, CSRF token, a software passkey (tests/fixtures)."""

    def __init__(self, url: str) -> None:
        jar, conn = aiohttp.CookieJar(unsafe=True), aiohttp.TCPConnector(limit=0)
        self.url, self.http = url, aiohttp.ClientSession(base_url=url, cookie_jar=jar, connector=conn)
        self.passkey, self.csrf = SoftAuthenticator(), ""

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Origin": self.url, "X-CSRF-Token": self.csrf}
        async with self.http.request(method, path, json=body, headers=headers) as r:
            data = await r.json() if r.content_type == "application/json" else None
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    async def enrol(self, enrol_url: str) -> None:
        self.csrf = (await self.call("GET", "/api/me"))["csrf_token"]
        await self.call("POST", "/api/enrol/start", {"token": enrol_url.split("#token=")[1]})
        self.csrf = (await self.call("GET", "/api/me"))["csrf_token"]
        opts = await self.call("POST", "/api/factors/passkey/options", {})
        cred = self.passkey.create(opts["options"], self.url)
        await self.call(
            "POST", "/api/factors/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
        )

    async def stepup(self) -> None:
        """A fresh passkey (link redemption and the WebSocket upgrade want one from the last 5 min)."""
        opts = await self.call("POST", "/api/stepup/passkey/options", {})
        cred = self.passkey.get(opts["options"], self.url)
        await self.call(
            "POST", "/api/stepup/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
        )

    async def session_id(self, name: str, proc: subprocess.Popen[bytes] | None = None) -> str:
        for _ in range(400):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"`rcgate share` for {name} exited with {proc.returncode}; see its log")
            for s in (await self.call("GET", "/api/sessions"))["sessions"]:
                if s["labels"].get("bench") == name:
                    return str(s["id"])
            await asyncio.sleep(0.05)
        raise RuntimeError(f"session {name} did not show up")


async def participations(owner: Browser, viewer: Browser, sid: str, mode: str, n: int) -> list[str]:
    """``n`` links created by the owner and redeemed by the viewer (one per participant)."""
    await viewer.stepup()
    out = []
    for _ in range(n):
        link = await owner.call("POST", f"/api/sessions/{sid}/links", {"mode": mode})
        redeemed = await viewer.call("POST", "/api/links/redeem", {"token": link["url"].rsplit("/", 1)[1]})
        out.append(str(redeemed["participation"]))
    return out


async def attach(
    viewer: Browser, part: str, resume_from: int | None = None, *, deflate: bool = False
) -> aiohttp.ClientWebSocketResponse:
    """Open the participant WebSocket as the session page does and wait for ``hello``. With
    ``deflate`` it offers permessage-deflate, as Chromium always does (aiohttp's client does not)."""
    path = f"/api/participations/{part}/ws"
    ws = await viewer.http.ws_connect(path, origin=viewer.url, max_msg_size=0, compress=15 * deflate)
    await ws.send_str(json.dumps({"t": "hello", "v": 1, "resume_from": resume_from}))
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["t"] == "hello":
            return ws
    raise ClosedBeforeHello(f"participant socket closed before hello: {ws.close_code}")


class ClosedBeforeHello(Exception):
    """The gateway upgraded, then closed (e.g. 4403: the session ended meanwhile)."""


async def become_privileged(
    ws: aiohttp.ClientWebSocketResponse, owner: Browser, held: asyncio.Future[str]
) -> None:
    """Ask for privileged mode (raw keys) on ``ws`` and let the owner approve it with a passkey.

    ``held`` is resolved with the held action's id by whoever reads ``ws``."""
    await ws.send_str(json.dumps({"t": "request_mode", "mode": "privileged", "reason": "bench: echo"}))
    action = await asyncio.wait_for(held, 20)
    opts = await owner.call("POST", f"/api/approvals/{action}/options", {})
    cred = owner.passkey.get(opts["options"], owner.url)
    await owner.call("POST", f"/api/approvals/{action}/decide", {"approve": True, "credential": cred})


# --- echo timing ---------------------------------------------------------------------------------


class EchoProbe:
    """Sends one key at a time and times each echo (echoes come back in order)."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.latency: list[float] = []
        self._arrived = asyncio.Event()

    def feed(self, n: int, t: float) -> None:
        done = len(self.latency)
        self.latency += [t - s for s in self.sent[done : done + n]]
        self._arrived.set()

    async def _until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.latency) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def run(self, send: Callable[[], Awaitable[Any]], n: int, pace_s: float | None) -> list[float]:
        """``n`` keys back to back (``pace_s`` None) or one every ``pace_s``; latencies in ms."""
        self.sent, self.latency = [], []
        start = time.perf_counter()
        for i in range(n):
            if pace_s is not None:
                await asyncio.sleep(max(0.0, start + i * pace_s - time.perf_counter()))
            self.sent.append(time.perf_counter())
            await send()
            if pace_s is None:
                await self._until(i + 1)
        await self._until(n)
        return [x * 1000 for x in self.latency]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- py-spy --------------------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` (raw collapsed stacks) of some processes during one bulk run."""

    def __init__(self, out: Path | None) -> None:
        self.out, self._procs = out, list[tuple[subprocess.Popen[bytes], Path]]()

    def start(self, tag: str, pids: Mapping[str, int]) -> None:
        if self.out is None or not tag:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            path = self.out / f"{tag}-{name}.txt"
            spy = str(Path(sys.executable).parent / "py-spy")
            argv = [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(path), "-r", "250", "--nonblocking"]
            self._procs.append(
                (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path)
            )

    def stop(self) -> list[str]:
        """Stop; per process its top frames by self time (share of the samples)."""
        out = []
        for proc, path in self._procs:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
            if path.exists():
                out.append(f"py-spy {path.stem}: " + "; ".join(f"{s:.0%} {f}" for s, f in top_frames(path)))
        self._procs = []
        return out


def top_frames(path: Path, n: int = 8) -> list[tuple[float, str]]:
    """Self-time leaders in a py-spy raw file (``frame;frame;... count`` lines), by function."""
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            leaves[re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(leaves.values()) or 1
    return [(c / total, frame) for frame, c in leaves.most_common(n)]


if __name__ == "__main__":
    if sys.argv[1] == "gateway":
        asyncio.run(serve_gateway(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    elif sys.argv[1] == "share":
        sys.exit(share_with_replay_buffer(int(sys.argv[2]), sys.argv[3:]))
