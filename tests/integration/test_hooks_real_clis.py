"""The REAL assistant CLIs (Claude Code, Codex CLI, Gemini CLI) under rcgate's own wiring, offline.

Each test is skipped unless its CLI is found at a version preflight accepts
(``RCGATE_CLAUDE_BIN`` / ``RCGATE_CODEX_BIN`` / ``RCGATE_GEMINI_BIN``, or the name on PATH) and
``unshare -n`` works. Each run happens in a private network namespace with the assistant's
fake model API asking for a shell ``rm`` of ``build/`` and a stub gateway answering with
``answer_hook`` under the demo policy (``assistant_harness``); the CLI is started with the
argv, environment and files ``gateway.hooks.settings.wire`` makes. Every test checks what
RECIPES-ASSISTANTS.md asks for: the hook was really called (a dropped configuration fails
open), the file system, and for Claude Code ``permission_denials``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.assistant_harness import (
    AssistantResult,
    AssistantRun,
    find_assistant,
    netns_available,
    run_assistant,
)

NETNS = netns_available()
BINS = {name: find_assistant(name) for name in ("claude", "codex", "gemini")}
RM = {"claude": "rm -rf build", "codex": "rm -r build", "gemini": "rm -rf build"}  # Codex refuses rm -rf


def needs(name: str) -> pytest.MarkDecorator:
    """Skipped only where nobody asked for the CLI; `make test` installs it and names it, so there a
    missing or unusable CLI (or no network namespace) fails the run instead of hiding."""
    missing = BINS[name] is None or not NETNS
    if missing and os.environ.get(f"RCGATE_{name.upper()}_BIN"):
        return pytest.mark.xfail(
            reason=f"the {name} CLI named by RCGATE_{name.upper()}_BIN is unusable", strict=True
        )
    return pytest.mark.skipif(
        missing, reason=f"needs the {name} CLI (RCGATE_{name.upper()}_BIN) and unshare -n"
    )


def run(tmp_path: Path, assistant: str, **kw: object) -> tuple[AssistantResult, Path]:
    build = tmp_path / "proj" / "build"
    build.mkdir(parents=True)
    (build / "artifact.o").write_text("x")
    binary = BINS[assistant]
    assert binary is not None
    kw.setdefault("command", RM[assistant])
    spec = AssistantRun(
        assistant=assistant,
        bin=binary,
        workdir=str(tmp_path / "proj"),
        out_dir=str(tmp_path / "out"),
        **kw,  # type: ignore[arg-type]
    )
    result = run_assistant(spec)
    assert result.preflight == [], result.preflight
    return result, build


def denied_tools(result: AssistantResult) -> list[str]:
    return [d["tool_name"] for d in result.output["permission_denials"]]


# --- Claude Code -------------------------------------------------------------------------------


@needs("claude")
@pytest.mark.parametrize("transport", ["command", "http"])
def test_claude_held_then_refused_the_directory_survives(tmp_path: Path, transport: str) -> None:
    result, build = run(tmp_path, "claude", approval="deny", transport=transport)
    (gate,) = result.gates()
    assert gate["held"] == "shell-rm-recursive" and gate["verdict"] == "deny" and gate["auth_ok"]
    assert build.exists() and denied_tools(result) == ["Bash"]


@needs("claude")
@pytest.mark.parametrize("transport", ["command", "http"])
def test_claude_held_then_approved_the_directory_is_removed(tmp_path: Path, transport: str) -> None:
    result, build = run(tmp_path, "claude", approval="approve", transport=transport)
    (gate,) = result.gates()
    assert gate["verdict"] == "approve"
    assert not build.exists() and result.output["permission_denials"] == []
    events = [h["body"]["hook_event_name"] for h in result.hook_requests]
    assert events == ["UserPromptSubmit", "PreToolUse", "PostToolUse"]  # every step is recorded


@needs("claude")
@pytest.mark.parametrize("transport", ["command", "http"])
def test_claude_a_failing_gateway_blocks_the_call(tmp_path: Path, transport: str) -> None:
    # HTTP 500 for tool gates: `rcgate hook` answers deny; the http hook blocks by onFailure.
    result, build = run(tmp_path, "claude", gateway="error", transport=transport)
    assert result.gates() and build.exists() and denied_tools(result) == ["Bash"]


@needs("claude")
def test_claude_no_approval_before_the_hook_timeout_is_a_deny(tmp_path: Path) -> None:
    result, build = run(tmp_path, "claude", approval="never", hook_timeout_s=12)
    (gate,) = result.gates()
    assert gate["verdict"] == "deny" and build.exists()
    assert result.wall_s < 12 + 5


@needs("claude")
def test_claude_http_hook_waits_through_keep_alive_spaces(tmp_path: Path) -> None:
    # The gateway sends 200 at once and a space every second while the approver takes 4 s.
    result, build = run(tmp_path, "claude", approval="slow", gateway="keepalive", transport="http")
    (gate,) = result.gates()
    assert gate["verdict"] == "approve" and gate["keepalive"] >= 3
    assert not build.exists()


@needs("claude")
def test_claude_policy_allow_leaves_claudes_own_rules_in_charge(tmp_path: Path) -> None:
    # `cat` is allowed by policy: rcgate has no objection, Claude's own check still refuses a
    # file outside the working folder, asks (PermissionRequest, again no objection), denies.
    result, _ = run(tmp_path, "claude", command="cat /etc/hostname")
    assert [(g["body"]["hook_event_name"], g["verdict"]) for g in result.gates()] == [
        ("PreToolUse", "pass"),
        ("PermissionRequest", "pass"),
    ]
    assert denied_tools(result) == ["Bash"]


# --- Codex CLI -------------------------------------------------------------------------------------


@needs("codex")
@pytest.mark.parametrize(("approval", "survives"), [("deny", True), ("approve", False)])
def test_codex_held_call(tmp_path: Path, approval: str, survives: bool) -> None:
    result, build = run(tmp_path, "codex", approval=approval)
    (gate,) = result.gates()
    assert gate["held"] == "shell-rm-recursive" and gate["verdict"] == approval
    assert build.exists() is survives


@needs("codex")
def test_codex_a_failing_gateway_blocks_the_call(tmp_path: Path) -> None:
    result, build = run(tmp_path, "codex", gateway="error")
    assert result.gates() and build.exists()


# --- Gemini CLI ------------------------------------------------------------------------------------


@needs("gemini")
@pytest.mark.parametrize(("approval", "survives"), [("deny", True), ("approve", False)])
def test_gemini_held_call(tmp_path: Path, approval: str, survives: bool) -> None:
    result, build = run(tmp_path, "gemini", approval=approval)
    (gate,) = result.gates()
    assert gate["held"] == "shell-rm-recursive" and gate["verdict"] == approval
    assert build.exists() is survives


@needs("gemini")
def test_gemini_a_failing_gateway_blocks_the_call(tmp_path: Path) -> None:
    result, build = run(tmp_path, "gemini", gateway="error")
    assert result.gates() and build.exists()
