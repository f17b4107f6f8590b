"""The session-scoped hook configuration rcgate gives each assistant, and how it is put in place.

Nothing here edits a user's own settings: each assistant gets its hooks for one run only.

``claude``  a settings file passed with ``--settings FILE`` (the command-line layer, above the
            user's and the project's settings): ``PreToolUse``, ``PermissionRequest`` and
            ``UserPromptSubmit`` with ``"onFailure": "block"`` (Claude Code ≥ 2.1.330 then
            blocks when the hook fails or times out, instead of running the tool), and
            ``PostToolUse`` for the record; ``"disableAllHooks": false`` overrides a user's
            or project's kill switch. Each entry runs ``rcgate hook claude`` (``transport
            "command"``) or POSTs to the gateway itself (``"http"``; the token stays in the
            environment: ``Authorization: Bearer $RCGATE_HOOK_TOKEN`` with ``allowedEnvVars``).
``codex``   ``hooks.json`` in a session ``CODEX_HOME``: a folder of symbolic links to the
            user's own ``~/.codex`` entries (config, auth, sessions) plus a ``hooks.json`` that
            is the user's own hooks with rcgate's added; Codex is started with
            ``--dangerously-bypass-hook-trust`` (an untrusted hook is silently skipped, and
            Codex's trust is keyed to a content hash rcgate does not compute). Command hooks
            only: Codex has no ``http`` hooks.
``gemini``  ``settings.json`` in a session ``GEMINI_CLI_HOME`` (Gemini's stand-in for the home
            folder): ``.gemini/`` holds symbolic links to the user's own ``~/.gemini`` entries
            (credentials, trusted folders, history) and a ``settings.json`` that is the
            user's own settings plus ``hooksConfig.enabled: true`` and ``BeforeTool`` /
            ``AfterTool`` / ``BeforeAgent`` command hooks (``timeout`` in milliseconds). Not
            the system-settings file (``GEMINI_CLI_SYSTEM_SETTINGS_PATH``): Gemini 0.61 skips
            it, with a warning on stderr and so falling open, unless the file and every
            folder above it are owned by root and writable by nobody else.

Every hook's timeout is ``HookConfig.hook_timeout_s`` (``timing.hook_timeout_for(policy)``);
the same value goes to the command adapter in ``RCGATE_HOOK_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.hooks.command import GATEWAY_ENV, HOOK_PATH, TOKEN_ENV
from gateway.hooks.registry import adapter_for
from gateway.hooks.timing import DEFAULT_HOOK_TIMEOUT_S, HOOK_TIMEOUT_ENV, HOOK_TIMEOUT_HEADER

HOOK_NAME = "rcgate"  # the name of rcgate's Gemini hook entries (hooksConfig.disabled lists names)
CLAUDE_SETTINGS_FILE = "claude-settings.json"
CODEX_HOME_DIR = "codex-home"
GEMINI_HOME_DIR = "gemini-home"
GEMINI_HOME_ENV = "GEMINI_CLI_HOME"
CODEX_TRUST_FLAG = "--dangerously-bypass-hook-trust"
CLAUDE_GATES = ("PreToolUse", "PermissionRequest", "UserPromptSubmit")
CLAUDE_RECORDS = ("PostToolUse",)
CODEX_GATES = ("PreToolUse", "PermissionRequest", "UserPromptSubmit")
CODEX_RECORDS = ("PostToolUse",)
GEMINI_GATES = ("BeforeTool", "BeforeAgent")
GEMINI_RECORDS = ("AfterTool",)

Transport = Literal["command", "http"]


@dataclass(frozen=True, slots=True)
class HookConfig:
    """What every generated configuration needs.

    ``command`` is the argv prefix of the command adapter (the assistant name is appended);
    an absolute path is best, as the assistant runs it through a shell with its own PATH.
    ``transport`` matters only for Claude Code; Codex and Gemini always use the command.
    """

    gateway_url: str
    hook_timeout_s: int = DEFAULT_HOOK_TIMEOUT_S
    command: tuple[str, ...] = ("rcgate", "hook")
    transport: Transport = "command"

    def command_line(self, assistant: str) -> str:
        """The shell command an assistant runs for its hook: ``rcgate hook claude``."""
        return shlex.join([*self.command, assistant])

    def hook_url(self, assistant: str) -> str:
        """The endpoint an ``http`` hook POSTs to (a literal URL: Claude expands no variable in it)."""
        return self.gateway_url.rstrip("/") + HOOK_PATH.format(assistant=assistant)


@dataclass(frozen=True, slots=True)
class Wiring:
    """How to start one assistant under rcgate: its argv, extra environment, files and links.

    ``files`` maps a path to its text (written 0600 before the start), ``links`` a path to the
    target of a symbolic link; ``write_wiring`` does both. ``notes``: the user's own files that
    could not be read (not JSON) and so are left out of the session's copy. ``rcgate share``
    adds ``RCGATE_HOOK_TOKEN`` to ``env`` (it is never written to a file).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    files: Mapping[Path, str] = field(default_factory=dict)
    links: Mapping[Path, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --- the documents -------------------------------------------------------------------------


def _claude_entry(cfg: HookConfig, *, gate: bool) -> dict[str, Any]:
    entry: dict[str, Any]
    if cfg.transport == "http":
        entry = {
            "type": "http",
            "url": cfg.hook_url("claude"),
            "headers": {
                "Authorization": f"Bearer ${TOKEN_ENV}",
                HOOK_TIMEOUT_HEADER: str(cfg.hook_timeout_s),
            },
            "allowedEnvVars": [TOKEN_ENV],
        }
    else:
        entry = {"type": "command", "command": cfg.command_line("claude")}
    entry["timeout"] = cfg.hook_timeout_s
    if gate:
        entry["onFailure"] = "block"
    return entry


def claude_settings(cfg: HookConfig) -> dict[str, Any]:
    """The Claude Code settings document passed with ``--settings``."""
    hooks: dict[str, Any] = {e: [{"hooks": [_claude_entry(cfg, gate=True)]}] for e in CLAUDE_GATES}
    hooks |= {e: [{"hooks": [_claude_entry(cfg, gate=False)]}] for e in CLAUDE_RECORDS}
    return {"disableAllHooks": False, "hooks": hooks}


def codex_hooks(cfg: HookConfig, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Codex ``hooks.json`` document: the user's own hooks (``own``) with rcgate's added."""
    entry = {"type": "command", "command": cfg.command_line("codex"), "timeout": cfg.hook_timeout_s}
    hooks = _own_hooks(own)
    for event in (*CODEX_GATES, *CODEX_RECORDS):
        hooks[event] = [*hooks.get(event, []), {"hooks": [dict(entry)]}]
    return {"hooks": hooks}


def gemini_settings(cfg: HookConfig, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Gemini ``settings.json`` document: the user's own settings (``own``) plus rcgate's hooks."""
    entry = {
        "type": "command",
        "name": HOOK_NAME,
        "command": cfg.command_line("gemini"),
        "timeout": cfg.hook_timeout_s * 1000,  # milliseconds
    }
    doc: dict[str, Any] = dict(own) if isinstance(own, Mapping) else {}
    hooks = _own_hooks(doc)
    for event in (*GEMINI_GATES, *GEMINI_RECORDS):
        hooks[event] = [*hooks.get(event, []), {"hooks": [dict(entry)]}]
    config = doc.get("hooksConfig")
    doc["hooksConfig"] = {**(config if isinstance(config, dict) else {}), "enabled": True}
    doc["hooks"] = hooks
    return doc


def _own_hooks(doc: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The well-formed event lists of a document's ``hooks`` (anything else is dropped)."""
    hooks = doc.get("hooks") if isinstance(doc, Mapping) else None
    if not isinstance(hooks, dict):
        return {}
    return {k: list(v) for k, v in hooks.items() if isinstance(k, str) and isinstance(v, list)}


# --- putting them in place -------------------------------------------------------------------


def wire(
    assistant: str,
    argv: Sequence[str],
    cfg: HookConfig,
    session_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> Wiring:
    """How to start ``argv`` (e.g. ``["claude", "-p", "…"]``) with rcgate's hooks for one session.

    ``session_dir`` is a private folder of this session (rcgate removes it at the end);
    ``environ`` is the environment the assistant would get (default: this process's), read
    for ``HOME``, ``CODEX_HOME`` and ``GEMINI_CLI_HOME``. ``Wiring.notes`` says what of the user's
    own configuration could not be carried over. Raises ``UnknownAssistant``.
    """
    adapter_for(assistant)
    env_in = os.environ if environ is None else environ
    env = {GATEWAY_ENV: cfg.gateway_url, HOOK_TIMEOUT_ENV: str(cfg.hook_timeout_s)}
    args = list(argv)
    if assistant == "claude":
        path = session_dir / CLAUDE_SETTINGS_FILE
        at = _program_index(args, "claude") + 1
        args[at:at] = ["--settings", str(path)]
        return Wiring(tuple(args), env, files={path: _json(claude_settings(cfg))})
    if assistant == "codex":
        home = session_dir / CODEX_HOME_DIR
        own_home = Path(env_in.get("CODEX_HOME") or Path(env_in.get("HOME", "~")).expanduser() / ".codex")
        links = {home / p.name: p for p in _entries(own_home) if p.name != "hooks.json"}
        own, notes = _read_own(own_home / "hooks.json")
        at = _program_index(args, "codex") + 1
        if len(args) > at and args[at] in ("exec", "e"):
            at += 1
        args[at:at] = [CODEX_TRUST_FLAG]
        env["CODEX_HOME"] = str(home)
        files = {home / "hooks.json": _json(codex_hooks(cfg, own))}
        return Wiring(tuple(args), env, files=files, links=links, notes=notes)
    home = session_dir / GEMINI_HOME_DIR
    own_home = Path(env_in.get(GEMINI_HOME_ENV) or Path(env_in.get("HOME", "~")).expanduser())
    own_dir = own_home / ".gemini"
    links = {home / ".gemini" / p.name: p for p in _entries(own_dir) if p.name != "settings.json"}
    own, notes = _read_own(own_dir / "settings.json")
    env[GEMINI_HOME_ENV] = str(home)
    files = {home / ".gemini" / "settings.json": _json(gemini_settings(cfg, own))}
    return Wiring(tuple(args), env, files=files, links=links, notes=notes)


def write_wiring(wiring: Wiring) -> None:
    """Write the files (0600, folders 0700) and make the links of ``wiring``; blocking."""
    for path, text in wiring.files.items():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    for link, target in wiring.links.items():
        link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def _program_index(argv: Sequence[str], name: str) -> int:
    """Where the assistant's own program is in ``argv`` (after ``npx``, ``env``…); else 0."""
    for i, arg in enumerate(argv):
        base = Path(arg).name
        if base == name or base.startswith(f"{name}.") or arg.endswith(f"/{name}-code"):
            return i
    return 0


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _read_own(path: Path) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """A user's own JSON file: (its object, no notes), or (None, a note) when it exists but is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ()
    except OSError as exc:
        return None, (f"{path}: cannot be read ({exc.strerror}); left out of this session",)
    try:
        doc = json.loads(text)
    except ValueError:
        return None, (f"{path}: not plain JSON; left out of this session",)
    if not isinstance(doc, dict):
        return None, (f"{path}: not a JSON object; left out of this session",)
    return doc, ()


def _json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
