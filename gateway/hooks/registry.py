"""Which adapter answers which assistant: ``adapter_for("claude" | "codex" | "gemini")``."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.hooks import claude, codex, gemini
from gateway.hooks.model import Adapter, UnknownAssistant

ADAPTERS: Mapping[str, Adapter] = {
    claude.ADAPTER.name: claude.ADAPTER,
    codex.ADAPTER.name: codex.ADAPTER,
    gemini.ADAPTER.name: gemini.ADAPTER,
}
ASSISTANTS = tuple(ADAPTERS)


def adapter_for(assistant: str) -> Adapter:
    """The adapter of ``assistant``; raises ``UnknownAssistant`` (404) for any other name."""
    found = ADAPTERS.get(assistant)
    if found is None:
        names = ", ".join(ASSISTANTS)
        raise UnknownAssistant(f"no hook adapter for assistant {assistant[:40]!r} (known: {names})")
    return found
