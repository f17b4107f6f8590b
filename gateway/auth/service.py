"""The identity service: enrolment, sign-in, login sessions, step-up and lockout over the store ports.

Tokens handed to a browser or printed in a link (login cookie, enrolment token) are 128-bit
random values; only their SHA-256 is stored, so a copy of the store grants nothing.
Every security-relevant outcome is an audit event; no secret (code, password, token, assertion)
is ever put into one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.auth import ceremony, passwords, totp
from gateway.auth.ceremony import CounterRegression, RelyingParty
from gateway.auth.freshness import require_fresh
from gateway.auth.lockout import LockoutPolicy
from gateway.core.audit import AuditType
from gateway.core.clock import Clock
from gateway.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from gateway.core.ids import ChallengeId, FactorId, LoginSessionId, UserId, new_id
from gateway.core.models import (
    AuditEvent,
    Factor,
    FactorKind,
    LoginSession,
    PasskeyFactor,
    Role,
    TotpFactor,
    User,
)
from gateway.core.ports import Store

TOKEN_BYTES = 16  # 128-bit tokens
ENROL_SESSION_TTL_S = 30 * 60  # an enrolment login session lives 30 minutes at most
TOUCH_INTERVAL_S = 15  # write last_seen back at most this often
TOTP_REPLAY_TTL_S = 10 * 60  # longer than the ±1 step window: a used step stays refused
LOCK_RECORD_TTL_S = 24 * 3600  # lock level and lock-until are remembered for a day
SIGNIN_RATE_PER_MIN = 30  # sign-in and step-up attempts per remote address per minute
NAME_MAX = 64
GENERIC_SIGNIN_FAILURE = "sign-in failed: wrong user name, password or code"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or not all(c.isalnum() or c in "._-@" for c in name):
        raise BadRequest(f"a user name is 1-{NAME_MAX} letters, digits or . _ - @")
    return name


def _factor_name(name: str | None, default: str) -> str:
    name = (name or "").strip() or default
    if len(name) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise BadRequest(f"a factor name is 1-{NAME_MAX} printable characters")
    return name


@dataclass(frozen=True, slots=True)
class AuthConfig:
    rp: RelyingParty
    public_url: str
    login_idle_timeout_s: int = 15 * 60
    login_absolute_timeout_s: int = 12 * 3600
    enrol_link_ttl_s: int = 24 * 3600
    challenge_ttl_s: int = 5 * 60
    stepup_max_age_s: int = 5 * 60
    totp_issuer: str = "rcgate"
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A request's identity: the user and the login session it came with."""

    user: User
    login: LoginSession


@dataclass(frozen=True, slots=True)
class NewLogin:
    token: str  # goes into the cookie once; never stored
    login: LoginSession
    user: User


@dataclass(frozen=True, slots=True)
class TotpSetup:
    challenge_id: str
    secret: str
    otpauth_uri: str


