"""`rcgate hook claude` (the installed entry point) with the gateway stopped answers deny, in time."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

RCGATE = str(Path(sys.executable).parent / "rcgate")
PAYLOAD = {
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "rm -rf build"},
    "tool_use_id": "toolu_1",
    "session_id": "s",
    "cwd": "/tmp",
    "permission_mode": "default",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_rcgate_hook_claude_with_the_gateway_stopped_answers_deny_within_its_timeout() -> None:
    env = {
        "RCGATE_GATEWAY": f"http://127.0.0.1:{closed_port()}",
        "RCGATE_HOOK_TOKEN": "tok",
        "RCGATE_HOOK_TIMEOUT_S": "10",
        "PATH": "/usr/bin:/bin",
    }
    started = time.monotonic()
    res = subprocess.run(
        [RCGATE, "hook", "claude"],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    elapsed = time.monotonic() - started
    answer = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "unreachable" in answer["hookSpecificOutput"]["permissionDecisionReason"]
    assert elapsed < 10, "answered before the assistant's own hook timeout"


def test_rcgate_hook_without_a_token_answers_deny() -> None:
    res = subprocess.run(
        [RCGATE, "hook", "claude"],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert json.loads(res.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
