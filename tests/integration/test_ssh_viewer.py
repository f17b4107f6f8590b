"""SSH viewers against the real gateway runtime: a wrong code is refused, the right one joins view-only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pyotp
import pytest

from gateway.app import running_gateway
from gateway.core.clock import FixedClock
from gateway.core.ids import UserId
from gateway.core.modes import Mode
from gateway.sessions.ports import SessionMeta
from gateway.settings import load_settings
from tests.integration.test_sessions_api import FakeUplink

PASSWORD = "correct horse battery"


class Kbdint(asyncssh.SSHClient):
    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def kbdint_auth_requested(self) -> str:
        return ""

    def kbdint_challenge_received(
        self, name: str, instructions: str, lang: str, prompts: list[tuple[str, bool]]
    ) -> list[str]:
        return self.answers[: len(prompts)]


async def _connect(port: int, token: str, answers: list[str]) -> asyncssh.SSHClientConnection:
    conn, _ = await asyncssh.create_connection(
        lambda: Kbdint(answers),
        "127.0.0.1",
        port,
        username=token,
        known_hosts=None,
        client_keys=None,
        preferred_auth="keyboard-interactive",
    )
    return conn


async def test_ssh_viewer_wrong_code_refused_right_code_joins_view_only(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        recordings_dir=str(tmp_path / "rec"),
        **{
            "http.port": 0,
            "ssh.port": 0,
            "policy.file": str(Path(__file__).resolve().parents[2] / "gateway/policy/demo_policy.yaml"),
        },
    )
    clock = FixedClock(1_767_225_600.0)
    async with running_gateway(settings, clock) as rt:
        identity = rt.services.identity
        owner, _ = await identity.add_user("olivia")
        viewer, _ = await identity.add_user("tess")
        # TOTP + password for the viewer, straight through the store (the web flow is tested elsewhere).
        from gateway.auth.passwords import hash_password
        from gateway.core.ids import FactorId, new_id
        from gateway.core.models import TotpFactor

        secret = pyotp.random_base32()
        store = rt.services.store
        await store.update_user(viewer.model_copy(update={"password_hash": hash_password(PASSWORD)}))
        await store.add_factor(
            TotpFactor(
                id=FactorId(new_id("fac")),
                user_id=viewer.id,
                name="phone",
                created_at=clock.now(),
                secret=secret,
                confirmed=True,
            )
        )
        uplink = FakeUplink()
        meta = SessionMeta(
            owner_id=UserId(owner.id), owner_name="olivia", host="ws1", cwd="/", command=("bash",)
        )
        handle = await rt.hub.open_session(meta, uplink)
        handle.output(0, b"visible-to-viewers\r\n")
        new = await rt.links.create(handle.session_id, Mode.VIEW_ONLY, owner)
        assert rt.ssh_port is not None

        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(rt.ssh_port, new.token, ["tess", PASSWORD, "000000"])
        good = pyotp.TOTP(secret).at(clock.now())
        conn = await _connect(rt.ssh_port, new.token, ["tess", PASSWORD, good])
        async with conn:
            proc = await conn.create_process(term_type="xterm", term_size=(80, 24), encoding=None)
            seen = b""
            async with asyncio.timeout(10):
                while b"visible-to-viewers" not in seen:
                    seen += await proc.stdout.read(4096)
            proc.stdin.write(b"rm -rf /\r")
            async with asyncio.timeout(10):
                while b"view-only" not in seen:
                    seen += await proc.stdout.read(4096)
            assert bytes(uplink.input) == b""
            proc.close()
