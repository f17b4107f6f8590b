"""Before remote control starts: could the assistant's hooks silently fall open?

Every assistant skips a hook it cannot load, and then runs the tool (RECIPES-ASSISTANTS.md):
an invalid settings file is dropped without a word under ``claude -p``, an ``http`` entry
breaks Codex's and Gemini's whole hook list, an untrusted Codex hook is skipped, a user's
``disableAllHooks`` or ``hooksConfig.disabled`` switches rcgate off. ``preflight`` lists
every such problem; ``rcgate share`` refuses to start remote control unless it is empty.

``check_settings`` validates a generated document, ``check_version`` the assistant's
``--version`` output (the versions the recipes verified), ``check_argv`` the command line,
and ``check_overrides`` the settings layers rcgate cannot override.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.hooks.settings import (
    CLAUDE_GATES,
    CODEX_GATES,
    CODEX_TRUST_FLAG,
    GEMINI_GATES,
    HOOK_NAME,
)
from gateway.hooks.timing import MAX_HOOK_TIMEOUT_S, MIN_HOOK_TIMEOUT_S

# The oldest versions whose hooks the recipes saw block a tool call. Claude Code needs 2.1.330
# for "onFailure": "block" (2.1.197 ignores it and runs the tool when the hook fails).
MIN_VERSIONS: Mapping[str, tuple[int, int, int]] = {
    "claude": (2, 1, 330),
    "codex": (0, 169, 0),
    "gemini": (0, 61, 0),
}
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def check_version(assistant: str, version_output: str) -> list[str]:
    """Problems with the assistant's version, from its ``--version`` output."""
    found = _VERSION.search(version_output)
    need = MIN_VERSIONS.get(assistant)
    if need is None:
        return [f"{assistant}: no hook support in rcgate"]
    wanted = ".".join(map(str, need))
    if found is None:
        return [f"{assistant}: cannot read its version from {version_output.strip()[:80]!r}"]
    have = (int(found[1]), int(found[2]), int(found[3]))
    if have < need:
        return [f"{assistant} {found[0]} is too old: rcgate's hooks need {wanted} or later to fail closed"]
    return []


def check_argv(assistant: str, argv: Sequence[str]) -> list[str]:
    """Problems with the wired command line (flags that drop or bypass the hooks)."""
    problems = []
    if assistant == "claude":
        if "--bare" in argv:
            problems.append("claude --bare runs no hooks")
        if sum(a == "--settings" or a.startswith("--settings=") for a in argv) > 1:
            problems.append("claude is given --settings twice: rcgate's hooks may be replaced")
    if assistant == "codex" and CODEX_TRUST_FLAG not in argv:
        problems.append(f"codex runs untrusted hooks only with {CODEX_TRUST_FLAG}")
    return problems


def _timeout_ok(value: object, scale: int) -> bool:
    return isinstance(value, int) and MIN_HOOK_TIMEOUT_S * scale <= value <= MAX_HOOK_TIMEOUT_S * scale


def _entries(doc: Mapping[str, Any], event: str) -> list[Mapping[str, Any]]:
    hooks = doc.get("hooks")
    groups = hooks.get(event) if isinstance(hooks, Mapping) else None
    out: list[Mapping[str, Any]] = []
    for group in groups if isinstance(groups, list) else []:
        inner = group.get("hooks") if isinstance(group, Mapping) else None
        out += [h for h in inner if isinstance(h, Mapping)] if isinstance(inner, list) else []
    return out


def _is_ours(entry: Mapping[str, Any], assistant: str) -> bool:
    command = entry.get("command")
    url = entry.get("url")
    if isinstance(command, str):
        words = command.split()
        return len(words) > 1 and words[-1] == assistant and any("hook" in w for w in words[:-1])
    return isinstance(url, str) and url.endswith(f"/api/hooks/{assistant}")


