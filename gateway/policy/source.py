"""The policy in force, as the rest of the gateway sees it: a value and the port that supplies it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.policy.model import Policy


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: Policy
    version: str  # policy_version(text): recorded with every decision
    source: str  # the file name, or "shipped default policy"
    text: str
    loaded_at: float


class PolicySource(Protocol):
    def current(self) -> LoadedPolicy:
        """The policy in force now (a reload swaps it atomically)."""

    @property
    def last_error(self) -> str | None:
        """Why the latest attempt to load a new version was refused (the old one stays)."""

    @property
    def editable(self) -> bool:
        """Whether ``submit`` can write a new version (a policy file is configured)."""

    def versions(self) -> list[tuple[str, str]]:
        """(name, text) of every version kept, oldest first."""

    async def submit(self, text: str, *, who: str) -> LoadedPolicy:
        """Validate, save and put in force; ``PolicyError`` when invalid."""
