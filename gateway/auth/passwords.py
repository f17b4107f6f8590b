"""Password hashing with argon2id (RFC 9106 second recommended option), and a decoy for unknown users."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; refuse absurd bodies before hashing them

# RFC 9106 §4 second option: t=3, 64 MiB memory, p=4.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
# Verified against when the user does not exist, so both paths cost the same (no enumeration).
_DECOY_HASH = _HASHER.hash("decoy password that nobody has")


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return str(_HASHER.hash(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when it matches; always spends one argon2 verification, even without a hash."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        return bool(_HASHER.verify(stored_hash or _DECOY_HASH, password)) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
