"""A real aiohttp gateway app on the embedded store, driven through its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from gateway.app import auth_config, http_config
from gateway.auth.action_signing import ActionSigner
from gateway.auth.device import DeviceFlow
from gateway.auth.service import IdentityService
from gateway.auth.ssh_ca import SshCertificateAuthority
from gateway.core.clock import FixedClock
from gateway.core.models import Role
from gateway.core.modes import Mode
from gateway.httpd.server import HttpServices, make_app
from gateway.links.service import LinkService
from gateway.policy_watch import PolicyWatcher
from gateway.recording.recorder import RecorderFactory
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.broker import BrokerConfig
from gateway.sessions.gate import PolicyGate
from gateway.sessions.hub import Hub
from gateway.sessions.state import Limits
from gateway.settings import Settings, load_settings
from gateway.store.embedded import EmbeddedStore
from tests.fixtures.soft_authenticator import SoftAuthenticator

ORIGIN = "http://localhost:8080"


class Api:
    """One browser: its own cookie jar, the Origin header, the CSRF token, JSON bodies."""

    def __init__(self, client: TestClient, origin: str = ORIGIN) -> None:
        self.client = aiohttp.ClientSession(
            base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        self.origin = origin
        self.csrf = ""

    async def refresh(self) -> dict[str, Any]:
        r = await self.client.get("/api/me")
        me: dict[str, Any] = await r.json()
        self.csrf = me["csrf_token"]
        return me

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        if not self.csrf:
            await self.refresh()
        h = {"Origin": self.origin, "X-CSRF-Token": self.csrf, "Content-Type": "application/json"}
        h.update(headers or {})
        kwargs: dict[str, Any] = {"headers": h}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        r = await self.client.request(method, path, **kwargs)
        data = await r.json() if r.content_type == "application/json" else None
        return r.status, data

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.call("POST", path, {} if body is None else body)


class Gateway:
    def __init__(self, client: TestClient, identity: IdentityService, clock: FixedClock, settings: Settings):
        self.client = client
        self.identity = identity
        self.clock = clock
        self.settings = settings
        self.hub: Hub | None = None
        self.approvals: ApprovalService | None = None
        self.ca: SshCertificateAuthority | None = None

        self.browsers: list[Api] = []

    def api(self) -> Api:
        api = Api(self.client)
        self.browsers.append(api)
        return api

    async def close(self) -> None:
        for b in self.browsers:
            await b.client.close()

    async def enrol_passkey(
        self, name: str, role: Role = Role.MEMBER, groups: tuple[str, ...] = ()
    ) -> tuple[Api, SoftAuthenticator]:
        _, url = await self.identity.add_user(name, role, groups)
        api = self.api()
        status, _ = await api.post("/api/enrol/start", {"token": url.split("#token=")[1]})
        assert status == 200
        await api.refresh()
        auth = SoftAuthenticator()
        status, opts = await api.post("/api/factors/passkey/options")
        assert status == 200, opts
        cred = auth.create(opts["options"], ORIGIN)
        status, body = await api.post(
            "/api/factors/passkey",
            {"challenge_id": opts["challenge_id"], "credential": cred, "name": "laptop"},
        )
        assert status == 200, body
        return api, auth

    async def enrol_totp(self, name: str, password: str = "correct horse battery") -> tuple[Api, str]:
        _, url = await self.identity.add_user(name)
        api = self.api()
        status, _ = await api.post("/api/enrol/start", {"token": url.split("#token=")[1]})
        assert status == 200
        await api.refresh()
        status, _ = await api.post("/api/password", {"password": password})
        assert status == 204
        status, setup = await api.post("/api/factors/totp/options")
        code = pyotp.TOTP(setup["secret"]).at(self.clock.now())
        status, body = await api.post(
            "/api/factors/totp", {"challenge_id": setup["challenge_id"], "code": code, "name": "phone"}
        )
        assert status == 200, body
        return api, setup["secret"]


@pytest_asyncio.fixture
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_client: Any, clock: FixedClock
) -> AsyncIterator[Gateway]:
    """The gateway under the shipped demo policy (parametrize indirectly with "default" for the other)."""
    settings = load_settings(None, data_dir=str(tmp_path), **{"http.public_url": ORIGIN})
    store = await EmbeddedStore.open(EmbeddedStore.path_in(tmp_path), clock)
    identity = IdentityService(store, clock, auth_config(settings))
    ca = SshCertificateAuthority.load_or_create(tmp_path / "ssh_user_ca_ed25519")
    param = getattr(request, "param", "demo")
    policy_file = None
    if param not in ("demo", "default"):  # a policy text
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(param)
    policy = PolicyWatcher(file=policy_file, shipped=param, data_dir=tmp_path, audit=store, clock=clock)
    await policy.load()
    limits = Limits(grantable_modes=frozenset({Mode.VIEW_ONLY, Mode.APPROVED_EXECUTION}))
    approvals = ApprovalService(store, clock)
    config = BrokerConfig(limits=limits, gate=PolicyGate(policy), approvals=approvals)
    hub_ = Hub(
        recorders=RecorderFactory(tmp_path / "recordings"), audit=store, config=config, wall_clock=clock
    )
    async with hub_ as hub:
        services = HttpServices(
            identity=identity,
            links=LinkService(store, clock, ORIGIN),
            device=DeviceFlow(store, store, clock, ca),
            hub=hub,
            policy=policy,
            approvals=approvals,
            signer=ActionSigner(identity, store),
        )
        client = await aiohttp_client(make_app(services, http_config(settings)))
        gw = Gateway(client, identity, clock, settings)
        gw.hub = hub
        gw.approvals = approvals
        gw.ca = ca
        yield gw
        await gw.close()
    await store.close()


@pytest.fixture
def totp_now(clock: FixedClock) -> Any:
    return lambda secret, offset=0.0: pyotp.TOTP(secret).at(clock.now() + offset)
