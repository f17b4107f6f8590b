"""Signing one action with a passkey: WebAuthn request options and assertion checks for a given challenge.

Sign-in and step-up draw their own random challenge (``IdentityService``); an approval's
challenge is derived from the exact action instead (``gateway.sessions.approval_records``),
so this module takes the challenge from the caller. The checks are those of a step-up:
the credential must be a passkey of *this* user (not just any registered one), its user
handle must match, ``ceremony.verify_assertion`` checks rp id, origin, challenge, user
verification, signature and the sign counter (a regression is audited and refused), and the
new sign count is stored. Attempts count against the per-address sign-in rate limit.
"""

from __future__ import annotations

import json
from typing import Any, cast

from webauthn import generate_authentication_options, options_to_json
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from gateway.auth import ceremony
from gateway.auth.ceremony import CEREMONY_TIMEOUT_MS, CounterRegression
from gateway.auth.service import IdentityService
from gateway.core.audit import AuditType
from gateway.core.errors import BadRequest
from gateway.core.models import PasskeyFactor, User
from gateway.core.ports import FactorStore

AUDIT_ASSERTION_REFUSED = "approval.assertion_refused"


class ActionSigner:
    """Passkey ceremonies over a caller's challenge (the approvals API uses it)."""

    def __init__(self, identity: IdentityService, factors: FactorStore) -> None:
        self._identity = identity
        self._factors = factors

    async def passkeys_of(self, user: User) -> list[PasskeyFactor]:
        return [f for f in await self._factors.factors_of(user.id) if isinstance(f, PasskeyFactor)]

    async def request_options(self, user: User, challenge: bytes) -> dict[str, Any]:
        """``PublicKeyCredentialRequestOptionsJSON`` for ``challenge``, limited to the user's passkeys."""
        passkeys = await self.passkeys_of(user)
        if not passkeys:
            raise BadRequest("approving needs a passkey: add one on your account page", code="no_passkey")
        opts = generate_authentication_options(
            rp_id=self._identity.config.rp.rp_id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[
                PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id)) for f in passkeys
            ],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return cast(dict[str, Any], json.loads(options_to_json(opts)))

    async def verify(
        self, user: User, challenge: bytes, credential: dict[str, Any], *, remote: str | None = None
    ) -> str:
        """Check ``user``'s assertion over ``challenge``; return its credential id. ``BadRequest`` if not."""
        await self._identity.rate_limit(remote or "unknown")
        try:
            return await self._verify(user, challenge, credential, remote)
        except BadRequest as exc:
            await self._identity.audit(
                AUDIT_ASSERTION_REFUSED,
                actor=user.id,
                subject=user.id,
                outcome="fail",
                remote=remote,
                reason=exc.code,
            )
            raise

    async def _verify(
        self, user: User, challenge: bytes, credential: dict[str, Any], remote: str | None
    ) -> str:
        cred_id = ceremony.credential_id_of(credential)
        factor = await self._factors.factor_by_credential(cred_id)
        if not isinstance(factor, PasskeyFactor) or factor.user_id != user.id or user.disabled:
            raise BadRequest("this passkey is not one of yours", code="webauthn_refused")
        handle = ceremony.user_handle_of(credential)
        if handle is not None and handle != user.id:
            raise BadRequest("the passkey's user handle does not match", code="webauthn_refused")
        try:
            new_count = ceremony.verify_assertion(
                self._identity.config.rp, credential, challenge, factor.public_key, factor.sign_count
            )
        except CounterRegression as exc:
            await self._identity.audit(
                AuditType.WEBAUTHN_COUNTER_REGRESSION,
                actor=user.id,
                subject=factor.id,
                outcome="fail",
                remote=remote,
                stored=exc.stored,
                received=exc.received,
            )
            raise BadRequest(
                "passkey refused: its signature counter went backwards (possible clone)",
                code="webauthn_counter",
            ) from exc
        updated = factor.model_copy(update={"sign_count": new_count, "last_used_at": self._identity.now()})
        await self._factors.update_factor(updated)
        return cred_id
