"""TOTP verification (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits, ±1 step) without a clock.

The caller passes ``now`` and the last accepted step; a code is accepted only for a step above
it, which is what makes a code single-use (RFC 6238 §5.2: "the verifier MUST NOT accept the
second attempt of the same OTP after the successful validation").
"""

from __future__ import annotations

import base64
import hmac

import pyotp

STEP_S = 30
DIGITS = 6
WINDOW_STEPS = 1  # RFC 6238 §5.2: accept one step of clock drift either way
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA-1 block the RFC recommends


class TotpFormatError(ValueError):
    """The code is not six ASCII digits."""


def secret_from_bytes(raw: bytes) -> str:
    """Base32 text of a random secret (the caller supplies the randomness)."""
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def step_at(now: float) -> int:
    return int(now // STEP_S)


def check_format(code: str) -> str:
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        raise TotpFormatError(f"an authentication code is {DIGITS} digits")
    return code


def matching_step(secret: str, code: str, now: float, last_step: int | None) -> int | None:
    """The step whose code equals ``code`` within the window and above ``last_step``, or None.

    Every candidate is compared in constant time and all candidates are always computed, so the
    timing does not tell which step matched.
    """
    code = check_format(code)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = step_at(now)
    found: int | None = None
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode(), code.encode()) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=issuer
    )
