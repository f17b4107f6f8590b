"""Run the REAL assistant CLIs offline, wired by rcgate's own ``settings.wire``, in a private netns.

Modelled on ``../shared/reference/assistant-fakes/drive_*.sh`` (RECIPES-ASSISTANTS.md §0): the
run re-executes itself under ``unshare -n`` (then ``ip link set lo up``), so the CLI, its fake
model API and the stub gateway share a network namespace that holds only loopback: nothing the
CLI tries can leave the machine. Inside:

* the fake model API of the assistant (``assistant_fakes``), which asks for a shell call of
  ``AssistantRun.command`` (default ``rm -rf build``; Codex refuses ``rm -rf`` itself, use
  ``rm -r build`` there);
* a stub gateway serving ``POST /api/hooks/{assistant}`` with ``gateway.hooks.endpoint.answer_hook``
  under the demo policy, checking the bearer token, answering a held call per
  ``AssistantRun.approval`` (``approve`` / ``slow`` / ``deny`` / ``never``); ``gateway="down"``
  points the hooks at a closed port, ``"error"`` answers HTTP 500 to every tool gate,
  ``"keepalive"`` sends the 200 at once and a space every second while a call is held;
* the CLI, headless, with a fresh ``HOME``, ``< /dev/null``, its quiet settings, and the argv,
  environment and files that ``gateway.hooks.settings.wire`` produces, exactly as
  ``rcgate share`` would start it; ``hook_command`` is the command hook's argv prefix.

``run_assistant(AssistantRun(...))`` returns an ``AssistantResult`` (exit code, the CLI's JSON
output, every hook request the stub saw with its verdict, every model request, the preflight
problems of the wiring, wall time). ``find_assistant(name)`` finds a usable binary
(``RCGATE_CLAUDE_BIN`` / ``RCGATE_CODEX_BIN`` / ``RCGATE_GEMINI_BIN``, then the name on PATH)
of at least the version preflight demands.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.core.ids import SessionId, UserId
from gateway.hooks.endpoint import HeldCall, answer_hook
from gateway.hooks.preflight import check_version, preflight
from gateway.hooks.settings import HookConfig, Transport, wire, write_wiring
from gateway.hooks.timing import HOOK_TIMEOUT_HEADER, parse_hook_timeout
from gateway.policy import Actor, SessionFacts, parse_policy, shipped_policy_text
from tests.integration.assistant_fakes import model_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hook-token-for-tests"
QUIET_CLAUDE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
}
CODEX_CONFIG = """model = "gpt-fake"
model_provider = "fake"
check_for_update_on_startup = false
[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "FAKE_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0
[analytics]
enabled = false
[feedback]
enabled = false
"""
GEMINI_USER_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


@dataclass
class AssistantRun:
    assistant: str  # claude | codex | gemini
    bin: str
    workdir: str
    out_dir: str
    prompt: str = "Please clean the build directory"
    command: str = "rm -rf build"
    transport: str = "command"  # Claude Code only: command | http
    hook_command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "gateway.hooks.command"])
    approval: str = "deny"  # approve | slow (approve after 4 s) | deny | never (hold until the timeout)
    gateway: str = "stub"  # stub | down (closed port) | error (HTTP 500 for gates) | keepalive (spaces)
    hook_timeout_s: int = 30
    extra_args: list[str] = field(default_factory=list)
    timeout_s: float = 120.0


@dataclass
class AssistantResult:
    returncode: int
    output: Any  # the CLI's JSON output (Codex: the list of --json events)
    stdout: str
    stderr: str
    hook_requests: list[dict[str, Any]]
    model_requests: list[dict[str, Any]]
    preflight: list[str]
    argv: list[str]
    wall_s: float

    def gates(self) -> list[dict[str, Any]]:
        """The hook requests of tool gates (PreToolUse, PermissionRequest, BeforeTool)."""
        names = ("PreToolUse", "PermissionRequest", "BeforeTool")
        return [h for h in self.hook_requests if h["body"].get("hook_event_name") in names]


def find_assistant(name: str) -> str | None:
    """A binary of ``name`` of at least the version preflight demands, or None."""
    for candidate in (os.environ.get(f"RCGATE_{name.upper()}_BIN"), shutil.which(name)):
        if not candidate or not Path(candidate).exists():
            continue
        try:
            argv = [candidate, "--version"]
            out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and not check_version(name, out.stdout):
            return candidate
    return None


def netns_available() -> bool:
    """Whether ``unshare -n`` (root) or ``unshare -rn`` works here, with ``ip``."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run([*_unshare(), "true"], check=False, capture_output=True, timeout=30)
    return probe.returncode == 0


def _unshare() -> list[str]:
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def run_assistant(run: AssistantRun) -> AssistantResult:
    """Run ``run`` inside a fresh network namespace and collect what happened."""
    out = Path(run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps(asdict(run)))
    cmd = [*_unshare(), sys.executable, "-m", "tests.integration.assistant_harness", str(spec)]
    limit = run.timeout_s + 30
    proc = subprocess.run(cmd, cwd=REPO, check=False, capture_output=True, text=True, timeout=limit)
    result_file = out / "result.json"
    if not result_file.exists():
        raise RuntimeError(f"harness failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return AssistantResult(**json.loads(result_file.read_text()))


# --- inside the namespace ---------------------------------------------------------------------

STUB = web.AppKey("stub", dict)


async def _hook(request: web.Request) -> web.StreamResponse:
    stub = request.app[STUB]
    body = await request.json()
    entry = {"path": request.path, "auth_ok": request.headers.get("Authorization") == f"Bearer {TOKEN}"}
    entry |= {"timeout_header": request.headers.get(HOOK_TIMEOUT_HEADER), "body": body}
    stub["log"].append(entry)
    if not entry["auth_ok"]:
        return web.json_response({"error": "unauthenticated", "message": "bad hook token"}, status=401)
    gates = ("PreToolUse", "PermissionRequest", "BeforeTool")
    if stub["mode"] == "error" and body.get("hook_event_name") in gates:
        return web.json_response({"error": "internal", "message": "internal error"}, status=500)
    owner = Actor(user_id=UserId("usr_owner"), name="owner")
    facts = SessionFacts(SessionId("ses_1"), owner.user_id, "owner", repo_root=stub["repo"])

    async def await_approval(held: HeldCall) -> bool:
        entry["held"] = held.review.rule
        if stub["approval"] == "never":
            await asyncio.sleep(3600)
        if stub["approval"] == "slow":  # an approver who takes a few seconds
            await asyncio.sleep(4)
        return bool(stub["approval"] in ("approve", "slow"))

    timeout = parse_hook_timeout(request.headers.get(HOOK_TIMEOUT_HEADER))
    answering = asyncio.ensure_future(
        answer_hook(
            request.match_info["assistant"],
            body,
            facts,
            owner,
            stub["policy"],
            now=time.time(),
            await_approval=await_approval,
            hook_timeout_s=timeout,
        )
    )
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    if stub["mode"] == "keepalive":  # 200 at once, a space every second while held, then the JSON
        await resp.prepare(request)
        while not answering.done():
            await asyncio.wait([answering], timeout=1)
            if not answering.done():
                await resp.write(b" ")
                entry["keepalive"] = entry.get("keepalive", 0) + 1
    answer = await answering
    entry |= {"verdict": answer.verdict.value, "rule": answer.rule, "answer": answer.body}
    if not resp.prepared:
        await resp.prepare(request)
    await resp.write(json.dumps(answer.body).encode())
    await resp.write_eof()
    return resp


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


def _assistant_setup(run: AssistantRun, home: Path, model_port: int) -> tuple[list[str], dict[str, str]]:
    """The plain argv and environment of a headless run, before rcgate wires its hooks in."""
    base = f"http://127.0.0.1:{model_port}"
    foreign = ("ANTHROPIC_", "CLAUDE", "CODEX", "GEMINI", "GOOGLE_", "RCGATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env |= {"HOME": str(home), "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    if run.assistant == "claude":
        env |= QUIET_CLAUDE | {"ANTHROPIC_BASE_URL": base, "ANTHROPIC_API_KEY": "sk-ant-fake-key"}
        return [run.bin, "-p", run.prompt, "--output-format", "json", *run.extra_args], env
    if run.assistant == "codex":
        own = home / ".codex"
        own.mkdir(parents=True)
        (own / "config.toml").write_text(CODEX_CONFIG.format(port=model_port))
        env |= {"CODEX_HOME": str(own), "FAKE_OPENAI_KEY": "sk-fake", "CODEX_CI": "1"}
        argv = [run.bin, "exec", "--skip-git-repo-check", "--json", "-s", "workspace-write"]
        return [*argv, *run.extra_args, run.prompt], env
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_USER_SETTINGS))
    env |= {"GOOGLE_GEMINI_BASE_URL": base, "GEMINI_API_KEY": "fake-key", "GEMINI_TELEMETRY_ENABLED": "false"}
    argv = [run.bin, "-p", run.prompt, "--output-format", "json", "--approval-mode", "yolo", "--skip-trust"]
    return [*argv, *run.extra_args], env


def _parse_output(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


async def _inside(run: AssistantRun) -> dict[str, Any]:
    model_log: list[dict[str, Any]] = []
    hook_log: list[dict[str, Any]] = []
    gateway = web.Application()
    gateway[STUB] = {"log": hook_log, "approval": run.approval, "repo": run.workdir, "mode": run.gateway}
    gateway[STUB]["policy"] = parse_policy(shipped_policy_text("demo"), "demo_policy.yaml")
    gateway.router.add_post("/api/hooks/{assistant}", _hook)
    model_runner, model_port = await _serve(model_app(run.assistant, run.command, model_log))
    gw_runner, gw_port = await _serve(gateway)
    out = Path(run.out_dir)
    home = out / "home"
    argv, env = _assistant_setup(run, home, model_port)
    url = f"http://127.0.0.1:{9 if run.gateway == 'down' else gw_port}"
    transport: Transport = "http" if run.transport == "http" else "command"
    cfg = HookConfig(url, run.hook_timeout_s, tuple(run.hook_command), transport)
    wiring = wire(run.assistant, argv, cfg, out / "session", environ=env)
    write_wiring(wiring)
    doc = json.loads(next(t for p, t in wiring.files.items() if p.suffix == ".json"))
    version = subprocess.run([run.bin, "--version"], check=False, capture_output=True, text=True, env=env)
    problems = preflight(run.assistant, version.stdout, wiring.argv, doc)
    env |= dict(wiring.env) | {"RCGATE_HOOK_TOKEN": TOKEN}
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *wiring.argv,
        cwd=run.workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), run.timeout_s)
    wall = time.monotonic() - start
    await model_runner.cleanup()
    await gw_runner.cleanup()
    text = stdout.decode(errors="replace")
    return {
        "returncode": proc.returncode,
        "output": _parse_output(text),
        "stdout": text[-5000:],
        "stderr": stderr.decode(errors="replace")[-5000:],
        "hook_requests": hook_log,
        "model_requests": model_log,
        "preflight": problems,
        "argv": list(wiring.argv),
        "wall_s": wall,
    }


def _main(spec_path: str) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    spec = Path(spec_path)
    run = AssistantRun(**json.loads(spec.read_text()))
    result = asyncio.run(_inside(run))
    (spec.parent / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1]))
