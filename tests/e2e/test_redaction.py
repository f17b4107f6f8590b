"""End to end: an AWS-style key printed in a real shared shell never leaves the owner's terminal.

The owner shares `bash` with `rcgate share`; a viewer watches in Chromium. A script prints the
key in two pieces a moment apart (so it is split across output chunks). The owner's terminal
shows the key; the viewer's screen shows it masked and no WebSocket frame the browser received
carries any part of it; the recording, its audit stream and its search index on disk hold no
part of it, the search API finds nothing for it, and the recording stays intact and readable by
`asciinema cat`. The masking is a marker in the recording and an audit event.
"""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest

from tests.e2e import live

pytestmark = pytest.mark.e2e

DEMO_POLICY = str(Path(__file__).resolve().parents[2] / "gateway" / "policy" / "demo_policy.yaml")
ENV = {"RCGATE_SSH__PORT": "0", "RCGATE_POLICY__FILE": DEMO_POLICY}
KEY = "AKIAIOSFODNN7EXAMPLE"
PIECES = ("AKIAIOSF", "ODNN7EXAMPLE")
# Neither piece is typed: the command line the viewer sees is only `sh leak.sh`.
LEAK_SH = "printf 'aws_access_key_id = %s' \"$(cat a)\"; sleep 0.1; printf '%s\\n' \"$(cat b)\"\n"


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("gateway", [ENV], indirect=True)
async def test_a_printed_aws_key_is_masked_for_the_viewer_the_recording_and_the_search_index(
    gateway, new_tab, virtual_authenticator, tmp_path
):
    owner, env = await live.owner_workstation(
        gateway, new_tab, virtual_authenticator, tmp_path / "workstation", role="admin"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "a").write_text(PIECES[0])
    (work / "b").write_text(PIECES[1])
    (work / "leak.sh").write_text(LEAK_SH)
    child, link = live.start_share(env, work, "bash", "--norc", "--noprofile")
    frames: list[bytes] = []
    try:
        viewer = await new_tab()
        await virtual_authenticator(viewer.page)
        await live.enrol_passkey(viewer.page, gateway.enrol_link("victor", "member"))

        def on_socket(ws) -> None:
            ws.on("framereceived", lambda f: frames.append(f if isinstance(f, bytes) else f.encode()))

        viewer.page.on("websocket", on_socket)
        await viewer.page.goto(link)
        await viewer.page.wait_for_url(f"{gateway.url}/p/*")
        child.sendline("echo ready-$((3*3))")
        await live.screen_has(viewer.page, "ready-9")

        child.sendline("sh leak.sh")
        child.expect(f"aws_access_key_id = {KEY}")  # the owner's own terminal: unchanged
        await live.screen_has(viewer.page, "aws_access_key_id = " + "*" * len(KEY))
        child.sendline("echo after-$((5*5))")
        child.expect("after-25")
        await live.screen_has(viewer.page, "after-25")
        screen = await viewer.page.evaluate("() => window.rcgate.screenText()")
        assert KEY not in screen
        received = b"".join(frames)
        assert not [p for p in PIECES if p.encode() in received], "no piece of the key reached the browser"
        assert viewer.errors == []
    finally:
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
        child.close()

    recordings = tmp_path / "recordings"
    cast = live.recordings(recordings)[0]
    assert "intact" in live.verify_recording(gateway, cast)
    assert "*" * len(KEY) in live.asciinema_cat(cast)
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    assert "redacted 1 secret: aws-access-key-id=1" in [e[2] for e in events if e[1] == "m"]

    # The search index is built by searching: ask for the key and for the text around it.
    api = owner.page.request
    found = await api.get(f"{gateway.url}/api/search", params={"q": "aws_access_key_id"})
    assert found.ok, await found.text()
    assert (await found.json())["hits"], "the line is indexed (masked)"
    for piece in (KEY, *PIECES):
        res = await api.get(f"{gateway.url}/api/search", params={"q": piece})
        assert res.ok and (await res.json())["hits"] == [], piece
    for piece in PIECES:
        leaked = _files_holding(recordings, piece.encode()) + _files_holding(gateway.data_dir, piece.encode())
        assert leaked == [], f"{piece} is on disk in {leaked}"
    res = await api.get(f"{gateway.url}/api/admin/audit", params={"limit": "1000"})
    assert res.ok, await res.text()
    redacted = [e for e in (await res.json())["events"] if e["type"] == "session.redacted"]
    assert [e["detail"] for e in redacted] == [{"count": 1, "pattern.aws-access-key-id": 1}]
