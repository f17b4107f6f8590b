"""`rcgate share` through the real SSH endpoint into the real sessions Hub: the recording is complete.

The other connector tests use a fake hub to see every call; this one checks the seam with the
Hub behind it, including a mid-stream network drop and the resume by offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest_asyncio

from gateway.auth.ssh_ca import SshCertificateAuthority, load_or_create_host_key, public_key_line
from gateway.connector.config import GatewayInfo, Identity
from gateway.connector.pty import LocalTerminal
from gateway.connector.share import share
from gateway.core.ids import SessionId, UserId
from gateway.core.models import AuditEvent, User
from gateway.recording.asciicast import Cast, CastFormatError, parse_cast
from gateway.recording.recorder import RecorderFactory
from gateway.sessions.hub import Hub
from gateway.sshd.server import start_sshd
from tests.integration.connector_fakes import TcpProxy

ALICE = User(id=UserId("usr_alice"), name="alice", created_at=0.0)
TIMEOUT_S = 30.0


class ListAudit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append(self, event: AuditEvent) -> AuditEvent:
        stored = event.model_copy(update={"seq": len(self.events) + 1})
        self.events.append(stored)
        return stored

    async def events(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> Sequence[AuditEvent]:  # pragma: no cover - the hub only appends
        return [e for e in self.events if e.seq > after_seq][:limit]


@dataclass
class Gateway:
    port: int
    hub: Hub
    ca: SshCertificateAuthority
    host_key: str
    recordings: Path

    def identity(self, port: int | None = None) -> Identity:
        key = asyncssh.generate_private_key("ssh-ed25519")
        pub: bytes = key.export_public_key()
        cert = self.ca.issue_user_certificate(pub.decode(), "alice", "ws1", now=time.time())
        return Identity(
            gateway=GatewayInfo(
                url="https://gw.test",
                ssh_host="127.0.0.1",
                ssh_port=port or self.port,
                user="alice",
                ssh_host_key=self.host_key,
            ),
            key=key,
            certificate=asyncssh.import_certificate(cert),
        )

    async def recording(self) -> Cast:
        """The one recording, once it is closed (its ``end: ...`` marker written)."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                files = list(self.recordings.rglob("*.cast"))
                if files:
                    with contextlib.suppress(CastFormatError):  # a batch may be half written
                        cast = parse_cast(files[0].read_text(encoding="utf-8").splitlines())
                        if any(m.startswith("end:") for m in cast.markers()):
                            return cast
                await asyncio.sleep(0.02)  # deadline loop: the recorder flushes on its own schedule


@pytest_asyncio.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    ca = SshCertificateAuthority.load_or_create(tmp_path / "ca")

    async def lookup_user(name: str) -> User | None:
        return ALICE if name == "alice" else None

    async def link_url_for(session_id: SessionId, owner: User, mode: str) -> str:
        return f"https://gw.test/s/{session_id}"

    recordings = tmp_path / "rec"
    async with Hub(recorders=RecorderFactory(recordings), audit=ListAudit()) as hub:
        acceptor = await start_sshd("127.0.0.1", 0, tmp_path / "host", ca, hub, lookup_user, link_url_for)
        try:
            yield Gateway(
                acceptor.get_port(),
                hub,
                ca,
                public_key_line(load_or_create_host_key(tmp_path / "host")),
                recordings,
            )
        finally:
            acceptor.close()
            await acceptor.wait_closed()


class Screen:
    def __init__(self) -> None:
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        self.out = bytearray()
        os.set_blocking(self.out_r, False)
        os.set_blocking(self.err_r, False)
        loop = asyncio.get_running_loop()
        loop.add_reader(self.out_r, self._read, self.out_r)
        loop.add_reader(self.err_r, self._read, self.err_r)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if fd == self.out_r:
            self.out += data

    def terminal(self) -> LocalTerminal:
        return LocalTerminal(None, self.out_w, self.err_w)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.out_r)
        self._read(self.out_r)
        loop.remove_reader(self.err_r)
        for fd in (self.out_r, self.out_w, self.err_r, self.err_w):
            os.close(fd)


@pytest_asyncio.fixture
async def screen() -> AsyncIterator[Screen]:
    s = Screen()
    yield s
    s.close()


async def test_shared_output_is_recorded_and_the_exit_status_passes_through(
    gateway: Gateway, screen: Screen
) -> None:
    code = await asyncio.wait_for(
        share(
            ["bash", "-c", "echo hello-$((6*7)); exit 4"],
            identity=gateway.identity(),
            terminal=screen.terminal(),
        ),
        TIMEOUT_S,
    )
    assert code == 4
    cast = await gateway.recording()
    assert "hello-42" in cast.output_text()
    assert cast.output_text().encode() == bytes(screen.out)


async def test_a_network_drop_mid_stream_loses_nothing_from_the_recording(
    gateway: Gateway, screen: Screen
) -> None:
    proxy = TcpProxy(gateway.port)
    port = await proxy.start()
    script = (
        "for b in $(seq 1 40); do for i in $(seq 1 50); do echo line-$b-$i-......................; done;"
        " sleep 0.05; done; exit 0"
    )
    task = asyncio.ensure_future(
        share(["bash", "-c", script], identity=gateway.identity(port), terminal=screen.terminal())
    )
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not any(info.output_bytes > 20_000 for info in gateway.hub.sessions()):
                await asyncio.sleep(0.01)  # deadline loop on the hub's public snapshot
        proxy.cut()
        assert await asyncio.wait_for(task, TIMEOUT_S) == 0
    finally:
        task.cancel()
        await proxy.close()
    assert proxy.connections >= 2
    cast = await gateway.recording()
    assert cast.output_text().count("line-") == 2000
    assert cast.output_text().encode() == bytes(screen.out)
