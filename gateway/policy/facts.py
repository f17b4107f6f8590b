"""What the engine is asked about: who acts (``Actor``), where (``SessionFacts``), and what (``Action``).

These are plain frozen values that the caller builds from its own records (the login
session, the live session, the hook payload); the engine reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.ids import SessionId, UserId
from gateway.core.models import FactorKind, Role
from gateway.core.modes import Mode


class KeyClass(StrEnum):
    """The classes of keys pressed outside the composer; each has its own rule (``key_rules``)."""

    INTERRUPT = "interrupt"  # Ctrl-C, Esc
    NAVIGATION = "navigation"  # arrows, Tab, Page Up/Down, Home/End
    CONFIRM = "confirm"  # Enter alone, y/n answers to a dialog
    MODE_SWITCH = "mode_switch"  # Shift-Tab: cycles an assistant's permission mode
    RAW = "raw"  # everything else


class Assistant(StrEnum):
    """Assistants whose hooks rcgate answers; a tool call may name another (then only ``any`` rules apply)."""

    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in person asking, with their step-up state (which factor, when: wall-clock seconds)."""

    user_id: UserId
    name: str
    groups: tuple[str, ...] = ()
    role: Role = Role.MEMBER
    last_factor: FactorKind | None = None
    last_factor_at: float | None = None


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What policy may look at in a live session.

    ``remote_participants`` counts people attached through links (not the owner at the
    workstation); ``permission_mode`` is the assistant's own mode as its hook reports it
    (``default``, ``acceptEdits``, ``bypassPermissions``…); ``repo_root`` is the absolute
    path of the repository the assistant works in, if known.
    """

    id: SessionId
    owner_id: UserId
    owner_name: str
    host: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    assistant: str | None = None
    remote_participants: int = 0
    permission_mode: str | None = None
    repo_root: str | None = None


@dataclass(frozen=True, slots=True)
class RequestMode:
    """Attach in, or move up to, ``mode``."""

    mode: Mode


@dataclass(frozen=True, slots=True)
class SubmitLine:
    """Text submitted from the composer (one action even if it holds several lines)."""

    text: str


@dataclass(frozen=True, slots=True)
class Key:
    """A key pressed outside the composer, already classed by the caller."""

    key_class: KeyClass


@dataclass(frozen=True, slots=True)
class ToolCall:
    """An assistant's tool call as its hook reports it (``input`` is the tool's JSON input)."""

    assistant: str
    tool: str
    input: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resize:
    """A participant resized their view (it never resizes the owner's terminal)."""


Action = RequestMode | SubmitLine | Key | ToolCall | Resize


def action_from(
    *,
    mode: Mode | None,
    request: bool,
    key: str | None,
    tool: str | None,
    text: str | None,
    tool_input: Mapping[str, object] | None,
    assistant: str | None,
) -> Action:
    """The action an explain request describes (CLI flags or the admin page's explain box).

    Raises ValueError with a message fit for the person asking.
    """
    if tool:
        return ToolCall(assistant=assistant or "any", tool=tool, input=dict(tool_input or {}))
    if key:
        return Key(KeyClass(key))
    if request or text is None:
        if mode is None:
            raise ValueError("give a mode to explain a mode request, or an input, a tool or a key")
        return RequestMode(mode)
    return SubmitLine(text)
