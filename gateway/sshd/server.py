"""The gateway's SSH endpoint (asyncssh): who may log in, and which channel each login gets.

Theory of operation
-------------------
asyncssh creates one ``GatewaySshServer`` per TCP connection. ``begin_auth(username)`` decides
what kind of login the name asks for, before any credential is looked at:

* an rcgate user name → a **connector** login: the only trusted key is the gateway CA
  (``cert-authority``), so only a certificate signed by it, valid now and naming exactly that
  user as principal, is accepted (asyncssh checks signature, validity and principal). Unknown
  and disabled users get an empty trust list: the same "Permission denied" as a bad
  certificate, so user names cannot be probed. Password and keyboard-interactive are off.
* a name shaped like a link token → a **viewer** login may also be tried: keyboard-interactive
  asks for user name, password and TOTP code, then the link is redeemed (``viewer.py``). Whether
  keyboard-interactive is offered depends on the name's shape only, never on what exists.

A connector login may open one kind of channel: exec ``rcgate-connector/1`` (the certificate
forces that command anyway), served by ``ConnectorChannel``. Shells, other commands, subsystems,
forwarding and agent/X11 requests are refused.

Dead peers are found by SSH keepalives; an unfinished login is cut after ``LOGIN_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from gateway.auth.ssh_ca import SshCertificateAuthority, load_or_create_host_key
from gateway.core.errors import GatewayError
from gateway.core.models import User
from gateway.protocol.connector_wire import EXEC_COMMAND
from gateway.sessions.ports import ParticipantHub, SessionHub
from gateway.sshd.connector_channel import ConnectorChannel, LinkUrlFor, exit_channel
from gateway.sshd.viewer import (
    PROMPTS,
    CheckFactors,
    RedeemLink,
    ViewerGrant,
    authenticate_viewer,
    looks_like_link_token,
    serve_viewer,
)

log = logging.getLogger(__name__)

DEFAULT_SSH_PORT = 2222
LOGIN_TIMEOUT_S = 30.0  # from TCP accept to a finished authentication
LOOKUP_TIMEOUT_S = 5.0  # user lookup in the store during begin_auth
MAX_VIEWER_ATTEMPTS = 3  # keyboard-interactive answers per connection
KEEPALIVE_INTERVAL_S = 15.0  # server → client keepalive request period
KEEPALIVE_COUNT_MAX = 4  # unanswered keepalives before the connection is dropped (≈ 60 s)

LookupUser = Callable[[str], Awaitable[User | None]]
"""``(user_name) -> User | None``: the store's ``user_by_name``."""


class LoginKind(enum.Enum):
    """What a login attempt is, decided from the SSH user name alone."""

    REFUSED = "refused"
    CONNECTOR = "connector"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class ViewerPorts:
    """What the viewer path needs: factor check, link redemption, participant attach."""

    check_factors: CheckFactors
    redeem: RedeemLink
    participants: ParticipantHub


class SshdContext:
    """What every connection of the endpoint shares (built once by ``start_sshd``)."""

    def __init__(
        self,
        *,
        ca: SshCertificateAuthority,
        hub: SessionHub,
        lookup_user: LookupUser,
        link_url_for: LinkUrlFor,
        viewers: ViewerPorts | None = None,
    ) -> None:
        self.hub = hub
        self.viewers = viewers
        self.lookup_user = lookup_user
        self.link_url_for = link_url_for
        self.connector_trust = ca.authorized_keys()
        self.no_trust = asyncssh.import_authorized_keys("")


