"""The clock port: pure rooms never read time, they are handed ``now`` or a Clock."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, as a float (wall clock, UTC)."""

    def now(self) -> float: ...


class FixedClock:
    """A clock that moves only when told to: the clock of every deterministic test."""

    def __init__(self, start: float) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds
