"""The link service: a link is a 128-bit token in a URL, stored only as its SHA-256.

A link grants nothing by itself: redeeming it needs a signed-in user (checked by the caller),
it works once (bound to the user who redeems it, who may reopen it), expires unredeemed after its
TTL, and can be revoked. Every creation, redemption, refusal and revocation is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.core.audit import AuditType
from gateway.core.clock import Clock
from gateway.core.errors import BadRequest, Forbidden, GatewayError, Gone, NotFound
from gateway.core.ids import LinkId, SessionId, UserId
from gateway.core.models import AuditEvent, Link, User
from gateway.core.modes import Mode
from gateway.core.ports import AuditLog, LinkStore

TOKEN_BYTES = 16  # 128 bits
DEFAULT_TTL_S = 10 * 60  # unredeemed links expire after 10 minutes
MAX_TTL_S = 24 * 3600
KEEP_AFTER_EXPIRY_S = 24 * 3600  # records stay listable for a day after they lapse
TOKEN_MAX_CHARS = 64
PUBLIC_ID_CHARS = 12  # what lists show and `links revoke` takes: a prefix of the hash


def link_id_of(token: str) -> LinkId:
    return LinkId(hashlib.sha256(token.encode()).hexdigest())


def public_id(link: Link) -> str:
    return link.id[:PUBLIC_ID_CHARS]


def link_state(link: Link, now: float) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.redeemed_by is not None:
        return "redeemed"
    if link.expires_at <= now:
        return "expired"
    return "open"


class LinkStoreAndAudit(LinkStore, AuditLog, Protocol):
    pass


@dataclass(frozen=True, slots=True)
class NewLink:
    link: Link
    token: str
    url: str


class LinkService:
    def __init__(self, store: LinkStoreAndAudit, clock: Clock, public_url: str) -> None:
        self._store = store
        self._clock = clock
        self._public_url = public_url.rstrip("/")

    def url_for(self, token: str) -> str:
        return f"{self._public_url}/l/{token}"

    async def _audit(
        self,
        type_: AuditType,
        actor: str | None,
        link: Link | None,
        outcome: str,
        **detail: str | int | float | None,
    ) -> None:
        await self._store.append(
            AuditEvent.model_validate(
                {
                    "ts": self._clock.now(),
                    "type": str(type_),
                    "actor": actor,
                    "subject": link.session_id if link else None,
                    "outcome": outcome,
                    "detail": {"link": public_id(link) if link else None, **detail},
                }
            )
        )

    async def create(
        self,
        session_id: SessionId,
        mode: Mode,
        creator: User,
        *,
        for_user: UserId | None = None,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> NewLink:
        if not 10 <= ttl_s <= MAX_TTL_S:
            raise BadRequest(f"a link's TTL is between 10 s and {MAX_TTL_S // 3600} h")
        now = self._clock.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link = Link(
            id=link_id_of(token),
            session_id=session_id,
            mode=mode,
            created_by=creator.id,
            for_user=for_user,
            created_at=now,
            expires_at=now + ttl_s,
        )
        await self._store.put_link(link, ttl_s + KEEP_AFTER_EXPIRY_S)
        await self._audit(
            AuditType.LINK_CREATED, creator.id, link, "ok", mode=mode, ttl_s=ttl_s, for_user=for_user
        )
        return NewLink(link=link, token=token, url=self.url_for(token))

    async def redeem(self, token: str, user: User, *, remote: str | None = None) -> Link:
        """Redeem for ``user`` or raise a clear refusal (audited): NotFound, Forbidden, Gone."""
        if not token or len(token) > TOKEN_MAX_CHARS or not all(c.isalnum() or c in "-_" for c in token):
            await self._audit(
                AuditType.LINK_REFUSED, user.id, None, "fail", reason="malformed", remote=remote
            )
            raise NotFound("this link is not valid (mistyped or tampered with)", code="link_invalid")
        link_id = link_id_of(token)
        now = self._clock.now()
        claimed = await self._store.claim_link(link_id, user.id, now)
        if claimed is not None:
            await self._audit(
                AuditType.LINK_REDEEMED, user.id, claimed, "ok", mode=claimed.mode, remote=remote
            )
            return claimed
        link = await self._store.get_link(link_id)
        exc: GatewayError
        if link is None:
            reason, exc = (
                "unknown",
                NotFound("this link is not valid (mistyped or tampered with)", code="link_invalid"),
            )
        elif link.revoked_at is not None:
            reason, exc = "revoked", Gone("this link was revoked", code="link_revoked")
        elif link.redeemed_by == user.id:
            return link  # the same person reopening their link
        elif link.redeemed_by is not None:
            reason, exc = "used", Forbidden("this link was already used by someone else", code="link_used")
        elif link.for_user is not None and link.for_user != user.id:
            reason, exc = (
                "other_user",
                Forbidden("this link was made for another user", code="link_not_yours"),
            )
        else:
            reason, exc = "expired", Gone("this link has expired; ask for a new one", code="link_expired")
        await self._audit(AuditType.LINK_REFUSED, user.id, link, "fail", reason=reason, remote=remote)
        raise exc

    async def revoke(self, session_id: SessionId, public: str, by: User) -> Link:
        matches = [
            x for x in await self._store.links_of_session(session_id) if x.id.startswith(public.lower())
        ]
        if len(public) < 6 or len(matches) != 1:
            raise NotFound("no such link for this session (give at least 6 characters of its id)")
        link = await self._store.revoke_link(matches[0].id, by.id, self._clock.now())
        if link is None:
            raise NotFound("no such link")
        await self._audit(AuditType.LINK_REVOKED, by.id, link, "ok")
        return link

    async def revoke_all(self, session_id: SessionId, by: str) -> int:
        n = 0
        for link in await self._store.links_of_session(session_id):
            if link.revoked_at is None:
                await self._store.revoke_link(link.id, by, self._clock.now())
                n += 1
        return n

    async def peek(self, token: str) -> Link | None:
        """The link a token names, without redeeming it (so policy can be asked first)."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        return await self._store.get_link(link_id_of(token))

    async def get(self, link_id: LinkId) -> Link | None:
        return await self._store.get_link(link_id)

    async def list(self, session_id: SessionId) -> Sequence[Link]:
        return sorted(await self._store.links_of_session(session_id), key=lambda x: x.created_at)
