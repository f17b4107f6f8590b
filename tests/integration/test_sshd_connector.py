"""The gateway SSH endpoint with a real asyncssh server (and the real OpenSSH client) and a fake hub."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from gateway.protocol import connector_wire as wire
from tests.integration.sshd_env import LINK_BASE, SshdEnv, sshd_env

HELLO = {
    "version": 1,
    "resume": None,
    "host": "ws1",
    "cwd": "/home/alice/repo",
    "command": ["claude"],
    "labels": {"repo": "rcgate"},
    "cols": 120,
    "rows": 40,
    "mode": "view_only",
}
TIMEOUT_S = 10.0


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SshdEnv]:
    async with sshd_env(tmp_path) as e:
        yield e


async def _connect(
    env: SshdEnv,
    user: str,
    client_keys: list[asyncssh.SSHKey] | list[tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]],
) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(
        asyncssh.connect(
            "127.0.0.1",
            env.port,
            username=user,
            client_keys=client_keys,
            known_hosts=None,
            agent_path=None,
            config=[],
            preferred_auth="publickey",
        ),
        TIMEOUT_S,
    )


class Peer:
    """The connector end of one channel, speaking raw frames."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes], reader: asyncssh.SSHReader[bytes]) -> None:
        self.writer, self.reader = writer, reader
        self.decoder = wire.Decoder()
        self.frames: list[wire.Frame] = []

    def send(self, *frames: wire.Frame) -> None:
        for frame in frames:
            self.writer.write(wire.encode(frame))

    async def next(self) -> wire.Frame | None:
        """Next frame, or None at end of channel."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT_S)
            if not data:
                return None
            self.frames += self.decoder.feed(data)
        return self.frames.pop(0)


async def _open_peer(conn: asyncssh.SSHClientConnection, command: str = wire.EXEC_COMMAND) -> Peer:
    writer, reader, _ = await conn.open_session(command=command, encoding=None)
    return Peer(writer, reader)


async def _connector(env: SshdEnv, user: str = "alice") -> tuple[asyncssh.SSHClientConnection, Peer]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    conn = await _connect(env, user, [(key, env.cert_for(key, user))])
    return conn, await _open_peer(conn)


async def test_connector_with_valid_certificate_registers_streams_and_gets_input(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        welcome = await peer.next()
        assert isinstance(welcome, wire.Welcome)
        session = env.hub.only
        assert welcome.info == {
            "session_id": session.id,
            "resume_token": session.token,
            "hook_token": "hook-" + session.token,
            "hook_timeout_s": 130,
            "link_url": LINK_BASE + session.id,
            "received": 0,
        }
        assert session.meta.owner_id == "usr_alice"
        assert (session.meta.host, session.meta.cwd, list(session.meta.command)) == (
            "ws1",
            "/home/alice/repo",
            ["claude"],
        )
        assert (session.meta.cols, session.meta.rows) == (120, 40)
        assert dict(session.meta.labels) == {"repo": "rcgate"}
        assert env.link_requests == [(session.id, "alice", "view_only")]

        peer.send(wire.Output(0, b"hello "), wire.Output(6, b"world"), wire.Resize(100, 30))
        await env.hub.until(lambda: ("resize", 100, 30) in session.events)
        assert bytes(session.output) == b"hello world"

        session.uplink.send_input(b"ls -la\r")
        assert await peer.next() == wire.Input(b"ls -la\r")

        peer.send(wire.Exit(3))
        await env.hub.until(lambda: ("exited", 3) in session.events)
        assert await peer.next() is None  # the gateway closes the channel after EXIT
        assert session.gaps == 0 and ("lost",) not in session.events


async def test_channel_is_not_read_while_the_broker_is_behind(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)
        session = env.hub.only
        env.hub.room.clear()
        peer.writer.write(wire.encode(wire.Output(0, b"first")) + wire.encode(wire.Output(5, b"second")))
        await env.hub.until(lambda: ("drain-wait",) in session.events)
        assert bytes(session.output) == b"first"  # "second" waits until the broker has room
        env.hub.room.set()
        await env.hub.until(lambda: bytes(session.output) == b"firstsecond")


async def test_large_remote_input_is_split_into_bounded_frames(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)
        env.hub.only.uplink.send_input(b"x" * 200_000)
        got = b""
        while len(got) < 200_000:
            frame = await peer.next()
            assert isinstance(frame, wire.Input) and len(frame.data) <= 64 * 1024
            got += frame.data
        assert got == b"x" * 200_000


async def test_stop_ends_sharing_and_closes_the_channel(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)
        peer.send(wire.Stop())
        assert await peer.next() is None
        assert ("stopped",) in env.hub.only.events


async def test_end_from_the_hub_reaches_the_connector_and_closes_the_channel(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)
        env.hub.only.uplink.send_end("idle timeout")
        assert await peer.next() == wire.End("idle timeout")
        assert await peer.next() is None
        assert ("lost",) not in env.hub.only.events  # an ended session is not "lost"


async def test_dropped_connection_is_reported_as_connector_lost(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    peer.send(wire.Hello(HELLO))
    assert isinstance(await peer.next(), wire.Welcome)
    conn.abort()
    await env.hub.until(lambda: ("lost",) in env.hub.only.events)


async def test_resume_returns_what_the_gateway_holds_and_overlap_is_trimmed(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    peer.send(wire.Hello(HELLO))
    welcome = await peer.next()
    assert isinstance(welcome, wire.Welcome)
    peer.send(wire.Output(0, b"abcdef"))
    session = env.hub.only
    await env.hub.until(lambda: len(session.output) == 6)
    conn.abort()
    await env.hub.until(lambda: ("lost",) in session.events)

    conn2, peer2 = await _connector(env)
    async with conn2:
        resume = {"session_id": welcome.info["session_id"], "resume_token": welcome.info["resume_token"]}
        peer2.send(wire.Hello({**HELLO, "resume": resume}))
        again = await peer2.next()
        assert isinstance(again, wire.Welcome)
        assert again.info["received"] == 6 and again.info["session_id"] == session.id
        assert again.info["link_url"] == ""  # the link was printed at the start already
        peer2.send(wire.Output(4, b"efgh"), wire.Output(2, b"cd"))  # overlap, then a pure duplicate
        peer2.send(wire.Output(8, b"ij"), wire.Exit(0))
        await env.hub.until(lambda: ("exited", 0) in session.events)
    assert bytes(session.output) == b"abcdefghij"
    assert session.gaps == 0
    assert env.hub.calls == [("open", session.id), ("resume", session.id)]


@pytest.mark.parametrize("wrong", ["token", "session", "owner"])
async def test_resume_that_the_hub_refuses_gets_end_with_the_reason(env: SshdEnv, wrong: str) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        welcome = await peer.next()
        assert isinstance(welcome, wire.Welcome)
    resume = {"session_id": welcome.info["session_id"], "resume_token": welcome.info["resume_token"]}
    if wrong == "token":
        resume["resume_token"] = "forged"
    elif wrong == "session":
        resume["session_id"] = "ses_nope"
    conn2, peer2 = await _connector(env, "bob" if wrong == "owner" else "alice")
    async with conn2:
        peer2.send(wire.Hello({**HELLO, "resume": resume}))
        end = await peer2.next()
        assert isinstance(end, wire.End) and end.reason
        assert await peer2.next() is None
    assert len(env.hub.sessions) == 1


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x00\x00\x01\x63",  # unknown kind 99
        wire.encode(wire.Output(0, b"before hello")),
        wire.encode(wire.Hello({**HELLO, "version": 2})),
        wire.encode(wire.Hello({**HELLO, "cols": 0})),
        wire.encode(wire.Hello({**HELLO, "surprise": True})),
        wire.encode(wire.Hello({**HELLO, "mode": "root"})),
        b"\x00\x00\x00\x05\x01{no}",  # malformed JSON
        b"\x7f\xff\xff\xff\x02",  # oversize
    ],
    ids=[
        "unknown-kind",
        "output-first",
        "version",
        "zero-cols",
        "extra-field",
        "bad-mode",
        "bad-json",
        "oversize",
    ],
)
async def test_malformed_first_frame_drops_the_link_without_a_session(
    env: SshdEnv, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.writer.write(bad)
        assert await peer.next() is None
        await asyncio.wait_for(conn.wait_closed(), TIMEOUT_S)
    assert env.hub.sessions == {}
    assert "protocol error, link dropped" in caplog.text


@pytest.mark.parametrize(
    "bad",
    [wire.Output(5, b"gap"), wire.Welcome({}), wire.Hello(HELLO), wire.Input(b"x")],
    ids=["output-gap", "welcome", "second-hello", "input"],
)
async def test_bad_frame_mid_stream_drops_the_link_and_reports_it_lost(env: SshdEnv, bad: wire.Frame) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)
        peer.send(bad)
        assert await peer.next() is None
    await env.hub.until(lambda: ("lost",) in env.hub.only.events)


async def test_out_of_range_resize_is_ignored_not_fatal(env: SshdEnv) -> None:
    conn, peer = await _connector(env)
    async with conn:
        peer.send(wire.Hello(HELLO), wire.Resize(0, 0), wire.Resize(65535, 65535), wire.Resize(90, 20))
        assert isinstance(await peer.next(), wire.Welcome)
        session = env.hub.only
        await env.hub.until(lambda: any(e[0] == "resize" for e in session.events))
        assert [e for e in session.events if e[0] == "resize"] == [("resize", 90, 20)]


async def test_any_other_exec_command_is_refused(env: SshdEnv) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    # A certificate without the forced command, so the requested command reaches the server.
    cert = env.ca.key.generate_user_certificate(key, "k", principals=["alice"], valid_before="+5m")
    async with await _connect(env, "alice", [(key, cert)]) as conn:
        result = await asyncio.wait_for(conn.run("bash -i"), TIMEOUT_S)
        assert result.exit_status == 1
        assert "only runs rcgate-connector/1" in str(result.stderr)
    assert env.hub.sessions == {}


async def test_the_certificate_forces_the_connector_command(env: SshdEnv) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    async with await _connect(env, "alice", [(key, env.cert_for(key, "alice"))]) as conn:
        peer = await _open_peer(conn, command="bash -i")
        peer.send(wire.Hello(HELLO))
        assert isinstance(await peer.next(), wire.Welcome)


def _other_ca_cert(key: asyncssh.SSHKey, principal: str) -> asyncssh.SSHCertificate:
    other = asyncssh.generate_private_key("ssh-ed25519")
    return other.generate_user_certificate(key, "x", principals=[principal], valid_before="+1h")


@pytest.mark.parametrize(
    "case",
    ["expired", "not-yet-valid", "other-ca", "wrong-principal", "plain-key", "disabled-user", "unknown-user"],
)
async def test_connector_without_an_acceptable_certificate_is_refused(env: SshdEnv, case: str) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    user = {"disabled-user": "mallory", "unknown-user": "nobody"}.get(case, "alice")
    keys: list[asyncssh.SSHKey] | list[tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]]
    if case == "expired":
        keys = [(key, env.cert_for(key, "alice", now=time.time() - 13 * 3600, valid_s=12 * 3600))]
    elif case == "not-yet-valid":
        keys = [(key, env.cert_for(key, "alice", now=time.time() + 3600))]
    elif case == "other-ca":
        keys = [(key, _other_ca_cert(key, "alice"))]
    elif case == "wrong-principal":
        keys = [(key, env.cert_for(key, "bob"))]
    elif case == "plain-key":
        keys = [key]
    else:
        keys = [(key, env.cert_for(key, user))]
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(env, user, keys)
    assert env.hub.sessions == {}


async def test_password_and_keyboard_interactive_are_not_offered(env: SshdEnv) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncio.wait_for(
            asyncssh.connect(
                "127.0.0.1",
                env.port,
                username="alice",
                password="secret",
                client_keys=None,
                known_hosts=None,
                agent_path=None,
                config=[],
            ),
            TIMEOUT_S,
        )


@pytest.mark.skipif(shutil.which("ssh") is None, reason="`make test` installs openssh-client")
async def test_real_openssh_client_with_a_certificate_is_accepted(env: SshdEnv, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path, cert_path = tmp_path / "k", tmp_path / "k-cert.pub"
    key.write_private_key(str(key_path))
    os.chmod(key_path, 0o600)
    env.cert_for(key, "alice").write_certificate(str(cert_path))
    proc = await asyncio.create_subprocess_exec(
        "ssh",
        "-F", "/dev/null",
        "-i", str(key_path),
        "-o", f"CertificateFile={cert_path}",
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-T",
        "-p", str(env.port),
        "alice@127.0.0.1",
        wire.EXEC_COMMAND,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(wire.encode(wire.Hello(HELLO)))
    await proc.stdin.drain()
    decoder = wire.Decoder()
    frames: list[wire.Frame] = []
    while not frames:
        data = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT_S)
        assert data, (await proc.stderr.read()).decode()
        frames = decoder.feed(data)
    assert isinstance(frames[0], wire.Welcome)
    assert frames[0].info["session_id"] == env.hub.only.id
    proc.stdin.write(wire.encode(wire.Exit(0)))
    await proc.stdin.drain()
    assert await asyncio.wait_for(proc.wait(), TIMEOUT_S) == 0
    assert ("exited", 0) in env.hub.only.events
