"""Argument rules that both store backends enforce alike, so callers see the same errors from either."""

from __future__ import annotations

from gateway.core.errors import BadRequest
from gateway.core.models import Factor, PasskeyFactor

FACTOR_IDENTITY_CHANGED = "a factor's kind, user and credential never change"
# Redis Lua numbers are IEEE doubles: integers are exact only below 2**53.
MAX_FLOOR = 2**53 - 1


def check_ttl(ttl_s: float) -> None:
    """Refuse a time to live that is not a positive number of seconds."""
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")


def check_floor(value: int) -> None:
    """Refuse a ``raise_floor`` value that a Redis script could not compare exactly."""
    if not -MAX_FLOOR <= value <= MAX_FLOOR:
        raise ValueError(f"floor value {value} is outside ±(2**53 - 1)")


def check_same_factor(stored: Factor, new: Factor) -> None:
    """Refuse an update that would change what a factor is: its kind, owner or credential."""

    def identity(f: Factor) -> tuple[str, str, str | None]:
        return f.kind, f.user_id, f.credential_id if isinstance(f, PasskeyFactor) else None

    if identity(stored) != identity(new):
        raise BadRequest(FACTOR_IDENTITY_CHANGED)
