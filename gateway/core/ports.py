"""Store ports: what the rooms need from storage, as Protocols. Backends live in ``gateway.store``.

Durable data (users, factors, audit) survives a restart; ephemeral data (challenges, login
sessions, counters) expires by itself. Every backend passes ``tests/contract``; the embedded
backend is the fake that the contract suite keeps honest.

Backends raise ``gateway.core.errors`` only: ``Conflict`` for duplicates, ``Unavailable`` when the
backing service fails (callers fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.core.ids import ChallengeId, FactorId, LinkId, LoginSessionId, SessionId, UserId
from gateway.core.models import AuditEvent, Factor, Link, LoginSession, User


class UserStore(Protocol):
    async def add_user(self, user: User) -> None:
        """Insert; ``Conflict`` if the id or the name exists."""

    async def get_user(self, user_id: UserId) -> User | None: ...

    async def user_by_name(self, name: str) -> User | None: ...

    async def list_users(self) -> Sequence[User]: ...

    async def update_user(self, user: User) -> None:
        """Replace the record with the same id; ``NotFound`` if absent."""


class FactorStore(Protocol):
    async def add_factor(self, factor: Factor) -> None:
        """Insert; ``Conflict`` if the id or (for passkeys) the credential id exists."""

    async def get_factor(self, factor_id: FactorId) -> Factor | None: ...

    async def factor_by_credential(self, credential_id: str) -> Factor | None: ...

    async def factors_of(self, user_id: UserId) -> Sequence[Factor]: ...

    async def update_factor(self, factor: Factor) -> None: ...

    async def remove_factor(self, factor_id: FactorId) -> None: ...

    async def remove_factors_of(self, user_id: UserId) -> int: ...


class LoginSessionStore(Protocol):
    async def put_login(self, login: LoginSession, ttl_s: float) -> None:
        """Create or replace; the record disappears after ``ttl_s`` seconds."""

    async def get_login(self, login_id: LoginSessionId) -> LoginSession | None: ...

    async def logins_of(self, user_id: UserId) -> Sequence[LoginSession]: ...

    async def delete_login(self, login_id: LoginSessionId) -> None: ...


class ChallengeStore(Protocol):
    async def put_challenge(self, challenge_id: ChallengeId, payload: bytes, ttl_s: float) -> None: ...

    async def take_challenge(self, challenge_id: ChallengeId) -> bytes | None:
        """Return and delete atomically: a second take of the same id returns None."""


class CounterStore(Protocol):
    async def incr(self, name: str, ttl_s: float) -> int:
        """Add one; a new counter starts at 1 and expires ``ttl_s`` after its creation."""

    async def get_count(self, name: str) -> int: ...

    async def reset(self, name: str) -> None: ...

    async def raise_floor(self, name: str, value: int, ttl_s: float) -> bool:
        """Atomically set to ``value`` if it is greater than the stored one (absent = -inf).

        Returns True when raised. The TOTP replay guard and lock-until timestamps use it.
        """


class AuditLog(Protocol):
    async def append(self, event: AuditEvent) -> AuditEvent:
        """Store the event and return it with its sequence number."""

    async def events(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> Sequence[AuditEvent]: ...


class LinkStore(Protocol):
    async def put_link(self, link: Link, ttl_s: float) -> None:
        """Insert; the record is kept ``ttl_s`` seconds (beyond its expiry, for listing)."""

    async def get_link(self, link_id: LinkId) -> Link | None: ...

    async def claim_link(self, link_id: LinkId, user_id: UserId, now: float) -> Link | None:
        """Atomically redeem: succeeds (returns the updated link) only if the link is unrevoked,
        unexpired at ``now``, not yet redeemed, and ``for_user`` is unset or equals ``user_id``.
        Exactly one of several concurrent claims wins."""

    async def revoke_link(self, link_id: LinkId, by: str, now: float) -> Link | None:
        """Mark revoked (idempotent); None if there is no such link."""

    async def links_of_session(self, session_id: SessionId) -> Sequence[Link]: ...


class Store(
    UserStore, FactorStore, LoginSessionStore, ChallengeStore, CounterStore, AuditLog, LinkStore, Protocol
):
    """Everything a gateway node needs from its backend."""

    async def close(self) -> None: ...
