"""The two link state changes both backends apply inside one atomic step: claim and revoke."""

from __future__ import annotations

from gateway.core.ids import UserId
from gateway.core.models import Link


def claimed(link: Link, user_id: UserId, now: float) -> Link | None:
    """The link redeemed by ``user_id`` at ``now``, or None if it cannot be claimed.

    Claimable: not revoked, not expired at ``now``, not yet redeemed, and made for anyone or for
    ``user_id``.
    """
    if link.revoked_at is not None or link.redeemed_by is not None or link.expires_at <= now:
        return None
    if link.for_user is not None and link.for_user != user_id:
        return None
    return link.model_copy(update={"redeemed_by": user_id, "redeemed_at": now})


def revoked(link: Link, by: str, now: float) -> Link | None:
    """The link revoked by ``by`` at ``now``, or None if already revoked (the first revocation stands)."""
    if link.revoked_at is not None:
        return None
    return link.model_copy(update={"revoked_at": now, "revoked_by": by})
