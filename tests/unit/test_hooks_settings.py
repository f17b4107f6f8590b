"""Generated hook settings, how they are wired in, the preflight that refuses fail-open setups, timing."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.hooks import preflight, settings, timing
from gateway.hooks.model import UnknownAssistant
from gateway.hooks.settings import (
    HookConfig,
    claude_settings,
    codex_hooks,
    gemini_settings,
    wire,
    write_wiring,
)
from gateway.policy import parse_policy, shipped_policy_text

CFG = HookConfig("https://gw.example:8443/", 300, ("/opt/rcgate/bin/rcgate", "hook"))
HTTP = HookConfig("https://gw.example:8443", 300, transport="http")


def test_claude_settings_command_transport() -> None:
    doc = claude_settings(CFG)
    assert doc["disableAllHooks"] is False
    pre = doc["hooks"]["PreToolUse"][0]["hooks"][0]
    assert pre == {
        "type": "command",
        "command": "/opt/rcgate/bin/rcgate hook claude",
        "timeout": 300,
        "onFailure": "block",
    }
    assert "matcher" not in doc["hooks"]["PreToolUse"][0]  # every tool
    assert doc["hooks"]["PermissionRequest"][0]["hooks"][0]["onFailure"] == "block"
    assert doc["hooks"]["UserPromptSubmit"][0]["hooks"][0]["onFailure"] == "block"
    assert "onFailure" not in doc["hooks"]["PostToolUse"][0]["hooks"][0]  # it already ran
    assert preflight.check_settings("claude", doc) == []


def test_claude_settings_http_transport_keeps_the_token_out_of_the_file() -> None:
    doc = claude_settings(HTTP)
    pre = doc["hooks"]["PreToolUse"][0]["hooks"][0]
    assert pre["url"] == "https://gw.example:8443/api/hooks/claude"
    assert pre["headers"] == {"Authorization": "Bearer $RCGATE_HOOK_TOKEN", "X-Rcgate-Hook-Timeout": "300"}
    assert pre["allowedEnvVars"] == ["RCGATE_HOOK_TOKEN"]
    assert pre["onFailure"] == "block" and pre["timeout"] == 300
    assert preflight.check_settings("claude", doc) == []


def test_codex_hooks_keep_the_users_own() -> None:
    own = {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint"}]}]}}
    doc = codex_hooks(CFG, own)
    pre = doc["hooks"]["PreToolUse"]
    assert pre[0] == own["hooks"]["PreToolUse"][0]
    assert pre[1]["hooks"][0] == {
        "type": "command",
        "command": "/opt/rcgate/bin/rcgate hook codex",
        "timeout": 300,
    }
    assert set(doc["hooks"]) == {"PreToolUse", "PermissionRequest", "UserPromptSubmit", "PostToolUse"}
    assert preflight.check_settings("codex", doc) == []


def test_gemini_settings_are_in_milliseconds_and_switch_hooks_on() -> None:
    system = {"telemetry": {"enabled": False}, "hooksConfig": {"enabled": False, "notifications": True}}
    doc = gemini_settings(CFG, system)
    assert doc["telemetry"] == {"enabled": False}
    assert doc["hooksConfig"] == {"enabled": True, "notifications": True}
    entry = doc["hooks"]["BeforeTool"][0]["hooks"][0]
    assert entry == {
        "type": "command",
        "name": "rcgate",
        "command": "/opt/rcgate/bin/rcgate hook gemini",
        "timeout": 300_000,
    }
    assert set(doc["hooks"]) == {"BeforeTool", "BeforeAgent", "AfterTool"}
    assert preflight.check_settings("gemini", doc) == []


def test_wire_claude_adds_settings_after_the_program(tmp_path: Path) -> None:
    w = wire("claude", ["npx", "claude", "-p", "hi"], CFG, tmp_path, environ={})
    path = tmp_path / "claude-settings.json"
    assert w.argv == ("npx", "claude", "--settings", str(path), "-p", "hi")
    assert w.env == {"RCGATE_GATEWAY": CFG.gateway_url, "RCGATE_HOOK_TIMEOUT_S": "300"}
    assert json.loads(w.files[path]) == claude_settings(CFG)
    write_wiring(w)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert preflight.check_argv("claude", w.argv) == []


def test_wire_codex_builds_a_session_home_of_links(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.toml").write_text("model = 'x'\n")
    (own / "auth.json").write_text("{}")
    (own / "hooks.json").write_text(json.dumps({"hooks": {"Stop": [{"hooks": []}]}}))
    session = tmp_path / "session"
    w = wire(
        "codex",
        ["codex", "exec", "-s", "workspace-write", "go"],
        CFG,
        session,
        environ={"CODEX_HOME": str(own)},
    )
    home = session / "codex-home"
    assert w.argv == ("codex", "exec", "--dangerously-bypass-hook-trust", "-s", "workspace-write", "go")
    assert w.env["CODEX_HOME"] == str(home)
    assert w.links == {home / "auth.json": own / "auth.json", home / "config.toml": own / "config.toml"}
    write_wiring(w)
    assert (home / "config.toml").read_text() == "model = 'x'\n"
    hooks = json.loads((home / "hooks.json").read_text())["hooks"]
    assert "Stop" in hooks and "PreToolUse" in hooks
    assert json.loads((own / "hooks.json").read_text()) == {"hooks": {"Stop": [{"hooks": []}]}}  # untouched
    write_wiring(w)  # idempotent
    assert preflight.check_argv("codex", w.argv) == []


def test_wire_gemini_builds_a_session_home_of_links(tmp_path: Path) -> None:
    own = tmp_path / "user" / ".gemini"
    own.mkdir(parents=True)
    (own / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    (own / "oauth_creds.json").write_text("{}")
    session = tmp_path / "session"
    w = wire("gemini", ["gemini", "-p", "x"], CFG, session, environ={"HOME": str(tmp_path / "user")})
    home = session / "gemini-home"
    assert w.argv == ("gemini", "-p", "x") and w.notes == ()
    assert w.env["GEMINI_CLI_HOME"] == str(home)
    assert w.links == {home / ".gemini" / "oauth_creds.json": own / "oauth_creds.json"}
    doc = json.loads(w.files[home / ".gemini" / "settings.json"])
    assert doc["security"] == {"auth": {"selectedType": "gemini-api-key"}} and "BeforeTool" in doc["hooks"]
    write_wiring(w)
    assert (home / ".gemini" / "oauth_creds.json").is_symlink()


def test_unreadable_own_settings_are_noted(tmp_path: Path) -> None:
    own = tmp_path / ".gemini"
    own.mkdir()
    (own / "settings.json").write_text('{"ui": {} // a comment\n}')
    w = wire("gemini", ["gemini"], CFG, tmp_path / "s", environ={"GEMINI_CLI_HOME": str(tmp_path)})
    assert len(w.notes) == 1 and "not plain JSON" in w.notes[0]
    doc = json.loads(next(iter(w.files.values())))
    assert "ui" not in doc and "BeforeTool" in doc["hooks"]


def test_wire_refuses_an_unknown_assistant(tmp_path: Path) -> None:
    with pytest.raises(UnknownAssistant):
        wire("aider", ["aider"], CFG, tmp_path)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["hooks"].pop("PreToolUse"), "no rcgate hook for PreToolUse"),
        (lambda d: d["hooks"]["PreToolUse"][0]["hooks"][0].pop("onFailure"), "onFailure"),
        (lambda d: d["hooks"]["PermissionRequest"][0]["hooks"][0].update(timeout=3), "timeout 3"),
        (lambda d: d.update(disableAllHooks=True), "disableAllHooks"),
        (
            lambda d: d["hooks"]["PreToolUse"][0]["hooks"][0].update(
                type="http", url="${RCGATE_GATEWAY}/api/hooks/claude"
            ),
            "literal",
        ),
        (lambda d: d["hooks"]["PreToolUse"][0]["hooks"].append({"type": "prompt"}), "type 'prompt'"),
    ],
)
def test_claude_settings_that_could_fall_open_are_refused(mutate: Any, problem: str) -> None:
    doc = json.loads(json.dumps(claude_settings(CFG)))
    mutate(doc)
    problems = preflight.check_settings("claude", doc)
    assert any(problem in p for p in problems), problems


def test_http_hooks_are_refused_for_codex_and_gemini() -> None:
    doc = codex_hooks(CFG)
    doc["hooks"]["PreToolUse"].append({"hooks": [{"type": "http", "url": "http://x/api/hooks/codex"}]})
    assert any("type 'http'" in p for p in preflight.check_settings("codex", doc))
    gem = gemini_settings(CFG)
    gem["hooksConfig"]["enabled"] = False
    assert preflight.check_settings("gemini", gem) == ["gemini: hooksConfig.enabled must be true"]
    assert (
        preflight.check_settings("gemini", {**gem, "hooks": {}})[0] == "gemini: no rcgate hook for BeforeTool"
    )


@pytest.mark.parametrize(
    ("assistant", "output", "ok"),
    [
        ("claude", "2.1.330 (Claude Code)", True),
        ("claude", "2.2.0 (Claude Code)", True),
        ("claude", "2.1.197 (Claude Code)", False),
        ("claude", "garbage", False),
        ("codex", "codex-cli 0.169.0", True),
        ("codex", "codex-cli 0.124.0", False),
        ("gemini", "0.61.0", True),
        ("gemini", "0.60.9", False),
        ("aider", "1.0.0", False),
    ],
)
def test_versions(assistant: str, output: str, ok: bool) -> None:
    assert (preflight.check_version(assistant, output) == []) is ok


def test_argv_problems() -> None:
    assert preflight.check_argv("claude", ["claude", "--bare", "-p", "x"]) == ["claude --bare runs no hooks"]
    twice = ["claude", "--settings", "a.json", "--settings=b.json"]
    assert "twice" in preflight.check_argv("claude", twice)[0]
    assert "bypass" in preflight.check_argv("codex", ["codex", "exec", "x"])[0]


def test_layers_rcgate_cannot_override() -> None:
    assert preflight.check_overrides(
        "claude", [{"disableAllHooks": True}, {"allowManagedHooksOnly": True}]
    ) == [
        "claude: managed settings disable all hooks",
        "claude: managed settings allow managed hooks only",
    ]
    assert preflight.check_overrides("codex", [{"features": {"hooks": False}}])
    assert preflight.check_overrides("codex", [{"features": {"codex_hooks": True}}]) == []
    assert preflight.check_overrides("gemini", [{"hooksConfig": {"disabled": ["rcgate"]}}])
    assert preflight.check_overrides("gemini", [{"hooksConfig": {"disabled": ["other"]}}]) == []
    assert preflight.check_overrides("gemini", [{"hooksConfig": {"enabled": False}}])


def test_preflight_of_a_clean_wiring_is_empty(tmp_path: Path) -> None:
    w = wire("claude", ["claude"], CFG, tmp_path, environ={})
    doc = json.loads(next(iter(w.files.values())))
    assert preflight.preflight("claude", "2.1.330 (Claude Code)", w.argv, doc) == []
    assert preflight.preflight("claude", "2.1.197 (Claude Code)", w.argv, doc, [{"disableAllHooks": True}])


def test_timing() -> None:
    assert timing.parse_hook_timeout(None) == 600
    assert timing.parse_hook_timeout("30") == 30
    assert timing.parse_hook_timeout("3") == timing.MIN_HOOK_TIMEOUT_S
    assert timing.parse_hook_timeout("-5") == 600 and timing.parse_hook_timeout("1e9") == 600
    assert timing.parse_hook_timeout("99999999") == timing.MAX_HOOK_TIMEOUT_S
    assert timing.hold_budget_s(120, 600) == 120
    assert timing.hold_budget_s(120, 60) == 55
    assert timing.adapter_budget_s(60) == 58
    demo = parse_policy(shipped_policy_text("demo"), "demo.yaml")
    assert timing.longest_review_timeout_s(demo) == 120
    t = timing.hook_timeout_for(demo)
    assert timing.hold_budget_s(120, t) == 120 and timing.adapter_budget_s(t) > 120 + timing.SERVER_MARGIN_S


def test_settings_module_names() -> None:
    assert settings.CODEX_TRUST_FLAG == "--dangerously-bypass-hook-trust"
    assert CFG.command_line("codex") == "/opt/rcgate/bin/rcgate hook codex"
    assert HookConfig("http://gw", command=("/path with space/rcgate", "hook")).command_line("claude") == (
        "'/path with space/rcgate' hook claude"
    )
