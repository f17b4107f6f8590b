"""Step-up freshness: has this login session presented one of the factors recently enough?"""

from __future__ import annotations

from collections.abc import Collection

from gateway.core.errors import ReauthRequired
from gateway.core.models import FactorKind, LoginSession


def is_fresh(login: LoginSession, factors: Collection[FactorKind], max_age_s: int, now: float) -> bool:
    if login.last_factor is None or login.last_factor_at is None:
        return False
    if login.last_factor not in factors:
        return False
    age = now - login.last_factor_at
    return 0 <= age <= max_age_s


def require_fresh(
    login: LoginSession,
    factors: Collection[FactorKind],
    max_age_s: int,
    now: float,
    available: Collection[FactorKind],
) -> None:
    """Raise ``ReauthRequired`` naming the factors the user can present, when not fresh.

    Args:
        factors: the factor kinds that satisfy the action.
        available: the kinds the user has enrolled (the prompt offers only those).
    """
    if is_fresh(login, factors, max_age_s, now):
        return
    usable = [f.value for f in FactorKind if f in factors and f in available]
    raise ReauthRequired(
        f"this action needs a factor presented in the last {max_age_s} seconds",
        factors=usable,
        max_age_s=max_age_s,
    )
