"""Device authorization for `rcgate login` (after RFC 8628): a workstation gets an SSH certificate.

Theory of operation
-------------------
1. The CLI posts its public key and host name; it receives a secret ``device_code`` (kept by the
   CLI) and a short ``user_code`` (shown to the person), both valid 10 minutes.
2. The person opens ``/device``, signs in, passes a step-up, compares the code and host, and
   approves (or denies). Approval signs the key with the gateway CA for that user and host.
3. The CLI polls with its ``device_code`` and takes the certificate once.

Only hashes of ``device_code`` are stored; the ``user_code`` alone cannot fetch a certificate, and
the certificate is handed out once. No long-lived secret exists anywhere: the certificate expires
(12 h by default) and the key never leaves the workstation.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import asyncssh

from gateway.auth.ssh_ca import SshCertificateAuthority
from gateway.core.audit import AuditType
from gateway.core.clock import Clock
from gateway.core.errors import BadRequest, Forbidden, Gone, NotFound
from gateway.core.ids import ChallengeId
from gateway.core.models import AuditEvent, User
from gateway.core.ports import AuditLog, ChallengeStore

DEVICE_FLOW_TTL_S = 10 * 60
POLL_INTERVAL_S = 1
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"  # no vowels (no words), no 0/O/1/I
USER_CODE_CHARS = 8
CERT_VALID_S = 12 * 3600


def _hash(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


def fingerprint(public_key: str) -> str:
    """OpenSSH's SHA256 fingerprint (what `ssh-keygen -lf` and `rcgate login` print)."""
    try:
        return str(asyncssh.import_public_key(public_key).get_fingerprint("sha256"))
    except (asyncssh.KeyImportError, ValueError):
        return "unreadable key"


def normalise_user_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())[: USER_CODE_CHARS + 1]


@dataclass(frozen=True, slots=True)
class DeviceStart:
    device_code: str
    user_code: str  # formatted XXXX-XXXX
    expires_in: int
    interval: int


class DeviceFlow:
    def __init__(
        self,
        store: ChallengeStore,
        audit: AuditLog,
        clock: Clock,
        ca: SshCertificateAuthority,
        cert_valid_s: int = CERT_VALID_S,
    ) -> None:
        self._store = store
        self._audit_log = audit
        self._clock = clock
        self._ca = ca
        self._cert_valid_s = cert_valid_s

    async def _audit(
        self, type_: AuditType, actor: str | None, outcome: str, **detail: str | int | None
    ) -> None:
        await self._audit_log.append(
            AuditEvent.model_validate(
                {
                    "ts": self._clock.now(),
                    "type": str(type_),
                    "actor": actor,
                    "subject": actor,
                    "outcome": outcome,
                    "detail": detail,
                }
            )
        )

    async def start(self, public_key: str, host: str) -> DeviceStart:
        if len(public_key) > 4096 or not public_key.startswith("ssh-"):
            raise BadRequest("public_key must be one OpenSSH public key line")
        if not host or len(host) > 253:
            raise BadRequest("host must be the workstation's host name")
        device_code = secrets.token_urlsafe(32)
        raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_CHARS))
        exp = self._clock.now() + DEVICE_FLOW_TTL_S
        request = {"device": _hash(device_code), "public_key": public_key.strip(), "host": host, "exp": exp}
        await self._store.put_challenge(
            ChallengeId(f"devreq:{raw}"), json.dumps(request).encode(), DEVICE_FLOW_TTL_S
        )
        await self._store.put_challenge(
            ChallengeId(f"devpending:{_hash(device_code)}"), str(exp).encode(), DEVICE_FLOW_TTL_S
        )
        return DeviceStart(device_code, f"{raw[:4]}-{raw[4:]}", DEVICE_FLOW_TTL_S, POLL_INTERVAL_S)

    async def _take_request(self, user_code: str) -> tuple[str, dict[str, Any]]:
        code = normalise_user_code(user_code)
        raw = await self._store.take_challenge(ChallengeId(f"devreq:{code}"))
        req: dict[str, Any] = json.loads(raw) if raw is not None else {}
        if raw is None or req["exp"] <= self._clock.now():
            raise NotFound(
                "no pending login with this code (mistyped or expired)", code="device_code_invalid"
            )
        return code, req

    async def describe(self, user_code: str) -> dict[str, Any]:
        """What the approval page shows (host and key), without consuming the request."""
        code, req = await self._take_request(user_code)
        # Put it back (describing is not deciding); its own "exp" still bounds its life.
        remaining = req["exp"] - self._clock.now()
        await self._store.put_challenge(ChallengeId(f"devreq:{code}"), json.dumps(req).encode(), remaining)
        return {
            "host": req["host"],
            "key": req["public_key"][:80],
            "fingerprint": fingerprint(req["public_key"]),
        }

    async def decide(self, user: User, user_code: str, approve: bool) -> None:
        """Approve (sign the key for ``user``) or deny; the caller has checked a fresh factor."""
        _, req = await self._take_request(user_code)
        if not approve:
            result: dict[str, object] = {"denied": True}
            await self._audit(AuditType.DEVICE_APPROVED, user.id, "fail", host=req["host"], decision="denied")
        else:
            cert = self._ca.issue_user_certificate(
                req["public_key"], user.name, req["host"], now=self._clock.now(), valid_s=self._cert_valid_s
            )
            result = {"certificate": cert, "user": user.name}
            await self._audit(
                AuditType.CERT_ISSUED, user.id, "ok", host=req["host"], valid_s=self._cert_valid_s
            )
        await self._store.put_challenge(
            ChallengeId(f"devcert:{req['device']}"), json.dumps(result).encode(), DEVICE_FLOW_TTL_S
        )

    async def poll(self, device_code: str) -> dict[str, Any] | None:
        """The certificate once approved (handed out once); None while pending."""
        if not device_code or len(device_code) > 128:
            raise BadRequest("device_code is required")
        h = _hash(device_code)
        raw = await self._store.take_challenge(ChallengeId(f"devcert:{h}"))
        if raw is not None:
            await self._store.take_challenge(ChallengeId(f"devpending:{h}"))
            result: dict[str, Any] = json.loads(raw)
            if result.get("denied"):
                raise Forbidden("the login was denied in the browser", code="device_denied")
            return result
        pending = await self._store.take_challenge(ChallengeId(f"devpending:{h}"))
        remaining = float(pending) - self._clock.now() if pending is not None else 0.0
        if remaining <= 0:
            raise Gone(
                "this login request expired or was already used; run `rcgate login` again",
                code="device_expired",
            )
        await self._store.put_challenge(ChallengeId(f"devpending:{h}"), pending or b"", remaining)
        return None