class IdentityService:
    """Every identity operation of the gateway; the HTTP and SSH adapters call only this."""

    def __init__(self, store: Store, clock: Clock, config: AuthConfig) -> None:
        self._store = store
        self._clock = clock
        self.config = config

    def now(self) -> float:
        return self._clock.now()

    # ---- audit -------------------------------------------------------------------------------

    async def audit(
        self,
        type_: AuditType | str,
        *,
        actor: str | None = None,
        subject: str | None = None,
        outcome: str = "info",
        remote: str | None = None,
        **detail: str | int | float | bool | None,
    ) -> None:
        await self._store.append(
            AuditEvent.model_validate(
                {
                    "ts": self._clock.now(),
                    "type": str(type_),
                    "actor": actor,
                    "subject": subject,
                    "outcome": outcome,
                    "detail": detail,
                    "remote": remote,
                }
            )
        )

    async def audit_events(self, *, after_seq: int = 0, limit: int = 100) -> Sequence[AuditEvent]:
        return await self._store.events(after_seq=after_seq, limit=limit)

    # ---- users -------------------------------------------------------------------------------

    async def add_user(
        self, name: str, role: Role = Role.MEMBER, groups: Sequence[str] = (), *, actor: str = "system"
    ) -> tuple[User, str]:
        """Create a user and return it with a one-time enrolment URL."""
        name = _valid_name(name)
        groups = tuple(sorted({_valid_name(g) for g in groups}))
        user = User(
            id=UserId(new_id("usr")), name=name, role=role, groups=groups, created_at=self._clock.now()
        )
        await self._store.add_user(user)
        await self.audit(
            AuditType.USER_ADDED, actor=actor, subject=user.id, outcome="ok", name=name, role=role
        )
        return user, await self.issue_enrol_link(user, actor=actor)

    async def list_users(self) -> Sequence[User]:
        return await self._store.list_users()

    async def user_by_name(self, name: str) -> User:
        user = await self._store.user_by_name(name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def get_user(self, user_id: UserId) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def disable_user(self, user_id: UserId, *, actor: str = "system") -> User:
        user = await self.get_user(user_id)
        user = user.model_copy(update={"disabled": True})
        await self._store.update_user(user)
        ended = await self._end_all_logins(user.id)
        await self.audit(
            AuditType.USER_DISABLED, actor=actor, subject=user.id, outcome="ok", logins_ended=ended
        )
        return user

    async def reset_factors(self, user_id: UserId, *, actor: str = "system") -> tuple[User, str]:
        """Remove every factor and the password, end every login, and issue a new enrolment link."""
        user = await self.get_user(user_id)
        removed = await self._store.remove_factors_of(user.id)
        user = user.model_copy(update={"password_hash": None})
        await self._store.update_user(user)
        await self._store.reset(f"lock:signin:{user.name.lower()}")
        ended = await self._end_all_logins(user.id)
        await self.audit(
            AuditType.USER_FACTORS_RESET,
            actor=actor,
            subject=user.id,
            outcome="ok",
            removed=removed,
            ended=ended,
        )
        return user, await self.issue_enrol_link(user, actor=actor)

    async def issue_enrol_link(self, user: User, *, actor: str = "system") -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        payload = json.dumps({"user_id": user.id}).encode()
        await self._store.put_challenge(
            ChallengeId("enrol:" + hash_token(token)), payload, self.config.enrol_link_ttl_s
        )
        await self.audit(
            AuditType.ENROL_LINK_ISSUED, actor=actor, subject=user.id, ttl_s=self.config.enrol_link_ttl_s
        )
        return f"{self.config.public_url}/enrol#token={token}"

    # ---- login sessions ----------------------------------------------------------------------

    async def _new_login(
        self, user: User, factor: FactorKind | None, *, user_agent: str, remote: str, enrolling: bool = False
    ) -> NewLogin:
        now = self._clock.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        absolute = ENROL_SESSION_TTL_S if enrolling else self.config.login_absolute_timeout_s
        login = LoginSession(
            id=LoginSessionId(hash_token(token)),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            idle_timeout_s=self.config.login_idle_timeout_s,
            absolute_expiry_at=now + absolute,
            last_factor=factor,
            last_factor_at=now if factor else None,
            enrolling=enrolling,
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
            user_agent=user_agent[:200],
            remote=remote[:64],
        )
        await self._put_login(login)
        return NewLogin(token=token, login=login, user=user)

    async def _put_login(self, login: LoginSession) -> None:
        ttl = login.expires_at() - self._clock.now()
        if ttl > 0:
            await self._store.put_login(login, ttl)

    async def authenticate(self, token: str | None) -> Authenticated:
        """Resolve a cookie token to a live login session and an enabled user."""
        if not token or len(token) > 256:
            raise Unauthenticated("sign in first")
        login = await self._store.get_login(LoginSessionId(hash_token(token)))
        now = self._clock.now()
        if login is None or login.expires_at() <= now:
            raise Unauthenticated("your sign-in has expired; sign in again")
        user = await self._store.get_user(login.user_id)
        if user is None or user.disabled:
            await self._store.delete_login(login.id)
            raise Unauthenticated("this account cannot sign in")
        if now - login.last_seen_at >= TOUCH_INTERVAL_S:
            login = login.model_copy(update={"last_seen_at": now})
            await self._put_login(login)
        return Authenticated(user=user, login=login)

    async def logins_of(self, user_id: UserId) -> Sequence[LoginSession]:
        now = self._clock.now()
        return sorted(
            (x for x in await self._store.logins_of(user_id) if x.expires_at() > now),
            key=lambda x: x.created_at,
        )

    async def end_login(self, who: Authenticated, login_id: str, *, remote: str | None = None) -> None:
        target = await self._store.get_login(LoginSessionId(login_id))
        if target is None or target.user_id != who.user.id:
            raise NotFound("no such login session")
        await self._store.delete_login(target.id)
        await self.audit(
            AuditType.LOGIN_ENDED, actor=who.user.id, subject=who.user.id, outcome="ok", remote=remote
        )

    async def sign_out(self, who: Authenticated, *, remote: str | None = None) -> None:
        await self._store.delete_login(who.login.id)
        await self.audit(
            AuditType.SIGNOUT, actor=who.user.id, subject=who.user.id, outcome="ok", remote=remote
        )

    async def _end_all_logins(self, user_id: UserId) -> int:
        logins = await self._store.logins_of(user_id)
        for login in logins:
            await self._store.delete_login(login.id)
        return len(logins)

    # ---- challenges --------------------------------------------------------------------------

    async def _put_ceremony(self, purpose: str, **data: Any) -> str:
        cid = secrets.token_urlsafe(TOKEN_BYTES)
        await self._store.put_challenge(
            ChallengeId(f"{purpose}:{cid}"), json.dumps(data).encode(), self.config.challenge_ttl_s
        )
        return cid

    async def _take_ceremony(self, purpose: str, challenge_id: str) -> dict[str, Any]:
        if not challenge_id or len(challenge_id) > 128:
            raise BadRequest("missing challenge id", code="challenge_invalid")
        raw = await self._store.take_challenge(ChallengeId(f"{purpose}:{challenge_id}"))
        if raw is None:
            raise BadRequest(
                "this challenge was already used or has expired; start again", code="challenge_invalid"
            )
        data: dict[str, Any] = json.loads(raw)
        return data

    # ---- enrolment ---------------------------------------------------------------------------

    async def start_enrolment(self, token: str, *, user_agent: str = "", remote: str = "") -> NewLogin:
        """Redeem a one-time enrolment link: single use, expires, bound to its user."""
        if not token or len(token) > 256:
            raise BadRequest("this enrolment link is malformed", code="enrol_link_invalid")
        raw = await self._store.take_challenge(ChallengeId("enrol:" + hash_token(token)))
        if raw is None:
            await self.audit(
                AuditType.ENROL_REFUSED, outcome="fail", remote=remote, reason="unknown, used or expired"
            )
            raise BadRequest(
                "this enrolment link is not valid: it was already used, has expired, or was mistyped; "
                "ask an admin for a new one",
                code="enrol_link_invalid",
            )
        user = await self._store.get_user(UserId(json.loads(raw)["user_id"]))
        if user is None or user.disabled:
            await self.audit(AuditType.ENROL_REFUSED, outcome="fail", remote=remote, reason="user disabled")
            raise BadRequest("this account is disabled", code="enrol_link_invalid")
        new = await self._new_login(user, None, user_agent=user_agent, remote=remote, enrolling=True)
        await self.audit(AuditType.ENROL_STARTED, actor=user.id, subject=user.id, outcome="ok", remote=remote)
        return new

    async def _require_may_change_factors(self, who: Authenticated) -> None:
        """Enrolment sessions may add factors; everyone else needs a fresh factor."""
        if who.login.enrolling:
            return
        await self.require_fresh(who)

    async def require_fresh(
        self,
        who: Authenticated,
        factors: Sequence[FactorKind] = (FactorKind.PASSKEY, FactorKind.TOTP),
        max_age_s: int | None = None,
    ) -> None:
        """Raise ``ReauthRequired`` unless one of ``factors`` was presented within ``max_age_s``."""
        available = {f.kind for f in await self._store.factors_of(who.user.id)}
        require_fresh(
            who.login,
            factors,
            max_age_s if max_age_s is not None else self.config.stepup_max_age_s,
            self._clock.now(),
            available,
        )

    async def _factor_added(self, who: Authenticated, factor: Factor, remote: str | None) -> Authenticated:
        await self.audit(
            AuditType.FACTOR_ADDED,
            actor=who.user.id,
            subject=factor.id,
            outcome="ok",
            kind=factor.kind,
            remote=remote,
        )
        # Adding a factor proves possession of it: the session counts it as presented now.
        login = who.login.model_copy(
            update={"enrolling": False, "last_factor": factor.kind, "last_factor_at": self._clock.now()}
        )
        if who.login.enrolling:
            now = self._clock.now()
            login = login.model_copy(
                update={"absolute_expiry_at": now + self.config.login_absolute_timeout_s}
            )
        await self._put_login(login)
        return Authenticated(user=who.user, login=login)

    async def passkey_registration_options(self, who: Authenticated) -> tuple[str, dict[str, Any]]:
        await self._require_may_change_factors(who)
        existing = [
            f.credential_id for f in await self._store.factors_of(who.user.id) if isinstance(f, PasskeyFactor)
        ]
        options, challenge = ceremony.registration_options(
            self.config.rp, who.user.id, who.user.name, existing
        )
        cid = await self._put_ceremony(
            "reg", user_id=who.user.id, login_id=who.login.id, challenge=base64.b64encode(challenge).decode()
        )
        return cid, options

    async def add_passkey(
        self,
        who: Authenticated,
        challenge_id: str,
        credential: dict[str, Any],
        name: str | None,
        *,
        remote: str | None = None,
    ) -> tuple[PasskeyFactor, Authenticated]:
        await self._require_may_change_factors(who)
        data = await self._take_ceremony("reg", challenge_id)
        if data["login_id"] != who.login.id:
            raise BadRequest("this challenge belongs to another sign-in", code="challenge_invalid")
        new = ceremony.verify_registration(self.config.rp, credential, base64.b64decode(data["challenge"]))
        factor = PasskeyFactor(
            id=FactorId(new_id("fac")),
            user_id=who.user.id,
            name=_factor_name(name, "Passkey"),
            created_at=self._clock.now(),
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            transports=new.transports,
        )
        await self._store.add_factor(factor)
        return factor, await self._factor_added(who, factor, remote)

    async def totp_setup(self, who: Authenticated) -> TotpSetup:
        await self._require_may_change_factors(who)
        secret = totp.secret_from_bytes(secrets.token_bytes(totp.SECRET_BYTES))
        cid = await self._put_ceremony("totp", user_id=who.user.id, login_id=who.login.id, secret=secret)
        uri = totp.provisioning_uri(secret, who.user.name, self.config.totp_issuer)
        return TotpSetup(challenge_id=cid, secret=secret, otpauth_uri=uri)

    async def add_totp(
        self, who: Authenticated, challenge_id: str, code: str, name: str | None, *, remote: str | None = None
    ) -> tuple[TotpFactor, Authenticated]:
        """Confirm a TOTP secret with one valid code; the code is consumed (replay guard)."""
        await self._require_may_change_factors(who)
        try:
            code = totp.check_format(code)
        except totp.TotpFormatError as exc:
            raise BadRequest(str(exc), code="totp_format") from exc
        data = await self._take_ceremony("totp", challenge_id)
        if data["login_id"] != who.login.id:
            raise BadRequest("this challenge belongs to another sign-in", code="challenge_invalid")
        now = self._clock.now()
        step = totp.matching_step(data["secret"], code, now, None)
        if step is None:
            raise BadRequest(
                "that code does not match; check the clock of your device and set up again",
                code="totp_mismatch",
            )
        factor = TotpFactor(
            id=FactorId(new_id("fac")),
            user_id=who.user.id,
            name=_factor_name(name, "Authenticator app"),
            created_at=now,
            secret=data["secret"],
            confirmed=True,
        )
        await self._store.add_factor(factor)
        await self._store.raise_floor(f"totp-step:{factor.id}", step, TOTP_REPLAY_TTL_S)
        return factor, await self._factor_added(who, factor, remote)

    async def set_password(self, who: Authenticated, password: str, *, remote: str | None = None) -> None:
        await self._require_may_change_factors(who)
        try:
            hashed = passwords.hash_password(password)
        except passwords.PasswordPolicyError as exc:
            raise BadRequest(str(exc), code="password_policy") from exc
        user = who.user.model_copy(update={"password_hash": hashed})
        await self._store.update_user(user)
        await self.audit(AuditType.PASSWORD_SET, actor=user.id, subject=user.id, outcome="ok", remote=remote)

    async def factors_of(self, user_id: UserId) -> Sequence[Factor]:
        return await self._store.factors_of(user_id)

    async def rename_factor(self, who: Authenticated, factor_id: str, name: str) -> Factor:
        factor = await self._own_factor(who, factor_id)
        renamed: Factor = factor.model_copy(update={"name": _factor_name(name, factor.name)})
        await self._store.update_factor(renamed)
        await self.audit(AuditType.FACTOR_RENAMED, actor=who.user.id, subject=factor.id, outcome="ok")
        return renamed

    async def remove_factor(self, who: Authenticated, factor_id: str, *, remote: str | None = None) -> None:
        await self.require_fresh(who)
        factor = await self._own_factor(who, factor_id)
        if len(await self._store.factors_of(who.user.id)) <= 1:
            raise Conflict("this is your last factor: add another one before removing it")
        await self._store.remove_factor(factor.id)
        await self.audit(
            AuditType.FACTOR_REMOVED,
            actor=who.user.id,
            subject=factor.id,
            outcome="ok",
            kind=factor.kind,
            remote=remote,
        )

    async def _own_factor(self, who: Authenticated, factor_id: str) -> Factor:
        factor = await self._store.get_factor(FactorId(factor_id))
        if factor is None or factor.user_id != who.user.id:
            raise NotFound("no such factor")
        return factor

    # ---- rate limit and lockout --------------------------------------------------------------

    async def rate_limit(self, remote: str) -> None:
        """Refuse more than SIGNIN_RATE_PER_MIN attempts per address per minute (every node counts)."""
        window = int(self._clock.now() // 60)
        if await self._store.incr(f"rl:signin:{remote}:{window}", 120) > SIGNIN_RATE_PER_MIN:
            raise RateLimited("too many attempts from this address; wait a minute")

    async def _check_lock(self, subject: str, audit_subject: str) -> None:
        until = await self._store.get_count(f"lock:{subject}")
        if until <= 0:
            return
        now = self._clock.now()
        if until > now:
            raise Locked(
                "too many failed attempts: locked for now, try again later",
                retry_after_s=int(until - now) + 1,
            )
        # The lock has run out: record the unlock once, keep the level for the back-off.
        await self._store.reset(f"lock:{subject}")
        await self.audit(AuditType.FACTOR_UNLOCKED, subject=audit_subject, outcome="info")

    async def _record_failure(self, subject: str, audit_subject: str, remote: str | None) -> None:
        policy = self.config.lockout
        fails = await self._store.incr(f"fail:{subject}", policy.window_s)
        if fails < policy.threshold:
            return
        await self._store.reset(f"fail:{subject}")
        level = await self._store.incr(f"locklevel:{subject}", LOCK_RECORD_TTL_S)
        duration = policy.lock_duration_s(level)
        until = int(self._clock.now()) + duration
        await self._store.raise_floor(f"lock:{subject}", until, LOCK_RECORD_TTL_S)
        await self.audit(
            AuditType.FACTOR_LOCKED,
            subject=audit_subject,
            outcome="fail",
            remote=remote,
            failures=fails,
            lock_s=duration,
            level=level,
        )

    async def _verify_totp_for(self, user: User, code: str) -> TotpFactor | None:
        """Check the code against the user's TOTP factors and consume its step (cross-node)."""
        now = self._clock.now()
        for f in await self._store.factors_of(user.id):
            if not isinstance(f, TotpFactor) or not f.confirmed:
                continue
            last = await self._store.get_count(f"totp-step:{f.id}")
            step = totp.matching_step(f.secret, code, now, last if last > 0 else None)
            if step is not None and await self._store.raise_floor(
                f"totp-step:{f.id}", step, TOTP_REPLAY_TTL_S
            ):
                await self._store.update_factor(f.model_copy(update={"last_used_at": now}))
                return f
        return None

    # ---- sign-in -----------------------------------------------------------------------------

    async def check_password_totp(self, name: str, password: str, code: str, *, remote: str = "") -> User:
        """Password + TOTP. Unknown users cost the same and answer the same (no enumeration)."""
        await self.rate_limit(remote)
        subject = "signin:" + name.strip().lower()[:NAME_MAX]
        await self._check_lock(subject, subject)
        user = await self._store.user_by_name(name.strip()) if 0 < len(name.strip()) <= NAME_MAX else None
        password_ok = passwords.verify_password(user.password_hash if user else None, password)
        try:
            totp.check_format(code)
            well_formed = True
        except totp.TotpFormatError:
            well_formed = False
        factor = None
        if user is not None and password_ok and well_formed and not user.disabled:
            factor = await self._verify_totp_for(user, code)
        if factor is None or user is None:
            await self._record_failure(subject, subject, remote)
            await self.audit(
                AuditType.SIGNIN_FAILED,
                actor=name[:NAME_MAX],
                subject=user.id if user else None,
                outcome="fail",
                remote=remote,
                method="totp",
            )
            raise Unauthenticated(GENERIC_SIGNIN_FAILURE, code="signin_failed")
        await self._store.reset(f"fail:{subject}")
        return user

    async def signin_totp(
        self, name: str, password: str, code: str, *, user_agent: str = "", remote: str = ""
    ) -> NewLogin:
        user = await self.check_password_totp(name, password, code, remote=remote)
        new = await self._new_login(user, FactorKind.TOTP, user_agent=user_agent, remote=remote)
        await self.audit(
            AuditType.SIGNIN_OK, actor=user.id, subject=user.id, outcome="ok", remote=remote, method="totp"
        )
        return new

    async def passkey_signin_options(self, *, remote: str = "") -> tuple[str, dict[str, Any]]:
        await self.rate_limit(remote)
        options, challenge = ceremony.authentication_options(self.config.rp, [])
        cid = await self._put_ceremony("auth", challenge=base64.b64encode(challenge).decode())
        return cid, options

    async def _check_assertion(
        self, challenge_b64: str, credential: dict[str, Any], expect_user: UserId | None, remote: str | None
    ) -> tuple[User, PasskeyFactor]:
        cred_id = ceremony.credential_id_of(credential)
        factor = await self._store.factor_by_credential(cred_id)
        if not isinstance(factor, PasskeyFactor):
            raise BadRequest("this passkey is not registered here", code="webauthn_refused")
        user = await self._store.get_user(factor.user_id)
        if user is None or user.disabled or (expect_user is not None and user.id != expect_user):
            raise BadRequest("this passkey cannot be used here", code="webauthn_refused")
        handle = ceremony.user_handle_of(credential)
        if handle is not None and handle != user.id:
            raise BadRequest("the passkey's user handle does not match", code="webauthn_refused")
        try:
            new_count = ceremony.verify_assertion(
                self.config.rp,
                credential,
                base64.b64decode(challenge_b64),
                factor.public_key,
                factor.sign_count,
            )
        except CounterRegression as exc:
            await self.audit(
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
        now = self._clock.now()
        factor = factor.model_copy(update={"sign_count": new_count, "last_used_at": now})
        await self._store.update_factor(factor)
        return user, factor

    async def signin_passkey(
        self, challenge_id: str, credential: dict[str, Any], *, user_agent: str = "", remote: str = ""
    ) -> NewLogin:
        await self.rate_limit(remote)
        data = await self._take_ceremony("auth", challenge_id)
        try:
            user, _ = await self._check_assertion(data["challenge"], credential, None, remote)
        except BadRequest as exc:
            await self.audit(
                AuditType.SIGNIN_FAILED, outcome="fail", remote=remote, method="passkey", reason=exc.code
            )
            raise
        new = await self._new_login(user, FactorKind.PASSKEY, user_agent=user_agent, remote=remote)
        await self.audit(
            AuditType.SIGNIN_OK, actor=user.id, subject=user.id, outcome="ok", remote=remote, method="passkey"
        )
        return new

    # ---- step-up -----------------------------------------------------------------------------

    async def stepup_options(self, who: Authenticated) -> tuple[str, dict[str, Any]]:
        allowed = [
            f.credential_id for f in await self._store.factors_of(who.user.id) if isinstance(f, PasskeyFactor)
        ]
        if not allowed:
            raise BadRequest("you have no passkey; use your authenticator app", code="no_passkey")
        options, challenge = ceremony.authentication_options(self.config.rp, allowed)
        cid = await self._put_ceremony(
            "stepup", login_id=who.login.id, challenge=base64.b64encode(challenge).decode()
        )
        return cid, options

    async def _stepped_up(self, who: Authenticated, kind: FactorKind, remote: str | None) -> Authenticated:
        login = who.login.model_copy(update={"last_factor": kind, "last_factor_at": self._clock.now()})
        await self._put_login(login)
        await self.audit(
            AuditType.STEPUP_OK,
            actor=who.user.id,
            subject=who.user.id,
            outcome="ok",
            remote=remote,
            method=kind,
        )
        return Authenticated(user=who.user, login=login)

    async def stepup_passkey(
        self, who: Authenticated, challenge_id: str, credential: dict[str, Any], *, remote: str = ""
    ) -> Authenticated:
        await self.rate_limit(remote)
        data = await self._take_ceremony("stepup", challenge_id)
        if data["login_id"] != who.login.id:
            raise BadRequest("this challenge belongs to another sign-in", code="challenge_invalid")
        try:
            await self._check_assertion(data["challenge"], credential, who.user.id, remote)
        except BadRequest as exc:
            await self.audit(
                AuditType.STEPUP_FAILED,
                actor=who.user.id,
                subject=who.user.id,
                outcome="fail",
                remote=remote,
                method="passkey",
                reason=exc.code,
            )
            raise
        return await self._stepped_up(who, FactorKind.PASSKEY, remote)

    async def stepup_totp(self, who: Authenticated, code: str, *, remote: str = "") -> Authenticated:
        await self.rate_limit(remote)
        subject = "signin:" + who.user.name.lower()
        await self._check_lock(subject, subject)
        try:
            totp.check_format(code)
            factor = await self._verify_totp_for(who.user, code)
        except totp.TotpFormatError:
            factor = None
        if factor is None:
            await self._record_failure(subject, subject, remote)
            await self.audit(
                AuditType.STEPUP_FAILED,
                actor=who.user.id,
                subject=who.user.id,
                outcome="fail",
                remote=remote,
                method="totp",
            )
            raise Forbidden("that code is not valid (wrong, expired or already used)", code="stepup_failed")
        await self._store.reset(f"fail:{subject}")
        return await self._stepped_up(who, FactorKind.TOTP, remote)
