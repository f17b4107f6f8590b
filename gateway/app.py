"""Composition root: picks the store backend, builds the services and runs the gateway's servers."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from aiohttp import web

from gateway.auth.action_signing import ActionSigner
from gateway.auth.ceremony import RelyingParty
from gateway.auth.device import DeviceFlow
from gateway.auth.lockout import LockoutPolicy
from gateway.auth.service import AuthConfig, IdentityService
from gateway.auth.ssh_ca import SshCertificateAuthority, load_or_create_host_key, public_key_line
from gateway.connector.config import GatewayInfo, Identity
from gateway.connector.pty import LocalTerminal
from gateway.connector.share import share
from gateway.core.clock import Clock
from gateway.core.errors import BadRequest, Forbidden
from gateway.core.ids import SessionId
from gateway.core.models import Link, Role, User
from gateway.core.modes import Mode
from gateway.core.ports import Store
from gateway.hooks.timing import hook_timeout_for
from gateway.httpd.context import HttpConfig
from gateway.httpd.server import HttpServices, make_app
from gateway.links.service import LinkService
from gateway.policy import Allow, PolicyError
from gateway.policy_watch import PolicyWatcher, read_policy
from gateway.recording.catalog import Catalog
from gateway.recording.keys import RECORDING_KEY_FILE, load_or_create_signing_key
from gateway.recording.recorder import RecorderFactory
from gateway.recording.retention import prune, unindexed
from gateway.sessions.admission import actor_of, admit
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.broker import BrokerConfig
from gateway.sessions.gate import PolicyGate
from gateway.sessions.hub import Hub
from gateway.sessions.state import Limits
from gateway.settings import Settings
from gateway.sshd.server import ViewerPorts, start_sshd

log = logging.getLogger("rcgate")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHUTDOWN_TIMEOUT_S = 10.0
CA_KEY_FILE = "ssh_user_ca_ed25519"
HOST_KEY_FILE = "ssh_host_ed25519"


class SystemClock:
    """The wall clock (the only place the gateway reads it for domain decisions)."""

    def now(self) -> float:
        return time.time()


async def open_store(settings: Settings, clock: Clock) -> Store:
    if settings.store.backend == "redis":
        from gateway.store.redis import RedisStore

        return RedisStore.from_url(settings.store.redis_url, prefix=settings.store.redis_prefix, clock=clock)
    from gateway.store.embedded import EmbeddedStore

    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return await EmbeddedStore.open(EmbeddedStore.path_in(settings.data_dir), clock)


def auth_config(settings: Settings) -> AuthConfig:
    a = settings.auth
    return AuthConfig(
        rp=RelyingParty(rp_id=settings.rp_id, rp_name=a.rp_name, origins=settings.origins),
        public_url=settings.public_url,
        login_idle_timeout_s=a.login_idle_timeout_s,
        login_absolute_timeout_s=a.login_absolute_timeout_s,
        enrol_link_ttl_s=a.enrol_link_ttl_s,
        challenge_ttl_s=a.challenge_ttl_s,
        stepup_max_age_s=a.stepup_max_age_s,
        totp_issuer=a.totp_issuer,
        lockout=LockoutPolicy(
            threshold=a.lockout_threshold,
            window_s=a.lockout_window_s,
            base_s=a.lockout_base_s,
            max_s=a.lockout_max_s,
        ),
    )


def web_dir() -> Path:
    return PROJECT_ROOT / "web"


def http_config(
    settings: Settings, *, ssh_port: int | None = None, ssh_host_key: str | None = None
) -> HttpConfig:
    return HttpConfig(
        public_url=settings.public_url,
        origins=settings.origins,
        secure_cookies=settings.public_url.startswith("https://"),
        max_body_bytes=settings.http.max_body_bytes,
        web_dir=str(web_dir()),
        vendor_dir=str(web_dir() / "node_modules"),
        ssh_host=settings.ssh_public_host,
        ssh_port=ssh_port if ssh_port is not None else settings.ssh.port,
        ssh_host_key=ssh_host_key,
        join_max_age_s=settings.sessions.join_max_age_s,
    )


@dataclass
class Services:
    settings: Settings
    clock: Clock
    store: Store
    identity: IdentityService


@contextlib.asynccontextmanager
async def services(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Services]:
    """Open the store and build the services; used by `serve` and by the admin CLI verbs."""
    clock = clock or SystemClock()
    store = await open_store(settings, clock)
    try:
        yield Services(settings, clock, store, IdentityService(store, clock, auth_config(settings)))
    finally:
        await store.close()


RUNTIME_FILE = "runtime.json"


def load_policy_text(settings: Settings, *, demo: bool = False) -> tuple[str, str]:
    """The policy in force: the settings' file, else the shipped demo (for `demo`) or default one."""
    return read_policy(settings.policy.file, "demo" if demo else "default")


