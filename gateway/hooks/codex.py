"""Codex CLI hooks: the Claude Code wire shape, with Codex's own blind spots handled.

Input (stdin of a command hook; Codex has no ``http`` hooks), 0.169.0::

    {"session_id": "…", "turn_id": "…", "transcript_path": "…", "cwd": "/repo",
     "hook_event_name": "PreToolUse", "model": "gpt-…", "permission_mode": "bypassPermissions",
     "tool_name": "Bash", "tool_input": {"command": "rm -r build"}, "tool_use_id": "call_…"}

The model calls ``exec_command`` with ``{"cmd": …}``, but the hook sees ``Bash`` and
``tool_input.command``, so shell rules written for Claude's ``Bash`` cover Codex too.
``PermissionRequest`` (only when Codex would ask for an escalation) has the same fields.

Output, as Claude's (``gateway.hooks.claude``), except:

* ``PreToolUse`` ``permissionDecision: "ask"`` is **ignored by Codex: the command runs**. rcgate
  never answers ``ask``: a call policy holds keeps the hook open until an approver decides,
  then answers allow or deny.
* ``PreToolUse`` ``"allow"`` is a no-op in Codex (the call runs, as it would anyway), so an
  approval of a tool gate is rendered as ``{}``; Codex's own sandbox still applies.
* A hook that times out or fails is skipped and **the command runs** (fail open), so the
  command adapter answers deny before Codex's ``timeout`` (``gateway.hooks.command``).
* Hooks must be trusted: non-managed hooks run only after review (by content hash) or with
  ``--dangerously-bypass-hook-trust``; an untrusted hook is skipped silently
  (``gateway.hooks.settings`` adds the flag).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.hooks.claude import HookSpecificFormat
from gateway.hooks.model import EventKind


class CodexFormat(HookSpecificFormat):
    """Codex CLI: Claude's shapes, approval of a tool gate written as ``{}``."""

    name = "codex"
    events: Mapping[str, EventKind] = {
        "PreToolUse": EventKind.TOOL,
        "PermissionRequest": EventKind.PERMISSION,
        "PostToolUse": EventKind.RESULT,
        "UserPromptSubmit": EventKind.PROMPT,
    }
    approve_tool_with_allow = False


ADAPTER = CodexFormat()
