"""`rcgate share` end to end against the real SSH endpoint and a fake hub: stream, input, END, resume."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.connector.link import GatewayLink, ShareInfo
from gateway.connector.pty import LocalTerminal
from gateway.connector.share import share
from gateway.core.errors import Unauthenticated
from tests.integration.connector_fakes import FakeSession, TcpProxy
from tests.integration.sshd_env import LINK_BASE, SshdEnv, sshd_env

TIMEOUT_S = 30.0


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[SshdEnv]:
    async with sshd_env(tmp_path) as e:
        yield e


class Screen:
    """Local stdout and stderr as pipes, read continuously like a terminal would."""

    def __init__(self) -> None:
        self.on_data: Callable[[], None] = lambda: None
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        self.out = bytearray()
        self.err = bytearray()
        for fd in (self.out_r, self.err_r):
            os.set_blocking(fd, False)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.out_r, self._read, self.out_r, self.out)
        loop.add_reader(self.err_r, self._read, self.err_r, self.err)

    def _read(self, fd: int, into: bytearray) -> None:
        try:
            into += os.read(fd, 65536)
        except BlockingIOError:
            return
        self.on_data()

    def terminal(self) -> LocalTerminal:
        return LocalTerminal(self.in_r, self.out_w, self.err_w)

    def type_locally(self, data: bytes) -> None:
        os.write(self.in_w, data)

    def finish(self) -> None:
        loop = asyncio.get_running_loop()
        for fd, into in ((self.out_r, self.out), (self.err_r, self.err)):
            loop.remove_reader(fd)
            self._read(fd, into)
        for fd in (self.in_r, self.in_w, self.out_r, self.out_w, self.err_r, self.err_w):
            os.close(fd)


@pytest_asyncio.fixture
async def screen() -> AsyncIterator[Screen]:
    s = Screen()
    s.start()
    yield s
    s.finish()


async def test_share_streams_output_passes_the_exit_status_and_prints_the_link(
    env: SshdEnv, screen: Screen
) -> None:
    code = await asyncio.wait_for(
        share(
            ["bash", "-c", "echo hi; exit 7"],
            labels={"repo": "rcgate"},
            identity=env.identity(),
            terminal=screen.terminal(),
        ),
        TIMEOUT_S,
    )
    assert code == 7
    session = env.hub.only
    assert bytes(session.output) == b"hi\r\n" == bytes(screen.out)
    assert ("exited", 7) in session.events and session.gaps == 0
    assert session.meta.command == ("bash", "-c", "echo hi; exit 7")
    assert dict(session.meta.labels) == {"repo": "rcgate"}
    assert session.meta.cwd == os.getcwd()
    stderr = screen.err.decode()
    assert LINK_BASE + session.id in stderr
    assert "▀" in stderr or "█" in stderr or "▄" in stderr  # the QR code, in half blocks


async def test_remote_input_reaches_the_program_and_end_keeps_it_running(
    env: SshdEnv, screen: Screen
) -> None:
    script = "echo ready; read a; echo got:$a; read b; echo local:$b; exit 3"
    screen.on_data = env.hub.changed  # wake `until` on local screen output too
    task = asyncio.ensure_future(
        share(["bash", "-c", script], identity=env.identity(), terminal=screen.terminal())
    )
    try:
        await env.hub.until(lambda: bool(env.hub.sessions) and b"ready" in env.hub.only.output)
        session = env.hub.only
        session.uplink.send_input(b"remote\r")
        await env.hub.until(lambda: b"got:remote" in session.output)
        session.uplink.send_end("revoked by an admin")
        await env.hub.until(lambda: b"remote control ended: revoked by an admin" in screen.err)
        session.uplink.send_input(b"too-late\r")  # the channel is closed: nothing reaches the PTY
        assert not task.done()  # remote control is over, the program is not
        screen.type_locally(b"owner\n")
        assert await asyncio.wait_for(task, TIMEOUT_S) == 3
    finally:
        task.cancel()
    assert b"local:owner" in screen.out and b"too-late" not in screen.out
    assert b"local:owner" not in session.output  # nothing after END is streamed to the gateway


async def test_refused_certificate_stops_before_the_program_starts(env: SshdEnv, screen: Screen) -> None:
    identity = env.identity("alice")
    other = env.identity("bob")
    mismatched = type(identity)(gateway=identity.gateway, key=other.key, certificate=other.certificate)
    with pytest.raises(Unauthenticated, match="rcgate login"):
        await asyncio.wait_for(
            share(["bash", "-c", "touch started"], identity=mismatched, terminal=screen.terminal()), TIMEOUT_S
        )
    assert not Path("started").exists()
    assert env.hub.sessions == {}


async def test_dropped_link_reconnects_and_resumes_with_no_byte_lost(env: SshdEnv, screen: Screen) -> None:
    proxy = TcpProxy(env.port)
    port = await proxy.start()
    cuts = 0

    def cut_mid_stream(session: FakeSession) -> None:
        # Cut once 20 kB arrived on the first link, then at the first output on the second one.
        nonlocal cuts
        if cuts == session.generation < 2 and (cuts == 1 or len(session.output) > 20_000):
            cuts += 1
            proxy.cut()

    env.hub.on_output = cut_mid_stream
    # About 3 s of steady output (60 bursts of 50 lines), so the program outlives both cuts.
    script = (
        "for b in $(seq 1 60); do for i in $(seq 1 50); do echo line-$b-$i-..........................; done;"
        " sleep 0.05; done; exit 5"
    )
    try:
        code = await asyncio.wait_for(
            share(["bash", "-c", script], identity=env.identity(port=port), terminal=screen.terminal()),
            TIMEOUT_S,
        )
    finally:
        await proxy.close()
    session = env.hub.only
    assert code == 5
    assert cuts == 2 and proxy.connections >= 3
    assert [c[0] for c in env.hub.calls].count("resume") >= 2
    assert session.gaps == 0
    assert bytes(session.output) == bytes(screen.out)  # the recording got every byte the owner saw
    assert bytes(session.output).count(b"line-") == 3000
    assert ("exited", 5) in session.events
    assert b"reconnecting" in screen.err and b"restored" in screen.err


async def test_output_while_the_gateway_is_away_is_resent_after_resume(env: SshdEnv) -> None:
    proxy = TcpProxy(env.port)
    port = await proxy.start()
    notices: list[str] = []
    link = GatewayLink(
        env.identity(port=port),
        ShareInfo(host="ws1", cwd="/", command=["x"]),
        size=(80, 24),
        on_notice=notices.append,
    )
    task = asyncio.ensure_future(link.run())
    try:
        await asyncio.wait_for(link.welcomed.wait(), TIMEOUT_S)
        session = env.hub.only
        link.push_output(b"before ")
        await env.hub.until(lambda: len(session.output) == 7)
        proxy.cut()
        await env.hub.until(lambda: ("lost",) in session.events)
        link.push_output(b"during ")  # buffered while there is no link
        link.resize(100, 50)
        link.push_output(b"after")
        await env.hub.until(lambda: bytes(session.output) == b"before during after")
        await env.hub.until(lambda: ("resize", 100, 50) in session.events)
        link.finish(0)
        await asyncio.wait_for(task, TIMEOUT_S)
    finally:
        task.cancel()
        await proxy.close()
    assert session.gaps == 0 and ("exited", 0) in session.events
    assert link.outcome == "the program exited with status 0" and not link.failed


async def test_backlog_beyond_the_buffer_stops_sharing_instead_of_leaving_a_gap(env: SshdEnv) -> None:
    proxy = TcpProxy(env.port)
    port = await proxy.start()
    notices: list[str] = []
    link = GatewayLink(
        env.identity(port=port),
        ShareInfo(host="ws1", cwd="/", command=["x"]),
        size=(80, 24),
        on_notice=notices.append,
        buffer_limit_bytes=1024,
    )
    task = asyncio.ensure_future(link.run())
    try:
        await asyncio.wait_for(link.welcomed.wait(), TIMEOUT_S)
        session = env.hub.only
        link.push_output(b"a" * 100)
        await env.hub.until(lambda: len(session.output) == 100)
        proxy.cut()
        await env.hub.until(lambda: ("lost",) in session.events)
        link.push_output(b"b" * 5000)  # more than the buffer holds while the link is down
        await asyncio.wait_for(task, TIMEOUT_S)
    finally:
        task.cancel()
        await proxy.close()
    assert link.failed and "gap" in (link.outcome or "")
    assert ("stopped",) in session.events
    assert bytes(session.output) == b"a" * 100
    assert any("sharing stopped" in n for n in notices)


async def test_a_program_printing_faster_than_the_gateway_takes_waits_instead_of_stopping_sharing(
    env: SshdEnv, screen: Screen
) -> None:
    # The gateway stops taking output (its broker is behind: drain waits) while the program
    # prints 24 MB, three times the connector's replay buffer. The program must wait for the
    # link (back-pressure), not have sharing stopped for a gap; then everything arrives.
    size = 24_000_000
    env.hub.room.clear()
    task = asyncio.ensure_future(
        share(
            ["sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x; echo burst-done"],
            identity=env.identity(),
            terminal=screen.terminal(),
        )
    )
    try:
        await env.hub.until(lambda: len(env.hub.sessions) == 1 and len(env.hub.only.output) > 0, TIMEOUT_S)
        session = env.hub.only
        await asyncio.sleep(2.0)  # long enough for 24 MB at full speed; the program must still wait
        assert not task.done(), "the program ran ahead of the gateway"
        assert ("stopped",) not in session.events
        assert len(screen.out) < size, "the local terminal is paced by the link as well"
        env.hub.room.set()
        assert await asyncio.wait_for(task, 120) == 0
    finally:
        env.hub.room.set()
        task.cancel()
    assert session.gaps == 0 and ("exited", 0) in session.events
    assert bytes(session.output).count(b"x") == size and bytes(session.output).endswith(b"burst-done\r\n")
    assert bytes(session.output) == bytes(screen.out)


async def test_the_welcome_says_the_hooks_timeout_and_share_writes_it_into_the_assistants_settings(
    env: SshdEnv, tmp_path: Path
) -> None:
    import json

    from gateway.connector.share import wire_assistant

    link = GatewayLink(
        env.identity(), ShareInfo(host="ws1", cwd="/", command=["x"]), size=(80, 24), on_notice=print
    )
    task = asyncio.ensure_future(link.run())
    try:
        await asyncio.wait_for(link.welcomed.wait(), TIMEOUT_S)
        assert link.hook_timeout_s == 130 and link.hook_token
    finally:
        link.stop()
        await asyncio.wait_for(task, TIMEOUT_S)
    fake_claude = tmp_path / "claude"
    fake_claude.write_text("#!/bin/sh\necho '2.1.330 (Claude Code)'\n")
    fake_claude.chmod(0o755)
    session = tmp_path / "session"
    session.mkdir()
    argv, env_ = wire_assistant(
        "claude", [str(fake_claude), "-p", "hi"], env.identity(), link.hook_token, session,
        hook_timeout_s=link.hook_timeout_s,
    )  # fmt: skip
    settings = json.loads(Path(argv[argv.index("--settings") + 1]).read_text())
    timeouts = {h["timeout"] for hooks in settings["hooks"].values() for m in hooks for h in m["hooks"]}
    assert timeouts == {130} and env_["RCGATE_HOOK_TOKEN"] == link.hook_token
