"""`rcgate recordings verify|pubkey|list|export` on recordings written by the real recorder."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli import main
from gateway.core.ids import SessionId, UserId
from gateway.recording.chain import fingerprint
from gateway.recording.keys import (
    RECORDING_KEY_FILE,
    load_or_create_signing_key,
    parse_public_key,
    public_key_openssh,
)
from gateway.recording.recorder import Recorder, RecorderFactory, sidecars_of
from gateway.sessions.ports import SessionMeta

Capsys = pytest.CaptureFixture[str]
META = SessionMeta(
    owner_id=UserId("usr_a"), owner_name="alice", host="laptop", cwd="/src", command=("claude",)
)


@dataclass
class Gateway:
    """A data dir with the recording key, and recordings: one finished, one still live."""

    root: Path
    data: Path
    recordings: Path
    done: Path
    live: Recorder

    def argv(self, *args: str) -> list[str]:
        return [*args, "--data-dir", str(self.data), "--recordings-dir", str(self.recordings)]


@pytest_asyncio.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    data, recordings = tmp_path / "data", tmp_path / "recordings"
    key = load_or_create_signing_key(data / RECORDING_KEY_FILE)
    factory = RecorderFactory(recordings, signing_key=key, batch_window_s=0.01, checkpoint_interval_s=0)
    done = await factory(SessionId("ses_done"), META, lambda _: None)
    runner = asyncio.ensure_future(done.run())
    for i in range(50):
        done.output(b"$ make step %d\r\n" % i)
        if i % 10 == 0:
            await asyncio.sleep(0.02)  # a few batches, so a few checkpoints
    done.marker("join bob (view_only)")
    await done.close("owner stopped sharing")
    await runner
    live = await factory(SessionId("ses_live"), META, lambda _: None)
    live_runner = asyncio.ensure_future(live.run())
    live.output(b"still running\r\n")
    chain = sidecars_of(live.path).chain
    async with asyncio.timeout(5):  # on disk and signed: the live recorder is idle from here on
        while chain.read_bytes().count(b"\n") < 2:
            await asyncio.sleep(0.005)
    yield Gateway(tmp_path, data, recordings, done.path, live)
    await live.close("test over")
    await live_runner


@dataclass
class Result:
    code: int
    out: str
    err: str


async def rcgate(capsys: Capsys, argv: list[str]) -> Result:
    try:
        code = await asyncio.to_thread(main, ["recordings", *argv])
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


async def test_verify_by_id_and_by_file(gateway: Gateway, capsys: Capsys) -> None:
    by_id = await rcgate(capsys, gateway.argv("verify", "ses_done"))
    assert by_id.code == 0, by_id.err
    assert "cast   INTACT" in by_id.out and "audit  INTACT" in by_id.out
    assert "result: intact (exit 0)" in by_id.out
    by_file = await rcgate(capsys, gateway.argv("verify", str(gateway.done), "--json"))
    doc = json.loads(by_file.out)
    assert by_file.code == doc["exit_code"] == 0
    assert [r["outcome"] for r in doc["reports"]] == ["intact", "intact"]


async def test_a_live_recording_verifies_up_to_its_last_checkpoint(gateway: Gateway, capsys: Capsys) -> None:
    r = await rcgate(capsys, gateway.argv("verify", "ses_live"))
    assert r.code == 2
    assert "TRUNCATED_TAIL" in r.out and "verified up to t=" in r.out


async def test_a_changed_byte_exits_1_and_names_the_line(gateway: Gateway, capsys: Capsys) -> None:
    lines = gateway.done.read_bytes().split(b"\n")
    lines[7] = lines[7].replace(b"step", b"stop")
    gateway.done.write_bytes(b"\n".join(lines))
    r = await rcgate(capsys, gateway.argv("verify", "ses_done"))
    assert r.code == 1
    assert "ALTERED" in r.out and "first mismatch at line 8: line 8 was altered" in r.out
    assert "result: TAMPERED (exit 1)" in r.out


@pytest.mark.parametrize(
    "bad_id", ["../ses_done", "../../etc/passwd", "/etc/passwd", "2026/01/ses_done", "..", "ses done", ""]
)
async def test_ids_that_are_paths_are_refused(gateway: Gateway, capsys: Capsys, bad_id: str) -> None:
    for action in (["verify", bad_id], ["export", bad_id, "-o", str(gateway.root / "x.tar.gz")]):
        r = await rcgate(capsys, gateway.argv(*action))
        assert r.code == 3, (action, r.err)
        assert "not a recording id" in r.err
    assert not (gateway.root / "x.tar.gz").exists()


async def test_not_found_and_usage_errors_exit_3(gateway: Gateway, capsys: Capsys) -> None:
    missing = await rcgate(capsys, gateway.argv("verify", "ses_nope"))
    assert missing.code == 3 and "no recording ses_nope" in missing.err
    no_file = await rcgate(capsys, gateway.argv("verify", str(gateway.root / "nope.cast")))
    assert no_file.code == 3 and "no such file" in no_file.err
    usage = await rcgate(capsys, gateway.argv("verify"))
    assert usage.code == 3 and "required" in usage.err
    no_key = await rcgate(capsys, ["verify", str(gateway.done), "--data-dir", str(gateway.root / "empty")])
    assert no_key.code == 3 and "--pubkey" in no_key.err


async def test_pubkey_prints_the_key_that_verifies(gateway: Gateway, capsys: Capsys) -> None:
    ssh = await rcgate(capsys, gateway.argv("pubkey"))
    pem = await rcgate(capsys, gateway.argv("pubkey", "--pem"))
    assert ssh.code == pem.code == 0
    assert ssh.out.startswith("ssh-ed25519 AAAA") and ssh.out.strip().endswith("rcgate-recordings")
    assert pem.out.startswith("-----BEGIN PUBLIC KEY-----")
    key = parse_public_key(ssh.out.encode())
    assert key == parse_public_key(pem.out.encode())
    assert fingerprint(key) in ssh.err
    assert (gateway.data / RECORDING_KEY_FILE).stat().st_mode & 0o777 == 0o600


async def test_list_shows_who_where_when_and_the_verdict(gateway: Gateway, capsys: Capsys) -> None:
    table = await rcgate(capsys, gateway.argv("list"))
    assert table.code == 0
    rows = {line.split()[0]: line for line in table.out.splitlines()[1:]}
    assert rows.keys() == {"ses_done", "ses_live"}
    assert "alice" in rows["ses_done"] and "laptop" in rows["ses_done"]
    assert rows["ses_done"].endswith("intact") and rows["ses_live"].endswith("open (unsigned tail)")
    doc = json.loads((await rcgate(capsys, gateway.argv("list", "--json"))).out)
    done = next(d for d in doc if d["id"] == "ses_done")
    assert (done["owner"], done["host"], done["state"]) == ("alice", "laptop", "intact")
    assert done["size"] == gateway.done.stat().st_size and done["duration"] >= 0


async def test_exporting_a_live_recording_is_refused(gateway: Gateway, capsys: Capsys) -> None:
    out = gateway.root / "live.tar.gz"
    r = await rcgate(capsys, gateway.argv("export", "ses_live", "-o", str(out)))
    assert r.code == 1
    assert "refused" in r.err and "may still be live" in r.err
    forced = await rcgate(capsys, gateway.argv("export", "ses_live", "-o", str(out), "--allow-unfinished"))
    assert forced.code == 1 and "its session is live" in forced.err
    assert not out.exists()


async def test_an_unfinished_recording_left_by_a_crash_exports_with_its_tail_unsigned(
    gateway: Gateway, capsys: Capsys
) -> None:
    old = gateway.live.path.stat().st_mtime - 3600
    for p in gateway.live.path.parent.glob("ses_live.*"):
        os.utime(p, (old, old))
    out = gateway.root / "crashed.tar.gz"
    r = await rcgate(capsys, gateway.argv("export", "ses_live", "-o", str(out), "--allow-unfinished"))
    assert r.code == 2, r.err
    v = await rcgate(capsys, ["verify", str(out), "--data-dir", str(gateway.root / "elsewhere")])
    assert v.code == 2


async def test_an_export_bundle_verifies_on_its_own(gateway: Gateway, capsys: Capsys, tmp_path: Path) -> None:
    bundle = gateway.root / "ses_done.tar.gz"
    exported = await rcgate(capsys, gateway.argv("export", "ses_done", "-o", str(bundle)))
    assert exported.code == 0, exported.err
    assert bundle.stat().st_mode & 0o777 == 0o600
    with tarfile.open(bundle) as tar:
        names = sorted(tar.getnames())
    assert names == [
        "ses_done",
        "ses_done/README.txt",
        "ses_done/recording_ed25519.pub",
        "ses_done/ses_done.audit.chain",
        "ses_done/ses_done.audit.jsonl",
        "ses_done/ses_done.cast",
        "ses_done/ses_done.chain",
    ]
    again = await rcgate(capsys, gateway.argv("export", "ses_done", "-o", str(bundle)))
    assert again.code == 1 and "exists" in again.err

    elsewhere = ["--data-dir", str(tmp_path / "another-machine")]
    alone = await rcgate(capsys, ["verify", str(bundle), *elsewhere])
    assert alone.code == 0 and "key shipped inside the bundle" in alone.err
    trusted = tmp_path / "gateway.pub"
    trusted.write_text((await rcgate(capsys, gateway.argv("pubkey"))).out)
    pinned = await rcgate(capsys, ["verify", str(bundle), "--pubkey", str(trusted), *elsewhere])
    assert pinned.code == 0 and pinned.err == ""
    foreign = tmp_path / "foreign.pub"
    foreign.write_text(public_key_openssh(Ed25519PrivateKey.generate().public_key()))
    wrong = await rcgate(capsys, ["verify", str(bundle), "--pubkey", str(foreign), *elsewhere])
    assert wrong.code == 1 and "WRONG_KEY" in wrong.out

    extract = tmp_path / "x"
    with tarfile.open(bundle) as tar:
        tar.extractall(extract, filter="data")
    cast = extract / "ses_done" / "ses_done.cast"
    key = extract / "ses_done" / "recording_ed25519.pub"
    extracted = await rcgate(capsys, ["verify", str(cast), "--pubkey", str(key), *elsewhere])
    assert extracted.code == 0 and "result: intact" in extracted.out


async def test_a_tampered_bundle_fails_even_with_a_matching_key_inside(
    gateway: Gateway, capsys: Capsys, tmp_path: Path
) -> None:
    bundle = gateway.root / "b.tar.gz"
    assert (await rcgate(capsys, gateway.argv("export", "ses_done", "-o", str(bundle)))).code == 0
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(forged, "w:gz") as dst:
        for member in src.getmembers():
            f = src.extractfile(member)
            content = f.read() if f is not None else b""
            if member.name.endswith(".cast"):
                content = content.replace(b"step 3", b"step 9")
                member.size = len(content)
            dst.addfile(member, io.BytesIO(content) if member.isfile() else None)
    r = await rcgate(capsys, ["verify", str(forged), "--data-dir", str(tmp_path / "another-machine")])
    assert r.code == 1 and "ALTERED" in r.out


async def test_a_recording_passed_off_under_another_id_is_a_mismatch(
    gateway: Gateway, capsys: Capsys
) -> None:
    folder = gateway.done.parent
    for p in folder.glob("ses_done.*"):
        (folder / p.name.replace("ses_done", "ses_fake")).write_bytes(p.read_bytes())
    by_id = await rcgate(capsys, gateway.argv("verify", "ses_fake"))
    assert by_id.code == 1 and "SESSION_MISMATCH" in by_id.out and "belongs to session ses_done" in by_id.out
    by_file = await rcgate(capsys, gateway.argv("verify", str(folder / "ses_fake.cast")))
    assert by_file.code == 0, "a file the user names may have been renamed: it says which session it is"
    assert by_file.out.startswith("recording ses_done (")
