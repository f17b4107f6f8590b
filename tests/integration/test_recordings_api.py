"""The reviewer workbench API over HTTP: a real aiohttp app (same middlewares, identity routes,
recordings routes), real recordings written by the gateway's Recorder and signed."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from yarl import URL

from gateway.app import auth_config, http_config
from gateway.auth.action_signing import ActionSigner
from gateway.auth.device import DeviceFlow
from gateway.auth.service import IdentityService
from gateway.auth.ssh_ca import SshCertificateAuthority
from gateway.core.clock import FixedClock
from gateway.core.ids import SessionId, UserId
from gateway.core.models import Role
from gateway.httpd import routes_recordings, server
from gateway.httpd.routes_recordings import RECORDINGS
from gateway.httpd.server import HttpServices, make_app
from gateway.links.service import LinkService
from gateway.policy_watch import PolicyWatcher
from gateway.recording import archive
from gateway.recording.catalog import Catalog
from gateway.recording.chain import Ed25519Signer
from gateway.recording.keys import parse_public_key
from gateway.recording.recorder import RecorderFactory, sidecars_of
from gateway.recording.seekindex import build_seek_index
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.hub import Hub
from gateway.sessions.ports import SessionMeta
from gateway.settings import load_settings
from gateway.store.embedded import EmbeddedStore
from tests.fixtures.recordings import T_START, Step, write_chained, write_recording
from tests.integration.conftest import ORIGIN, Api, Gateway

KEY = Ed25519PrivateKey.generate()
OSC52 = "\x1b]52;c;c2VjcmV0LWNsaXBib2FyZA==\x07"
DEPLOY = [
    Step(0.5, "o", "alice@laptop:~$ "),
    Step(1.0, "i", "make deploi"),
    Step(0.2, "i", "\x7fy\r"),
    Step(0.1, "o", "make deploy\r\n\x1b[1;32mDeploying\x1b[0m to Production\r\n"),
    Step(0.4, "m", "join bob (approved_execution)"),
    Step(0.6, "m", "approval requested #1 by bob: rule review-rm (policy v1)"),
    Step(1.2, "m", "approved #1 (approved by carol)"),
    Step(0.3, "m", "denied #2 (timed out)"),
    Step(0.2, "m", "refused input from dave (view only)"),
    Step(0.1, "a", "tool.call"),
    Step(0.5, "o", "rm -rf build\r\n"),
]


@dataclass
class Env:
    gw: Gateway
    root: Path
    catalog: Catalog
    store: EmbeddedStore

    async def reviewer(self, name: str = "rita", role: Role = Role.REVIEWER) -> Api:
        api, _ = await self.gw.enrol_passkey(name, role)
        return api


@pytest_asyncio.fixture
async def env(tmp_path: Path, aiohttp_client: Any, clock: FixedClock) -> AsyncIterator[Env]:
    settings = load_settings(None, data_dir=str(tmp_path), **{"http.public_url": ORIGIN})
    store = await EmbeddedStore.open(EmbeddedStore.path_in(tmp_path), clock)
    identity = IdentityService(store, clock, auth_config(settings))
    ca = SshCertificateAuthority.load_or_create(tmp_path / "ssh_user_ca_ed25519")
    policy = PolicyWatcher(file=None, shipped="demo", data_dir=tmp_path, audit=store, clock=clock)
    await policy.load()
    root = tmp_path / "recordings"
    catalog = Catalog(root, KEY.public_key(), index_dir=tmp_path / "search-index")
    async with Hub(recorders=RecorderFactory(root, signing_key=KEY), audit=store) as hub:
        services = HttpServices(
            identity=identity,
            links=LinkService(store, clock, ORIGIN),
            device=DeviceFlow(store, store, clock, ca),
            hub=hub,
            policy=policy,
            approvals=ApprovalService(store, clock),
            signer=ActionSigner(identity, store),
        )
        app = make_app(services, http_config(settings))
        app[RECORDINGS] = catalog
        if routes_recordings.routes not in server.API_TABLES:  # until the server wires it
            routes_recordings.routes.install(app)
        gw = Gateway(await aiohttp_client(app), identity, clock, settings)
        try:
            yield Env(gw, root, catalog, store)
        finally:
            await gw.close()
    await store.close()


async def three(env: Env) -> dict[str, Path]:
    day = 86_400.0
    return {
        "deploy": await write_recording(
            env.root, KEY, "ses_deploy", DEPLOY, labels={"env": "prod"}, command=("bash", "-l")
        ),
        "bob": await write_recording(
            env.root, KEY, "ses_bob", [Step(2.0, "o", "bob$ uptime\r\n"), Step(8.0, "o", "up 3 days\r\n")],
            owner="bob", host="build-server", labels={"env": "dev"}, started=T_START + day,
        ),
        "live": await write_recording(
            env.root, KEY, "ses_live", [Step(1.0, "o", "carol$ tail -f log\r\n")],
            owner="carol", host="db1", started=T_START + 2 * day, finish=False,
        ),
    }  # fmt: skip


async def get(api: Api, path: str, **params: str) -> tuple[int, Any]:
    r = await api.client.get(path, params=params)
    return r.status, (await r.json()) if r.content_type == "application/json" else await r.read()


async def ids(api: Api, **params: str) -> list[str]:
    status, body = await get(api, "/api/recordings", **params)
    assert status == 200, body
    return [r["id"] for r in body["recordings"]]


async def test_list_counts_filters_sort_and_paging(env: Env) -> None:
    await three(env)
    rita = await env.reviewer()
    status, body = await get(rita, "/api/recordings")
    assert status == 200 and body["total"] == 3
    by_id = {r["id"]: r for r in body["recordings"]}
    assert [r["id"] for r in body["recordings"]] == ["ses_live", "ses_bob", "ses_deploy"]  # newest first
    deploy = by_id["ses_deploy"]
    assert (deploy["owner"], deploy["host"], deploy["labels"]) == ("alice", "laptop", {"env": "prod"})
    assert deploy["start"] == int(T_START) and deploy["finished"] and not deploy["live"]
    assert deploy["counts"] == {
        "joins": 1, "leaves": 0, "approval_requests": 1, "approvals": 1, "denials": 1,
        "refusals": 1, "tool_calls": 1, "redactions": 0,
    }  # fmt: skip
    assert deploy["participants"] == ["bob"] and deploy["modes"] == ["approved_execution"]
    assert deploy["duration"] == 5.1 and by_id["ses_bob"]["duration"] == 10.0
    assert by_id["ses_live"]["live"] and not by_id["ses_live"]["finished"]

    assert await ids(rita, owner="BOB") == ["ses_bob"]
    assert await ids(rita, host="server") == ["ses_bob"]
    assert await ids(rita, label="env=prod") == ["ses_deploy"]
    assert await ids(rita, label="env") == ["ses_bob", "ses_deploy"]
    assert await ids(rita, text="tail -f") == []  # metadata only: full text is /api/search
    assert await ids(rita, text="db1") == ["ses_live"]
    assert await ids(rita, live="true") == ["ses_live"]
    assert await ids(rita, **{"from": "2026-01-02", "to": "2026-01-02"}) == ["ses_bob"]
    assert await ids(rita, **{"from": str(int(T_START) + 1)}) == ["ses_live", "ses_bob"]
    assert await ids(rita, sort="duration") == ["ses_live", "ses_deploy", "ses_bob"]
    assert await ids(rita, sort="-approvals") == ["ses_deploy", "ses_live", "ses_bob"]
    assert await ids(rita, sort="owner", limit="1", offset="1") == ["ses_bob"]
    for bad in ({"sort": "size; drop"}, {"limit": "0"}, {"limit": "x"}, {"from": "yesterday"}, {"live": "1"}):
        status, body = await get(rita, "/api/recordings", **bad)
        assert status == 400 and body["message"], bad


async def test_only_reviewers_and_admins(env: Env) -> None:
    await three(env)
    member = await env.reviewer("mo", Role.MEMBER)
    admin = await env.reviewer("ada", Role.ADMIN)
    for path in ("/api/recordings", "/api/recordings/ses_bob", "/api/recordings/ses_bob/cast"):
        assert (await get(member, path))[0] == 403
        assert (await get(admin, path))[0] == 200
    anonymous = env.gw.api()
    status, body = await get(anonymous, "/api/search", q="uptime")
    assert status == 401, body


async def test_detail_verification_intact_tampered_unsigned_and_wrong_key(env: Env) -> None:
    paths = await three(env)
    rita = await env.reviewer()
    status, body = await get(rita, "/api/recordings/ses_deploy")
    assert status == 200 and body["verification"]["state"] == "intact", body
    assert body["verification"]["exit_code"] == 0 and body["title"] == "alice@laptop: bash -l"
    status, body = await get(rita, "/api/recordings/ses_live")
    assert body["verification"]["state"] == "unsigned_tail" and body["live"]

    data = bytearray(paths["bob"].read_bytes())
    at = data.index(b"up 3 days")
    data[at] = ord("U")  # one byte changed in line 3
    paths["bob"].write_bytes(bytes(data))
    status, body = await get(rita, "/api/recordings/ses_bob")
    v = body["verification"]
    assert (v["state"], v["line"], v["stream"], v["exit_code"]) == ("altered", 3, "cast", 1), v
    assert "line 3" in v["message"]

    env.catalog.public_key = Ed25519PrivateKey.generate().public_key()
    status, body = await get(rita, "/api/recordings/ses_deploy")
    assert body["verification"]["state"] == "wrong_key"


async def test_cast_is_served_for_the_player_and_ids_are_checked(env: Env) -> None:
    paths = await three(env)
    rita = await env.reviewer()
    r = await rita.client.get("/api/recordings/ses_deploy/cast")
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-asciicast"
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert await r.read() == paths["deploy"].read_bytes()
    with paths["live"].open("ab") as f:  # a live recording may end mid-line: never served
        f.write(b'[9.5, "o", "half')
    live = await (await rita.client.get("/api/recordings/ses_live/cast")).read()
    assert live.endswith(b"\n") and b"half" not in live

    for bad in (
        "..",
        ".",
        "a.b",
        "ses_bob.cast",
        "%2E%2E",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "x" * 200,
    ):
        for suffix in ("", "/cast", "/audit", "/export"):
            url = URL(f"{rita.client._base_url}api/recordings/{bad}{suffix}", encoded=True)
            r = await rita.client.get(url)
            assert r.status == 400, (bad, suffix, r.status)
            assert "not a recording id" in (await r.json())["message"]
    assert (await get(rita, "/api/recordings/a.b"))[0] == 400
    assert (await get(rita, "/api/search", q="up", id="../ses_bob"))[0] == 400
    assert (await get(rita, "/api/recordings/ses_nothing"))[0] == 404


async def test_audit_stream_lists_markers_and_events_with_times(env: Env) -> None:
    await three(env)
    rita = await env.reviewer()
    status, body = await get(rita, "/api/recordings/ses_deploy/audit")
    assert status == 200 and not body["truncated"]
    events = [(e["kind"], e.get("label") or e["type"], e["t"]) for e in body["events"]]
    assert events[:3] == [
        ("join", "join bob (approved_execution)", 2.2),
        ("approval_request", "approval requested #1 by bob: rule review-rm (policy v1)", 2.8),
        ("approval", "approved #1 (approved by carol)", 4.0),
    ]
    assert ("tool_call", "tool.call", 4.6) in events
    assert events[-1][:2] == ("end", "end: owner stopped sharing")


async def test_search_hits_with_time_offsets_and_snippets(env: Env) -> None:
    await three(env)
    rita = await env.reviewer()
    status, body = await get(rita, "/api/search", q="MAKE DEPLOY")
    assert status == 200, body
    hits = [(h["id"], h["stream"], h["t"]) for h in body["hits"]]
    assert hits == [("ses_deploy", "o", 1.8), ("ses_deploy", "i", 1.7)]  # typed (edited) and shown
    snippet = body["hits"][0]["snippet"]
    assert snippet["match"] == "make deploy" and snippet["before"].endswith("alice@laptop:~$ ")
    assert "\x1b" not in json.dumps(body) and "Deploying to Production" in snippet["after"]
    assert body["indexed"] == 3 and body["searched"] == 3 and not body["truncated"]

    status, body = await get(rita, "/api/search", q="approved by carol")
    assert [(h["stream"], h["t"]) for h in body["hits"]] == [("m", 4.0)]
    status, body = await get(rita, "/api/search", q="up 3", id="ses_bob")
    assert [(h["id"], h["t"]) for h in body["hits"]] == [("ses_bob", 10.0)] and body["indexed"] == 0
    assert (await get(rita, "/api/search", q="up 3", id="ses_deploy"))[1]["hits"] == []
    assert (await get(rita, "/api/search", q="deploi"))[1]["hits"] == []  # the typo was erased

    paths = await three_more_lines(env)
    status, body = await get(rita, "/api/search", q="later line", id="ses_live")
    assert [h["t"] for h in body["hits"]] == [20.0] and body["indexed"] == 1 and paths


async def three_more_lines(env: Env) -> Path:
    path = archive.find_recording(env.root, "ses_live")
    with path.open("ab") as f:
        f.write(b'[20.0, "o", "a later line\\r\\n"]\n')
    return path


async def test_search_query_limits_and_regex_is_literal(env: Env) -> None:
    await write_recording(env.root, KEY, "ses_a", [Step(1.0, "o", "a" * 5000 + "!\r\n")])
    await write_recording(env.root, KEY, "ses_b", [Step(1.0, "o", "grep -E '(a+)+$' and .* too\r\n")])
    rita = await env.reviewer()
    began = time.monotonic()
    status, body = await get(rita, "/api/search", q="(a+)+$")
    assert status == 200 and [h["id"] for h in body["hits"]] == ["ses_b"]
    assert time.monotonic() - began < 2.0
    assert [h["id"] for h in (await get(rita, "/api/search", q=".*"))[1]["hits"]] == ["ses_b"]
    assert (await get(rita, "/api/search", q="a+"))[1]["hits"][0]["id"] == "ses_b"

    status, body = await get(rita, "/api/search", q="x" * 300)
    assert status == 400 and body["message"] == "search text too long: 300 characters, at most 256"
    r = await rita.client.get("/api/search", params={"q": "y" * (1024 * 1024)})  # 1 MB
    assert r.status == 400
    assert "bytes" in await r.text()  # aiohttp's request-line limit answers, with its reason
    for bad in ("", "   ", "tab\there", "\x1b[31m"):
        status, body = await get(rita, "/api/search", q=bad)
        assert status == 400 and body["message"], bad
    status, body = await get(rita, "/api/search", q="a", limit="3")
    assert len(body["hits"]) == 3 and body["truncated"] and body["reason"] == "hits"


async def test_terminal_text_reaches_the_api_inert(env: Env) -> None:
    steps = [
        Step(1.0, "o", f"copy{OSC52}done \x1b]0;<script>alert(1)</script>\x07visible\r\n"),
        Step(0.5, "m", f"join <script>alert(1)</script> {OSC52} (view_only)"),
    ]
    await write_recording(env.root, KEY, "ses_xss", steps)
    rita = await env.reviewer()
    body = (await get(rita, "/api/search", q="copy"))[1]
    assert body["hits"][0]["snippet"]["after"] == "done visible ⏎ "  # OSC 52 and title stripped
    assert (await get(rita, "/api/search", q="c2VjcmV0"))[1]["hits"] == []
    events = (await get(rita, "/api/recordings/ses_xss/audit"))[1]["events"]
    assert events[0]["label"] == f"join <script>alert(1)</script> {OSC52} (view_only)"  # JSON, raw
    r = await rita.client.get("/api/recordings/ses_xss/audit")
    assert r.content_type == "application/json" and b"\x1b" not in await r.read()  # JSON-escaped


async def test_export_bundle_verifies_and_live_is_refused(env: Env) -> None:
    await three(env)
    rita = await env.reviewer()
    r = await rita.client.get("/api/recordings/ses_deploy/export")
    assert r.status == 200 and r.headers["Content-Type"] == "application/gzip"
    assert r.headers["Content-Disposition"] == 'attachment; filename="ses_deploy.tar.gz"'
    assert r.headers["X-Rcgate-Verification"] == "intact"
    bundle = env.root.parent / "bundle.tar.gz"
    bundle.write_bytes(await r.read())
    with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes())) as tar:
        names = sorted(m.name for m in tar.getmembers())
    assert "ses_deploy/ses_deploy.cast" in names and "ses_deploy/recording_ed25519.pub" in names
    data = archive.read_bundle(bundle)
    assert data.bundled_key is not None
    reports = archive.verify_data(data, parse_public_key(data.bundled_key))
    assert [r.outcome.value for r in reports] == ["intact", "intact"]

    status, body = await get(rita, "/api/recordings/ses_live/export")
    assert status == 409 and "live" in body["message"] and "after the session ends" in body["message"]
    events = [e.type for e in await env.store.events(limit=1000)]
    assert "recording.exported" in events


async def test_access_is_audited_and_indexes_follow_changes(env: Env) -> None:
    paths = await three(env)
    rita = await env.reviewer()
    await rita.client.get("/api/recordings/ses_bob/cast")
    await get(rita, "/api/search", q="uptime")
    events = {e.type: e for e in await env.store.events(limit=1000)}
    assert events["recording.viewed"].subject == "ses_bob"
    assert events["recording.searched"].detail["chars"] == 6  # the length, never the text
    assert (await get(rita, "/api/search", q="uptime"))[1]["indexed"] == 0  # cached
    for p in (paths["bob"], *sidecars_of(paths["bob"])):
        p.unlink()
    await get(rita, "/api/search", q="uptime")
    assert not (env.catalog.searcher.index_path("ses_bob")).exists()  # pruned with its recording


# --- following a recording as it is written (routes_recordings_live) ------------------------


class Sse:
    """An open text/event-stream response, read one event at a time."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                block = (await self.response.content.readuntil(b"\n\n")).decode()
                fields = dict(
                    line.split(": ", 1) for line in block.strip("\n").split("\n") if not line.startswith(":")
                )
                if "data" in fields:
                    return fields.get("event", "message"), json.loads(fields["data"])

    async def until(self, event: str, timeout: float = 5.0) -> list[tuple[str, Any]]:
        seen = []
        while True:
            seen.append(await self.next(timeout))
            if seen[-1][0] == event:
                return seen


