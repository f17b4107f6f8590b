"""Lockout arithmetic: how long a factor stays locked after repeated failures (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 5  # failures ...
    window_s: int = 300  # ... within this many seconds lock the factor
    base_s: int = 60  # first lock; each further lock doubles it
    max_s: int = 3600

    def lock_duration_s(self, level: int) -> int:
        """Exponential back-off: base, 2·base, 4·base, … capped at ``max_s`` (level starts at 1)."""
        return int(min(self.max_s, self.base_s * 2 ** max(0, level - 1)))
