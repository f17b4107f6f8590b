"""Domain records that cross a process boundary (store, wire): pydantic, frozen, strict on extras."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.ids import FactorId, LinkId, LoginSessionId, SessionId, UserId
from gateway.core.modes import Mode


class Record(BaseModel):
    """Base of stored records: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    MEMBER = "member"


class FactorKind(StrEnum):
    PASSKEY = "passkey"
    TOTP = "totp"


class User(Record):
    id: UserId
    name: str
    role: Role = Role.MEMBER
    groups: tuple[str, ...] = ()
    disabled: bool = False
    created_at: float
    # argon2id hash, used only on the password + TOTP path; None until the user sets one.
    password_hash: str | None = None


class PasskeyFactor(Record):
    kind: Literal[FactorKind.PASSKEY] = FactorKind.PASSKEY
    id: FactorId
    user_id: UserId
    name: str
    created_at: float
    last_used_at: float | None = None
    credential_id: str  # base64url, as the authenticator reports it
    public_key: str  # base64url COSE key
    sign_count: int = 0
    transports: tuple[str, ...] = ()


class TotpFactor(Record):
    kind: Literal[FactorKind.TOTP] = FactorKind.TOTP
    id: FactorId
    user_id: UserId
    name: str
    created_at: float
    last_used_at: float | None = None
    secret: str  # base32 (RFC 4648), as shown once at enrolment
    confirmed: bool = False


Factor = Annotated[PasskeyFactor | TotpFactor, Field(discriminator="kind")]


class LoginSession(Record):
    """A signed-in browser (or CLI) session. Its id is the SHA-256 of the cookie token."""

    id: LoginSessionId
    user_id: UserId
    created_at: float
    last_seen_at: float
    idle_timeout_s: int
    absolute_expiry_at: float
    # Step-up state: which factor kind was last presented and when (WebAuthn or TOTP).
    last_factor: FactorKind | None = None
    last_factor_at: float | None = None
    # Enrolment sessions may only add factors; they carry no factor until the first one is added.
    enrolling: bool = False
    csrf_token: str
    user_agent: str = ""
    remote: str = ""

    def expires_at(self) -> float:
        return min(self.last_seen_at + self.idle_timeout_s, self.absolute_expiry_at)


class AuditEvent(Record):
    """One append-only security event. ``detail`` never holds a secret."""

    seq: int = 0  # assigned by the store on append
    ts: float
    type: str
    actor: str | None = None  # user id, or "system", or a user name for failed sign-ins
    subject: str | None = None  # what the event is about: a user, factor, session, link
    outcome: Literal["ok", "fail", "info"] = "info"
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    remote: str | None = None


class Link(Record):
    """A remote-control link. Its id is the SHA-256 of the token in the URL; the token is never stored."""

    id: LinkId
    session_id: SessionId
    mode: Mode
    created_by: UserId
    for_user: UserId | None = None  # only this user may redeem it
    created_at: float
    expires_at: float  # unredeemed after this: refused
    redeemed_by: UserId | None = None
    redeemed_at: float | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
