"""Audit event types: the stable names every security event is filed under."""

from __future__ import annotations

from enum import StrEnum


class AuditType(StrEnum):
    USER_ADDED = "user.added"
    USER_DISABLED = "user.disabled"
    USER_FACTORS_RESET = "user.factors_reset"
    ENROL_LINK_ISSUED = "enrol.link_issued"
    ENROL_STARTED = "enrol.started"
    ENROL_REFUSED = "enrol.refused"
    FACTOR_ADDED = "factor.added"
    FACTOR_REMOVED = "factor.removed"
    FACTOR_RENAMED = "factor.renamed"
    FACTOR_LOCKED = "factor.locked"
    FACTOR_UNLOCKED = "factor.unlocked"
    PASSWORD_SET = "password.set"  # noqa: S105 - an event name, not a secret
    SIGNIN_OK = "signin.ok"
    SIGNIN_FAILED = "signin.failed"
    SIGNOUT = "signout"
    LOGIN_ENDED = "login.ended"
    STEPUP_OK = "stepup.ok"
    STEPUP_FAILED = "stepup.failed"
    WEBAUTHN_COUNTER_REGRESSION = "webauthn.counter_regression"
    CSRF_REFUSED = "http.csrf_refused"
    LINK_CREATED = "link.created"
    LINK_REDEEMED = "link.redeemed"
    LINK_REFUSED = "link.refused"
    LINK_REVOKED = "link.revoked"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_LEFT = "participant.left"
    INPUT_REFUSED = "input.refused"
    CERT_ISSUED = "cert.issued"
    DEVICE_APPROVED = "device.approved"
