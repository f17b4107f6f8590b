"""Lockout back-off, step-up freshness and password rules (pure)."""

from __future__ import annotations

import pytest

from gateway.auth import passwords
from gateway.auth.freshness import is_fresh, require_fresh
from gateway.auth.lockout import LockoutPolicy
from gateway.core.errors import ReauthRequired
from gateway.core.ids import LoginSessionId, UserId
from gateway.core.models import FactorKind, LoginSession

BOTH = (FactorKind.PASSKEY, FactorKind.TOTP)


@pytest.mark.parametrize(
    ("level", "seconds"), [(1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (50, 3600)]
)
def test_lockout_doubles_and_caps(level: int, seconds: int) -> None:
    assert LockoutPolicy(base_s=60, max_s=3600).lock_duration_s(level) == seconds


def login(factor: FactorKind | None, at: float | None) -> LoginSession:
    return LoginSession(
        id=LoginSessionId("x"),
        user_id=UserId("u"),
        created_at=0,
        last_seen_at=0,
        idle_timeout_s=900,
        absolute_expiry_at=10_000,
        last_factor=factor,
        last_factor_at=at,
        csrf_token="t",
    )


@pytest.mark.parametrize(
    ("factor", "at", "now", "accepted", "fresh"),
    [
        pytest.param(FactorKind.PASSKEY, 100.0, 400.0, BOTH, True, id="passkey-at-limit"),
        pytest.param(FactorKind.PASSKEY, 100.0, 400.1, BOTH, False, id="passkey-too-old"),
        pytest.param(
            FactorKind.TOTP, 100.0, 150.0, (FactorKind.PASSKEY,), False, id="totp-when-passkey-needed"
        ),
        pytest.param(None, None, 1.0, BOTH, False, id="no-factor-yet"),
        pytest.param(FactorKind.TOTP, 500.0, 100.0, BOTH, False, id="factor-from-the-future"),
    ],
)
def test_freshness_table(
    factor: FactorKind | None, at: float | None, now: float, accepted: tuple[FactorKind, ...], fresh: bool
) -> None:
    assert is_fresh(login(factor, at), accepted, 300, now) is fresh


def test_require_fresh_offers_only_enrolled_factors() -> None:
    with pytest.raises(ReauthRequired) as err:
        require_fresh(login(FactorKind.TOTP, 0.0), BOTH, 300, 1000.0, available={FactorKind.TOTP})
    assert err.value.factors == ("totp",) and err.value.max_age_s == 300


def test_password_rules_and_verification() -> None:
    with pytest.raises(passwords.PasswordPolicyError):
        passwords.hash_password("short")
    h = passwords.hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "correct horse battery")
    assert not passwords.verify_password(h, "wrong horse battery")
    assert not passwords.verify_password(None, "correct horse battery")
