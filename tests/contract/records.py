"""Sample records for the store tests: one builder per record type, fixed instants, no randomness."""

from __future__ import annotations

from gateway.core.ids import FactorId, LinkId, LoginSessionId, SessionId, UserId
from gateway.core.models import AuditEvent, FactorKind, Link, LoginSession, PasskeyFactor, TotpFactor, User
from gateway.core.modes import Mode

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, as the FixedClock of tests/conftest.py starts


def a_user(name: str = "ada", user_id: str | None = None, **changes: object) -> User:
    return User.model_validate(
        {"id": user_id or f"usr_{name}", "name": name, "created_at": T0, "groups": ("ops",), **changes}
    )


def a_passkey(user: User, credential_id: str = "cred-1", factor_id: str = "fac_pk1") -> PasskeyFactor:
    return PasskeyFactor(
        id=FactorId(factor_id),
        user_id=user.id,
        name="laptop",
        created_at=T0,
        credential_id=credential_id,
        public_key="pQECAyYgASFYIA",
        sign_count=3,
        transports=("internal", "hybrid"),
    )


def a_totp(user: User, factor_id: str = "fac_totp1") -> TotpFactor:
    return TotpFactor(
        id=FactorId(factor_id), user_id=user.id, name="phone", created_at=T0 + 1, secret="JBSWY3DPEHPK3PXP"
    )


def a_login(user: User, login_id: str = "lgn_1", created_at: float = T0) -> LoginSession:
    return LoginSession(
        id=LoginSessionId(login_id),
        user_id=user.id,
        created_at=created_at,
        last_seen_at=created_at,
        idle_timeout_s=900,
        absolute_expiry_at=created_at + 43_200,
        last_factor=FactorKind.PASSKEY,
        last_factor_at=created_at,
        csrf_token="csrf",
        user_agent="pytest",
        remote="127.0.0.1",
    )


def an_event(type_: str, subject: str | None = None, **detail: str | int | float | bool | None) -> AuditEvent:
    return AuditEvent(ts=T0, type=type_, actor="system", subject=subject, outcome="ok", detail=detail)


def a_link(
    link_id: str = "lnk_1", session_id: str = "ses_1", *, for_user: str | None = None, ttl_s: float = 600
) -> Link:
    return Link(
        id=LinkId(link_id),
        session_id=SessionId(session_id),
        mode=Mode.VIEW_ONLY,
        created_by=UserId("usr_owner"),
        for_user=UserId(for_user) if for_user else None,
        created_at=T0,
        expires_at=T0 + ttl_s,
    )
