"""Typed identifiers: every id is a NewType over str, never a bare str in a signature."""

from __future__ import annotations

import secrets
from typing import NewType

UserId = NewType("UserId", str)
FactorId = NewType("FactorId", str)
LoginSessionId = NewType("LoginSessionId", str)
SessionId = NewType("SessionId", str)
LinkId = NewType("LinkId", str)
ChallengeId = NewType("ChallengeId", str)

ID_BYTES = 16  # 128 bits: unguessable, like every token the gateway mints


def new_id(prefix: str) -> str:
    """A random url-safe id with a readable prefix (``usr_…``, ``fac_…``)."""
    return f"{prefix}_{secrets.token_urlsafe(ID_BYTES)}"
