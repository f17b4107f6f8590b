"""TOTP at fixed instants: RFC 6238 vectors, the ±1 step window, the replay floor, code format."""

from __future__ import annotations

import base64

import pyotp
import pytest

from gateway.auth import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("t", "code8"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_appendix_b_sha1_vectors_last_six_digits(t: int, code8: str) -> None:
    # RFC 6238 Appendix B lists 8-digit codes; the 6-digit code is the same value mod 10^6.
    assert totp.matching_step(RFC_SECRET, code8[-6:], t, None) == t // 30


def test_neighbour_steps_are_accepted_and_farther_ones_refused() -> None:
    t = 1_767_225_600.0
    gen = pyotp.TOTP(RFC_SECRET)
    assert totp.matching_step(RFC_SECRET, gen.at(t - 30), t, None) == t // 30 - 1
    assert totp.matching_step(RFC_SECRET, gen.at(t + 30), t, None) == t // 30 + 1
    assert totp.matching_step(RFC_SECRET, gen.at(t - 60), t, None) is None
    assert totp.matching_step(RFC_SECRET, gen.at(t + 60), t, None) is None


def test_a_step_at_or_below_the_last_accepted_one_is_refused() -> None:
    t = 1_767_225_600.0
    code = pyotp.TOTP(RFC_SECRET).at(t)
    step = totp.matching_step(RFC_SECRET, code, t, None)
    assert step is not None
    assert totp.matching_step(RFC_SECRET, code, t, step) is None
    earlier = pyotp.TOTP(RFC_SECRET).at(t - 30)
    assert totp.matching_step(RFC_SECRET, earlier, t, step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123456789012"])
def test_malformed_codes_are_refused_before_any_hmac(code: str) -> None:
    with pytest.raises(totp.TotpFormatError):
        totp.matching_step(RFC_SECRET, code, 0, None)


def test_spaces_inside_a_code_are_tolerated() -> None:
    t = 1_767_225_600.0
    code = pyotp.TOTP(RFC_SECRET).at(t)
    assert totp.matching_step(RFC_SECRET, f"{code[:3]} {code[3:]}", t, None) == t // 30


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri(RFC_SECRET, "alice", "rcgate")
    assert uri.startswith("otpauth://totp/rcgate:alice?") and "secret=" in uri