async def open_sse(api: Api, path: str) -> Sse:
    r = await api.client.get(path)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    return Sse(r)


async def live_recorder(env: Env, sid: str) -> tuple[Any, asyncio.Future[None]]:
    factory = RecorderFactory(env.root, signing_key=KEY, batch_window_s=0.01)
    meta = SessionMeta(
        owner_id=UserId("usr_carol"), owner_name="carol", host="db1", cwd="/", command=("bash",),
        labels={}, cols=100, rows=30,
    )  # fmt: skip
    recorder = await factory(SessionId(sid), meta, lambda _: None)
    return recorder, asyncio.ensure_future(recorder.run())


async def test_live_follow_streams_lines_as_the_recorder_writes_them(env: Env) -> None:
    recorder, writer = await live_recorder(env, "ses_follow")
    recorder.output(b"carol$ ")
    recorder.marker("join bob (view_only)")
    rita = await env.reviewer()
    cast = await open_sse(rita, "/api/recordings/ses_follow/live")
    audit = await open_sse(rita, "/api/recordings/ses_follow/audit/live")
    event, reset = await cast.next()
    assert event == "message" and (reset["cols"], reset["rows"]) == (100, 30), reset
    assert (await cast.next())[1][1:] == ["o", "carol$ "]  # what was recorded before: the backlog
    assert (await audit.next()) == ("reset", {})
    event, record = await audit.next()
    assert (event, record["kind"], record["label"]) == ("audit", "join", "join bob (view_only)")

    # New lines, as they are written (a partial line waits for its end).
    recorder.output(b"uptime\r\n\x1b]52;c;c2VjcmV0\x07up 3 days <script>\r\n")
    recorder.resize(120, 40)
    event, ev = await cast.next()
    assert ev[1:] == ["o", "uptime\r\n\x1b]52;c;c2VjcmV0\x07up 3 days <script>\r\n"] and ev[0] > 0
    assert (await cast.next())[1][1:] == ["r", {"cols": 120, "rows": 40}]  # the driver's form
    recorder.input(b"secret-typed\r")  # input and markers are not for the player
    recorder.marker("leave bob: left")
    recorder.output(b"done\r\n")
    assert (await cast.next())[1][1:] == ["o", "done\r\n"]
    event, record = await audit.next()
    assert (record["kind"], record["label"]) == ("leave", "leave bob: left")

    # The end: both streams say done and close.
    await recorder.close("owner stopped sharing")
    await writer
    assert (await cast.until("done"))[-1] == ("done", {})
    rest = await audit.until("done")
    assert [r.get("label") for _, r in rest[:-1]] == ["end: owner stopped sharing"]
    assert await cast.response.content.read() == b"" and await audit.response.content.read() == b""
    events = [e for e in await env.store.events(limit=1000) if e.type == "recording.viewed"]
    assert events[-1].subject == "ses_follow" and events[-1].detail["live"] is True


