"""WebAuthn ceremonies (Level 3) through py_webauthn, with its exceptions mapped to ours.

Options are returned as JSON-ready dicts; the challenge bytes go to the caller, who stores them
single-use. Verification never trusts the client: rp id, origin, challenge, user verification and
the signature are checked by py_webauthn; the sign counter is checked here after the signature,
so only a validly signed assertion can report a regression (a cloned authenticator, §6.1.1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway.core.errors import BadRequest

CEREMONY_TIMEOUT_MS = 120_000


class CounterRegression(Exception):
    """A validly signed assertion whose sign count did not increase."""

    def __init__(self, stored: int, received: int) -> None:
        super().__init__(f"sign count {received} is not above the stored {stored}")
        self.stored = stored
        self.received = received


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    rp_name: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewCredential:
    credential_id: str  # base64url
    public_key: str  # base64url
    sign_count: int
    transports: tuple[str, ...]


def _descriptor(cred_id: str) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(cred_id))


def registration_options(
    rp: RelyingParty, user_id: str, user_name: str, existing: Sequence[str]
) -> tuple[dict[str, Any], bytes]:
    opts = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.rp_name,
        user_id=user_id.encode(),
        user_name=user_name,
        user_display_name=user_name,
        timeout=CEREMONY_TIMEOUT_MS,
        exclude_credentials=[_descriptor(c) for c in existing],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    return cast(dict[str, Any], json.loads(options_to_json(opts))), opts.challenge


def authentication_options(rp: RelyingParty, allowed: Sequence[str]) -> tuple[dict[str, Any], bytes]:
    """Empty ``allowed`` asks for a discoverable credential (sign-in without a user name)."""
    opts = generate_authentication_options(
        rp_id=rp.rp_id,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=[_descriptor(c) for c in allowed],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return cast(dict[str, Any], json.loads(options_to_json(opts))), opts.challenge


def verify_registration(rp: RelyingParty, credential: dict[str, Any], challenge: bytes) -> NewCredential:
    try:
        v = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"passkey registration refused: {exc}", code="webauthn_refused") from exc
    transports: tuple[str, ...] = ()
    raw = credential.get("response", {}).get("transports") if isinstance(credential, dict) else None
    if isinstance(raw, list):
        known = {t.value for t in AuthenticatorTransport}
        transports = tuple(t for t in raw if isinstance(t, str) and t in known)
    return NewCredential(
        credential_id=bytes_to_base64url(v.credential_id),
        public_key=bytes_to_base64url(v.credential_public_key),
        sign_count=v.sign_count,
        transports=transports,
    )


def credential_id_of(credential: dict[str, Any]) -> str:
    cid = credential.get("id") if isinstance(credential, dict) else None
    if not isinstance(cid, str) or not cid or len(cid) > 1024:
        raise BadRequest("passkey assertion refused: missing credential id", code="webauthn_refused")
    return cid


def user_handle_of(credential: dict[str, Any]) -> str | None:
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if not isinstance(handle, str) or not handle:
        return None
    try:
        return base64url_to_bytes(handle).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def verify_assertion(
    rp: RelyingParty, credential: dict[str, Any], challenge: bytes, public_key: str, stored_count: int
) -> int:
    """Verify an assertion; return the new sign count. Raises BadRequest or CounterRegression."""
    try:
        v = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=0,  # compared below, after the signature is verified
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"passkey assertion refused: {exc}", code="webauthn_refused") from exc
    new = int(v.new_sign_count)
    # WebAuthn L3 §7.2 step 21: a non-increasing non-zero counter signals a cloned authenticator.
    if (new > 0 or stored_count > 0) and new <= stored_count:
        raise CounterRegression(stored_count, new)
    return new