class GatewaySshServer(asyncssh.SSHServer):
    """One SSH connection: authentication decisions and channel dispatch."""

    def __init__(self, ctx: SshdContext) -> None:
        self._ctx = ctx
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._kind = LoginKind.REFUSED
        self._user: User | None = None
        self._token: str | None = None
        self._grant: ViewerGrant | None = None
        self._viewer_failures = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("ssh connection from %s closed: %s", self._peer, exc)

    async def _classify(self, username: str) -> tuple[LoginKind, User | None]:
        # The viewer path goes here: a name shaped like a link id → (LoginKind.VIEWER, None).
        try:
            user = await asyncio.wait_for(self._ctx.lookup_user(username), LOOKUP_TIMEOUT_S)
        except (GatewayError, TimeoutError) as exc:
            log.warning(
                "ssh login from %s: user lookup failed (%s); refusing", self._peer, type(exc).__name__
            )
            return LoginKind.REFUSED, None
        if user is None or user.disabled or user.name != username:
            return LoginKind.REFUSED, None
        return LoginKind.CONNECTOR, user

    async def begin_auth(self, username: str) -> bool:
        self._kind, self._user = await self._classify(username)
        # A link-shaped name may also log in as a viewer (decided by shape only: no probing).
        self._token = username if self._ctx.viewers is not None and looks_like_link_token(username) else None
        assert self._conn is not None
        trust = self._ctx.connector_trust if self._kind is LoginKind.CONNECTOR else self._ctx.no_trust
        self._conn.set_authorized_keys(trust)
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return self._token is not None

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return "rcgate", "Sign in to join the shared session.", "", list(PROMPTS)

    async def validate_kbdint_response(self, username: str, responses: Sequence[str]) -> bool:
        ports = self._ctx.viewers
        if ports is None or self._token is None or self._viewer_failures >= MAX_VIEWER_ATTEMPTS:
            return False
        grant = await authenticate_viewer(
            self._token, responses, ports.check_factors, ports.redeem, self._peer
        )
        if grant is None:
            # Like sshd's MaxAuthTries: a client that re-sends answers by itself gets no more tries.
            self._viewer_failures += 1
            if self._viewer_failures >= MAX_VIEWER_ATTEMPTS and self._conn is not None:
                self._conn.disconnect(
                    asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many failed attempts"
                )
            return False
        self._grant, self._kind, self._user = grant, LoginKind.VIEWER, grant.user
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def auth_completed(self) -> None:
        name = self._user.name if self._user is not None else "?"
        log.info("ssh %s login: %s from %s", self._kind.value, name, self._peer)

    def session_requested(self) -> asyncssh.SSHServerSessionFactory | bool:
        if self._kind is LoginKind.CONNECTOR:
            return self._serve_connector
        if self._kind is LoginKind.VIEWER:
            return self._serve_viewer
        return False

    async def _serve_viewer(
        self,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        assert self._grant is not None and self._ctx.viewers is not None
        await serve_viewer(self._grant, self._ctx.viewers.participants, stdin, stdout)

    async def _serve_connector(
        self,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        channel = stdout.channel
        command = channel.get_command()
        if command != EXEC_COMMAND or self._user is None:
            stderr.write(f"rcgate: this endpoint only runs {EXEC_COMMAND}\r\n".encode())
            exit_channel(stdout, 1)
            return
        await ConnectorChannel(
            user=self._user,
            hub=self._ctx.hub,
            link_url_for=self._ctx.link_url_for,
            reader=stdin,
            writer=stdout,
            peer=self._peer,
        ).run()


async def start_sshd(  # noqa: PLR0917 - the composition root's call, one argument per port
    host: str,
    port: int,
    host_key_path: Path,
    ca: SshCertificateAuthority,
    hub: SessionHub,
    lookup_user: LookupUser,
    link_url_for: LinkUrlFor,
    viewers: ViewerPorts | None = None,
) -> asyncssh.SSHAcceptor:
    """Listen for connectors on ``host:port`` (0 = any free port; ``acceptor.get_port()`` tells).

    The host key at ``host_key_path`` is created (Ed25519, 0600) on first start and reused after.
    Stop with ``acceptor.close(); await acceptor.wait_closed()``.
    """
    host_key = await asyncio.to_thread(load_or_create_host_key, host_key_path)
    ctx = SshdContext(ca=ca, hub=hub, lookup_user=lookup_user, link_url_for=link_url_for, viewers=viewers)

    def server_factory() -> asyncssh.SSHServer:
        return GatewaySshServer(ctx)

    acceptor = await asyncssh.listen(
        host,
        port,
        server_factory=server_factory,
        server_host_keys=[host_key],
        encoding=None,
        line_editor=False,
        login_timeout=LOGIN_TIMEOUT_S,
        keepalive_interval=KEEPALIVE_INTERVAL_S,
        keepalive_count_max=KEEPALIVE_COUNT_MAX,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        gss_host=None,
    )
    log.info("ssh endpoint listening on %s:%d", host, acceptor.get_port())
    return acceptor