async def test_live_follow_of_a_finished_recording_sends_it_all_then_done(env: Env) -> None:
    await three(env)
    rita = await env.reviewer()
    cast = await open_sse(rita, "/api/recordings/ses_deploy/live")
    seen = await cast.until("done")
    assert seen[0][1]["cols"] == 80 and seen[0][1]["time"] == 5.1
    shown = [ev[2] for _, ev in seen[1:-1]]
    assert shown == ["alice@laptop:~$ ", "make deploy\r\n\x1b[1;32mDeploying\x1b[0m to Production\r\n",
                     "rm -rf build\r\n"]  # fmt: skip
    audit = await (await open_sse(rita, "/api/recordings/ses_deploy/audit/live")).until("done")
    kinds = [r["kind"] for e, r in audit if e == "audit"]
    assert kinds[:3] == ["join", "approval_request", "approval"] and kinds[-1] == "end"


async def test_live_follow_is_for_reviewers_and_checks_ids(env: Env) -> None:
    await three(env)
    member = await env.reviewer("mo", Role.MEMBER)
    anonymous = env.gw.api()
    rita = await env.reviewer()
    for path in ("/api/recordings/ses_live/live", "/api/recordings/ses_live/audit/live"):
        assert (await get(member, path))[0] == 403
        assert (await get(anonymous, path))[0] == 401
    for suffix in ("/live", "/audit/live"):
        assert (await get(rita, f"/api/recordings/ses_nothing{suffix}"))[0] == 404
        for bad in ("..", "a.b", "%2E%2E", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
            url = URL(f"{rita.client._base_url}api/recordings/{bad}{suffix}", encoded=True)
            r = await rita.client.get(url)
            assert r.status == 400, (bad, suffix, r.status)
            assert "not a recording id" in (await r.json())["message"]


async def test_live_followers_end_when_the_gateway_shuts_down_or_the_file_goes(env: Env) -> None:
    paths = await three(env)
    rita = await env.reviewer()
    cast = await open_sse(rita, "/api/recordings/ses_live/live")
    assert (await cast.next())[1]["cols"] == 80
    assert (await cast.next())[1][1:] == ["o", "carol$ tail -f log\r\n"]
    audit = await open_sse(rita, "/api/recordings/ses_live/audit/live")
    assert await audit.next() == ("reset", {})
    paths["live"].write_bytes(paths["live"].read_bytes()[:100])  # truncated under the follower
    async with asyncio.timeout(5):
        assert await cast.response.content.read() == b""  # ended without "done"
    await env.gw.client.app.shutdown()  # what the runner does first when the gateway stops
    async with asyncio.timeout(5):
        assert await audit.response.content.read() == b""


async def test_cast_from_a_time_starts_at_a_signed_keyframe(env: Env) -> None:
    events = [(3.0 * i, "o", f"\x1b[1;3{i % 8}mtick {i}\x1b[0m\r\n") for i in range(40)]  # 120 s
    path = write_chained(env.root / "2026" / "01" / "ses_long.cast", KEY, events, every=4)  # 12 s
    build_seek_index(path, Ed25519Signer(KEY))
    rita = await env.reviewer()
    r = await rita.client.get("/api/recordings/ses_long/cast", params={"from": "65"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-asciicast"
    base = float(r.headers["X-Rcgate-Seek-From"])
    assert base == 57.0, "the last keyframe at or before t=65 (a checkpoint every 4 events, 12 s)"
    lines = (await r.read()).decode().splitlines()
    header = json.loads(lines[0])
    assert header["rcgate_seek"]["from"] == base and header["rcgate"]["session_id"] == "ses_long"
    snapshot = json.loads(lines[1])
    assert snapshot[0] == 0.0 and snapshot[1] == "o" and "tick" in snapshot[2]
    rest = [json.loads(ln) for ln in lines[2:]]
    assert rest[0][0] >= 0 and rest[-1][2].startswith("end: ")
    original = [json.loads(ln) for ln in path.read_text().splitlines()[1:]]
    assert [e[2] for e in rest] == [e[2] for e in original if e[0] > base], "everything after the keyframe"
    window = await rita.client.get("/api/recordings/ses_long/cast", params={"from": "65", "to": "80"})
    times = [json.loads(ln)[0] + base for ln in (await window.read()).decode().splitlines()[2:]]
    assert times and max(times) <= 80.0 + 1e-6
    start = await rita.client.get("/api/recordings/ses_long/cast", params={"from": "0"})
    assert await start.read() == path.read_bytes(), "from the start: the recording as it is"
    for bad in ("-1", "nan", "x", "inf"):
        assert (await rita.client.get("/api/recordings/ses_long/cast", params={"from": bad})).status == 400
    assert (await rita.client.get("/api/recordings/..%2Fx/cast", params={"from": "1"})).status in (400, 404)
