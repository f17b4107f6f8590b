"""The one error tree of the gateway: stable codes, a public message, an HTTP status hint.

    GatewayError
    ├── BadRequest            400  malformed input, validation failures
    │   └── PayloadTooLarge   413
    ├── Unauthenticated       401  no or expired login session
    ├── ReauthRequired        401  a fresh factor is needed (step-up); carries factors and max age
    ├── Forbidden             403  authenticated but not allowed; CSRF and Origin failures
    ├── NotFound              404
    ├── Conflict              409  single-use item already consumed, duplicate names
    ├── Gone                  410  expired or revoked links
    ├── Locked                423  a factor is locked out after failures
    ├── RateLimited           429
    └── Unavailable           503  a backing service (store) failed: fail closed

Foreign exceptions (redis, py_webauthn, sqlite3, asyncssh) are mapped into this tree by the
adapter that calls the library; nothing else crosses a room boundary.
"""

from __future__ import annotations

from collections.abc import Sequence


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code: str = "error"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class BadRequest(GatewayError):
    code = "bad_request"
    status = 400


class PayloadTooLarge(BadRequest):
    code = "payload_too_large"
    status = 413


class Unauthenticated(GatewayError):
    code = "unauthenticated"
    status = 401


class ReauthRequired(GatewayError):
    """The action needs a factor presented more recently than ``max_age_s``."""

    code = "reauth_required"
    status = 401

    def __init__(self, message: str, *, factors: Sequence[str], max_age_s: int) -> None:
        super().__init__(message)
        self.factors = tuple(factors)
        self.max_age_s = max_age_s

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "factors": list(self.factors), "max_age_s": self.max_age_s}


class Forbidden(GatewayError):
    code = "forbidden"
    status = 403


class NotFound(GatewayError):
    code = "not_found"
    status = 404


class Conflict(GatewayError):
    code = "conflict"
    status = 409


class Gone(GatewayError):
    code = "gone"
    status = 410


class Locked(GatewayError):
    code = "locked"
    status = 423

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "retry_after_s": self.retry_after_s}


class RateLimited(GatewayError):
    code = "rate_limited"
    status = 429


class Unavailable(GatewayError):
    code = "unavailable"
    status = 503
