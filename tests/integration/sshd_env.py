"""A real gateway SSH endpoint on a free port with a fake hub, and connector identities for it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from gateway.auth.ssh_ca import SshCertificateAuthority, load_or_create_host_key, public_key_line
from gateway.connector.config import GatewayInfo, Identity
from gateway.core.ids import SessionId, UserId
from gateway.core.models import User
from gateway.sshd.server import start_sshd
from tests.integration.connector_fakes import FakeHub

USERS = {
    "alice": User(id=UserId("usr_alice"), name="alice", created_at=0.0),
    "bob": User(id=UserId("usr_bob"), name="bob", created_at=0.0),
    "mallory": User(id=UserId("usr_mallory"), name="mallory", created_at=0.0, disabled=True),
}
LINK_BASE = "https://gw.test/s/"


@dataclass
class SshdEnv:
    port: int
    ca: SshCertificateAuthority
    hub: FakeHub
    host_key_line: str
    link_requests: list[tuple[str, str, str]]

    def cert_for(
        self, key: asyncssh.SSHKey, principal: str, *, now: float | None = None, valid_s: int = 3600
    ) -> asyncssh.SSHCertificate:
        pub: bytes = key.export_public_key()
        text = self.ca.issue_user_certificate(
            pub.decode(), principal, "ws1", now=time.time() if now is None else now, valid_s=valid_s
        )
        return asyncssh.import_certificate(text)

    def identity(self, user: str = "alice", *, port: int | None = None) -> Identity:
        key = asyncssh.generate_private_key("ssh-ed25519")
        return Identity(
            gateway=GatewayInfo(
                url="https://gw.test",
                ssh_host="127.0.0.1",
                ssh_port=port or self.port,
                user=user,
                ssh_host_key=self.host_key_line,
            ),
            key=key,
            certificate=self.cert_for(key, user),
        )


@asynccontextmanager
async def sshd_env(tmp_path: Path) -> AsyncIterator[SshdEnv]:
    ca = SshCertificateAuthority.load_or_create(tmp_path / "ca")
    hub = FakeHub()
    link_requests: list[tuple[str, str, str]] = []

    async def lookup_user(name: str) -> User | None:
        return USERS.get(name)

    async def link_url_for(session_id: SessionId, owner: User, mode: str) -> str:
        link_requests.append((session_id, owner.name, mode))
        return LINK_BASE + session_id

    host_key_path = tmp_path / "host_key"
    acceptor = await start_sshd("127.0.0.1", 0, host_key_path, ca, hub, lookup_user, link_url_for)
    try:
        yield SshdEnv(
            port=acceptor.get_port(),
            ca=ca,
            hub=hub,
            host_key_line=public_key_line(load_or_create_host_key(host_key_path)),
            link_requests=link_requests,
        )
    finally:
        acceptor.close()
        await acceptor.wait_closed()