def check_settings(assistant: str, doc: Mapping[str, Any]) -> list[str]:
    """Problems with a generated hook document (``claude_settings``, ``codex_hooks``, ``gemini_settings``)."""
    gates = {"claude": CLAUDE_GATES, "codex": CODEX_GATES, "gemini": GEMINI_GATES}.get(assistant)
    if gates is None:
        return [f"{assistant}: no hook support in rcgate"]
    problems = []
    scale = 1000 if assistant == "gemini" else 1
    for event in gates:
        ours = [e for e in _entries(doc, event) if _is_ours(e, assistant)]
        if not ours:
            problems.append(f"{assistant}: no rcgate hook for {event}")
        for entry in _entries(doc, event):
            kind = entry.get("type")
            if kind != "command" and not (assistant == "claude" and kind == "http"):
                problems.append(f"{assistant}: {event} hook of type {kind!r} is not supported (fails open)")
        for entry in ours:
            problems += _check_entry(assistant, event, entry, scale)
    if assistant == "claude" and doc.get("disableAllHooks") is not False:
        problems.append('claude: the settings must say "disableAllHooks": false')
    if assistant == "gemini":
        config = doc.get("hooksConfig")
        if not isinstance(config, Mapping) or config.get("enabled") is not True:
            problems.append("gemini: hooksConfig.enabled must be true")
        elif HOOK_NAME in (config.get("disabled") or []):
            problems.append(f"gemini: hooksConfig.disabled lists {HOOK_NAME!r}")
    return problems


def _check_entry(assistant: str, event: str, entry: Mapping[str, Any], scale: int) -> list[str]:
    problems = []
    if not _timeout_ok(entry.get("timeout"), scale):
        problems.append(f"{assistant}: {event} hook timeout {entry.get('timeout')!r} is out of range")
    if assistant == "claude" and entry.get("onFailure") != "block":
        problems.append(
            f'claude: {event} hook lacks "onFailure": "block" (a failing hook would run the tool)'
        )
    url = entry.get("url")
    if entry.get("type") == "http" and (
        not isinstance(url, str) or "$" in url or not url.startswith(("http://", "https://"))
    ):
        problems.append(f"claude: {event} http hook URL must be a literal http(s) URL (no variables)")
    return problems


def check_overrides(assistant: str, layers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems in settings layers rcgate's own layer cannot override.

    ``layers``: for Claude Code its managed settings (``/etc/claude-code/managed-settings.json``);
    for Codex the parsed ``config.toml`` files (user, project, system); for Gemini the
    workspace (``.gemini/settings.json``) and system settings, which sit above the user
    settings rcgate writes (and ``hooksConfig.disabled`` lists merge across every layer).
    """
    problems = []
    for layer in layers:
        if assistant == "claude":
            if layer.get("disableAllHooks") is True:
                problems.append("claude: managed settings disable all hooks")
            if layer.get("allowManagedHooksOnly") is True:
                problems.append("claude: managed settings allow managed hooks only")
        elif assistant == "codex":
            features = layer.get("features")
            if isinstance(features, Mapping) and False in (
                features.get("hooks"),
                features.get("codex_hooks"),
            ):
                problems.append("codex: hooks are switched off ([features] hooks = false)")
        elif assistant == "gemini":
            config = layer.get("hooksConfig")
            if isinstance(config, Mapping) and config.get("enabled") is False:
                problems.append("gemini: a settings file above the user's switches hooks off")
            if isinstance(config, Mapping) and HOOK_NAME in (config.get("disabled") or []):
                problems.append(f"gemini: a settings file disables the hook {HOOK_NAME!r}")
    return problems


def preflight(
    assistant: str,
    version_output: str,
    argv: Sequence[str],
    doc: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """Every reason the hooks could fall open; empty when remote control may start."""
    return (
        check_version(assistant, version_output)
        + check_argv(assistant, argv)
        + check_settings(assistant, doc)
        + check_overrides(assistant, layers)
    )