def record_runtime(settings: Settings, ssh_port: int | None) -> None:
    """Leave the public URL (and SSH port) in the data dir so admin CLI verbs print working links."""
    path = settings.data_dir / RUNTIME_FILE
    path.write_text(json.dumps({"public_url": settings.public_url, "ssh_port": ssh_port}), encoding="utf-8")


def runtime_public_url(data_dir: Path) -> str | None:
    try:
        data = json.loads((data_dir / RUNTIME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("public_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.http.tls_cert, settings.http.tls_key
    if cert is None and key is None:
        if settings.public_url.startswith("https://"):
            log.info("plain HTTP behind a TLS-terminating proxy for %s", settings.public_url)
            return None
        if not _is_loopback(settings.http.host):
            raise BadRequest(
                f"refusing plain HTTP on {settings.http.host}: pass --tls-cert and --tls-key "
                "(plain HTTP only on localhost, or behind a TLS proxy with an https:// --public-url)"
            )
        log.warning(
            "serving plain HTTP on %s: only for localhost; use --tls-cert/--tls-key elsewhere",
            settings.http.host,
        )
        return None
    if cert is None or key is None:
        raise BadRequest("--tls-cert and --tls-key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


async def bootstrap_admin(svc: Services, name: str = "admin") -> str | None:
    """Create the first admin when there is no user; returns its enrolment link, or None."""
    users = await svc.store.list_users()
    if not users:
        _, url = await svc.identity.add_user(name, Role.ADMIN, ("admins",), actor="bootstrap")
        return url
    admin = next((u for u in users if u.name == name), None)
    if admin is not None and not await svc.store.factors_of(admin.id):
        return await svc.identity.issue_enrol_link(admin, actor="bootstrap")
    return None


@dataclass
class Runtime:
    """A running gateway: its services and the addresses it listens on."""

    services: Services
    hub: Hub
    links: LinkService
    ca: SshCertificateAuthority
    http_url: str
    ssh_port: int | None
    ssh_host_key: str


def session_limits(settings: Settings) -> Limits:
    s = settings.sessions
    return Limits(
        grantable_modes=frozenset({Mode.VIEW_ONLY, Mode.APPROVED_EXECUTION}),
        idle_timeout_s=s.idle_timeout_s,
        max_duration_s=s.max_duration_s,
        participant_idle_timeout_s=s.participant_idle_timeout_s,
        connector_grace_s=s.connector_grace_s,
    )


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, clock: Clock | None = None, *, demo: bool = False
) -> AsyncIterator[Runtime]:
    """Start everything (store, hub, SSH endpoint, HTTP) and stop it in reverse order."""
    ssl_ctx = tls_context(settings)
    async with services(settings, clock) as svc:
        data = settings.data_dir
        ca = await asyncio.to_thread(SshCertificateAuthority.load_or_create, data / CA_KEY_FILE)
        host_key = await asyncio.to_thread(load_or_create_host_key, data / HOST_KEY_FILE)
        links = LinkService(svc.store, svc.clock, settings.public_url)
        policy = PolicyWatcher(
            file=settings.policy.file, shipped="demo" if demo else "default", data_dir=data,
            audit=svc.store, clock=svc.clock, interval_s=settings.policy.reload_interval_s,
        )  # fmt: skip
        try:
            await policy.load()
        except PolicyError as exc:
            raise BadRequest(f"the policy is not valid, not starting:\n{exc.message}") from exc
        device = DeviceFlow(svc.store, svc.store, svc.clock, ca, settings.ssh.cert_valid_s)
        recording_key = await asyncio.to_thread(load_or_create_signing_key, data / RECORDING_KEY_FILE)
        recorders = RecorderFactory(
            settings.recordings_dir,
            signing_key=recording_key,
            seek_index=settings.recordings.seek_index == "live",
        )
        catalog = Catalog(
            settings.recordings_dir, recording_key.public_key(), index_dir=data / "search-index"
        )
        approvals = ApprovalService(svc.store, svc.clock)
        signer = ActionSigner(svc.identity, svc.store)
        async with Hub(
            recorders=recorders,
            audit=svc.store,
            config=BrokerConfig(
                limits=session_limits(settings), gate=PolicyGate(policy), approvals=approvals
            ),
            hook_timeout=lambda: hook_timeout_for(policy.current().policy),
        ) as hub:

            async def link_url_for(session_id: SessionId, owner: User, mode: str) -> str:
                new = await links.create(session_id, Mode(mode), owner, ttl_s=settings.sessions.link_ttl_s)
                return new.url

            async def check_factors(name: str, password: str, code: str, remote: str) -> User:
                return await svc.identity.check_password_totp(name, password, code, remote=remote)

            async def redeem(token: str, user: User, remote: str) -> Link:
                """SSH viewers: password + TOTP were just presented; policy decides, then the link"""
                peeked = await links.peek(token)
                if peeked is not None:
                    info = hub.session(peeked.session_id)
                    now = svc.clock.now()
                    result = admit(
                        policy.current(),
                        actor_of(user, None, factor_now=True, now=now),
                        info,
                        Mode.VIEW_ONLY,
                        now,
                    )
                    allowed = isinstance(result.decision, Allow)
                    await svc.identity.audit(
                        "policy.decision", actor=user.id, subject=peeked.session_id,
                        outcome="ok" if allowed else "fail", action="join:view_only:ssh",
                        rule=result.decision.rule, policy_version=result.policy_version, remote=remote,
                    )  # fmt: skip
                    if not allowed:
                        raise Forbidden(f"policy does not let {user.name} join (rule {result.decision.rule})")
                return await links.redeem(token, user, remote=remote)

            acceptor = None
            ssh_port: int | None = None
            if settings.ssh.enabled:
                acceptor = await start_sshd(
                    settings.ssh.host,
                    settings.ssh.port,
                    data / HOST_KEY_FILE,
                    ca,
                    hub,
                    svc.store.user_by_name,
                    link_url_for,
                    ViewerPorts(check_factors=check_factors, redeem=redeem, participants=hub),
                )
                ssh_port = acceptor.get_port()
            cfg = http_config(
                settings, ssh_port=ssh_port or settings.ssh.port, ssh_host_key=public_key_line(host_key)
            )
            app = make_app(
                HttpServices(
                    identity=svc.identity,
                    links=links,
                    device=device,
                    hub=hub,
                    policy=policy,
                    approvals=approvals,
                    signer=signer,
                    recordings=catalog,
                ),
                cfg,
            )
            runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
            await runner.setup()
            watcher = asyncio.ensure_future(policy.run())
            approvals_task = asyncio.ensure_future(approvals.run())
            retention_task = asyncio.ensure_future(retention_loop(settings, svc, hub, data / "search-index"))
            indexer_task = asyncio.ensure_future(seek_index_loop(settings, hub))
            try:
                site = web.TCPSite(runner, settings.http.host, settings.http.port, ssl_context=ssl_ctx)
                await site.start()
                record_runtime(settings, ssh_port)
                yield Runtime(svc, hub, links, ca, settings.public_url, ssh_port, public_key_line(host_key))
            finally:
                # Approvals first: it denies what is pending and closes its event streams, which
                # runner.cleanup() would otherwise wait out.
                for task in (approvals_task, watcher, retention_task, indexer_task):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await runner.cleanup()
                if acceptor is not None:
                    acceptor.close()
                    await acceptor.wait_closed()


async def retention_loop(settings: Settings, svc: Services, hub: Hub, index_dir: Path) -> None:
    """Apply ``recordings.retain_days`` now and every ``retention_interval_s`` (docs/recording-format.md).

    Each deletion is a ``recording.deleted`` audit event; held and live recordings are kept.
    """
    days = settings.recordings.retain_days
    if days is None:
        return
    loop = asyncio.get_running_loop()

    def audit(type_: str, subject: str, outcome: str, detail: dict[str, Any]) -> None:
        done = asyncio.run_coroutine_threadsafe(
            svc.identity.audit(type_, actor="system", subject=subject, outcome=outcome, **detail), loop
        )
        done.result()

    while True:
        live = {str(s.session_id) for s in hub.sessions()}
        try:
            result = await asyncio.to_thread(
                prune, settings.recordings_dir, days, now=svc.clock.now(), audit=audit,
                live_ids=live, index_dirs=[index_dir],
            )  # fmt: skip
            if result.deleted:
                log.info("retention: deleted %d recording(s) older than %g days", len(result.deleted), days)
        except Exception:
            log.exception("retention failed; trying again in %g s", settings.recordings.retention_interval_s)
        await asyncio.sleep(settings.recordings.retention_interval_s)


SEEK_INDEX_POLL_S = 30.0  # how often finished recordings without a seek index are looked for
SEEK_INDEX_TIMEOUT_S = 3600.0  # one recording's index build may take this long at most


async def seek_index_loop(settings: Settings, hub: Hub, poll_s: float = SEEK_INDEX_POLL_S) -> None:
    """``recordings.seek_index: after``: index every finished recording that has no seek index.

    One at a time, newest first, each in a subprocess (``rcgate recordings reindex ID``) at a
    lower CPU priority: the terminal emulator costs about 2 s of CPU per MB of output, which
    must never be taken from the event loop of live sessions. A recording whose build fails is
    not tried again until the gateway restarts.
    """
    if settings.recordings.seek_index != "after":
        return
    failed: set[str] = set()
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    base = [*nice, sys.executable, "-m", "gateway.cli", "recordings", "reindex"]
    places = ["--data-dir", str(settings.data_dir), "--recordings-dir", str(settings.recordings_dir)]
    while True:
        live = {str(s.session_id) for s in hub.sessions()}
        try:
            todo = await asyncio.to_thread(unindexed, settings.recordings_dir, now=time.time(), live_ids=live)
        except Exception:
            log.exception("seek index: could not list recordings")
            todo = []
        for cast in todo:
            if cast.stem in failed:
                continue
            proc = await asyncio.create_subprocess_exec(
                *base, cast.stem, *places,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                async with asyncio.timeout(SEEK_INDEX_TIMEOUT_S):
                    _, err = await proc.communicate()
            except (TimeoutError, asyncio.CancelledError) as exc:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                failed.add(cast.stem)
                log.warning("seek index of %s: gave up after %g s", cast.stem, SEEK_INDEX_TIMEOUT_S)
                continue
            if proc.returncode != 0:
                failed.add(cast.stem)
                log.warning("seek index of %s failed: %s", cast.stem, err.decode(errors="replace")[-300:])
        await asyncio.sleep(poll_s)


DEMO_COMMAND = ("bash", "-i")


async def share_demo_session(rt: Runtime, settings: Settings) -> int:
    """The demo's shared shell, owned by the bootstrap admin, connected like any workstation.

    The connector runs in this process with a key made now and a certificate from the gateway CA
    (what `rcgate login` would fetch); its link notice (URL and QR code) goes to this stdout.
    """
    admin = await rt.services.identity.user_by_name("admin")
    key = asyncssh.generate_private_key("ssh-ed25519")
    cert = rt.ca.issue_user_certificate(
        key.export_public_key().decode(), admin.name, "demo", now=rt.services.clock.now()
    )
    ident = Identity(
        gateway=GatewayInfo(
            url=settings.public_url,
            ssh_host=settings.ssh.host,
            ssh_port=rt.ssh_port or settings.ssh.port,
            user=admin.name,
            ssh_host_key=rt.ssh_host_key,
        ),
        key=key,
        certificate=asyncssh.import_certificate(cert),
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        terminal = LocalTerminal(None, devnull, sys.stdout.fileno())
        return await share(
            list(DEMO_COMMAND),
            labels={"demo": "yes"},
            identity=ident,
            terminal=terminal,
            forward_signals=False,
        )
    finally:
        os.close(devnull)


async def run_gateway(settings: Settings, *, demo: bool = False) -> None:
    """Serve until SIGINT or SIGTERM, then shut down in aiohttp's documented order."""
    async with running_gateway(settings, demo=demo) as rt, asyncio.TaskGroup() as tg:
        demo_task: asyncio.Task[int] | None = None
        ssh = f", ssh :{rt.ssh_port}" if rt.ssh_port else ""
        print(
            f"rcgate gateway listening on {settings.public_url}{ssh}  (store: {settings.store.backend})",
            flush=True,
        )
        if demo:
            url = await bootstrap_admin(rt.services)
            print("", flush=True)
            if url:
                print("Enrol the admin account (one-time link, valid 24 h):", flush=True)
                print(f"  {url}", flush=True)
            else:
                print(f"Admin already enrolled: sign in at {settings.public_url}/login", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            if rt.ssh_port:
                print("\nDemo session: a shell shared by admin. Sign in, then open its link:", flush=True)
                demo_task = tg.create_task(share_demo_session(rt, settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if demo_task is not None:
                demo_task.cancel()
