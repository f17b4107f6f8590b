"""The Redis store: users, factors and audit durable; logins, links, challenges, counters with a TTL.

Theory of operation
-------------------
Every key comes from ``gateway.store.keys``. Records are pydantic JSON strings. Writes that must
see and change several keys at once are Lua scripts (atomic on the server): adding a user claims
its name with ``SET NX``, adding a passkey claims its credential id the same way, and a rename
is a compare-and-set against the record read just before. ``take_challenge`` is ``GETDEL``;
``incr`` creates the counter with its TTL and increments in one script; ``raise_floor`` compares
and sets in one script. The audit log is a stream whose entry ids are ``<seq>-0``, ``seq`` coming
from ``INCR`` in the same script as the ``XADD``, so ``events(after_seq=…)`` is an ``XRANGE``.

Login sessions and links: a per-user (per-session) index set is written before the record and
its TTL only ever grows to cover the longest member; listing drops members whose record expired.
Claiming and revoking a link are compare-and-set loops around the pure rules of ``link_rules``.

Expiry runs on the Redis server's clock in real seconds, not on the injected ``Clock``.

Every redis-py exception (and OS error) is mapped to ``Unavailable`` by ``map_redis_errors``:
callers fail closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import redis.asyncio
import redis.exceptions
from pydantic import TypeAdapter, ValidationError

from gateway.core.clock import Clock
from gateway.core.errors import Conflict, NotFound, Unavailable
from gateway.core.ids import ChallengeId, FactorId, LinkId, LoginSessionId, SessionId, UserId
from gateway.core.models import AuditEvent, Factor, Link, LoginSession, PasskeyFactor, User
from gateway.store import keys, link_rules, scripts
from gateway.store.limits import check_floor, check_same_factor, check_ttl

SOCKET_TIMEOUT_S = 5.0  # one command's round trip, beyond which the store is Unavailable
CONNECT_TIMEOUT_S = 2.0
AUDIT_SCAN_BATCH = 256  # stream entries read per XRANGE while filtering events
UPDATE_RETRIES = 8  # compare-and-set attempts before a contended rename gives up

_R = TypeVar("_R")
_FACTOR: TypeAdapter[Factor] = TypeAdapter(Factor)

# Every exception class redis-py defines (most derive from RedisError, a few cluster, pipeline and
# fork guards only from Exception), and socket errors.
REDIS_ERRORS: tuple[type[Exception], ...] = (
    *(cls for cls in vars(redis.exceptions).values() if isinstance(cls, type) and issubclass(cls, Exception)),
    OSError,
)


@contextmanager
def map_redis_errors() -> Iterator[None]:
    """Turn every redis-py, socket and record-parsing failure into ``Unavailable``."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise Unavailable(f"store: redis failed: {type(exc).__name__}") from exc
    except ValidationError as exc:
        raise Unavailable("store: a stored record does not parse") from exc


def _ttl_ms(ttl_s: float) -> int:
    check_ttl(ttl_s)
    return max(1, math.ceil(ttl_s * 1000))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _credential_key(prefix: str, factor: Factor) -> list[str]:
    if isinstance(factor, PasskeyFactor):
        return [keys.factor_by_credential(prefix, factor.credential_id)]
    return []


class RedisStore:
    """The ``Store`` port over one Redis (or a primary with replicas); ``from_url`` builds the client.

    ``clock`` is accepted so both backends are built alike; expiry uses the server's clock.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str, clock: Clock) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False (payloads are bytes)")
        self._client = client
        self._p = keys.check_prefix(prefix)
        self._clock = clock
        self._add_user = client.register_script(scripts.ADD_USER)
        self._update_user = client.register_script(scripts.UPDATE_USER)
        self._add_factor = client.register_script(scripts.ADD_FACTOR)
        self._remove_factor = client.register_script(scripts.REMOVE_FACTOR)
        self._incr = client.register_script(scripts.INCR)
        self._raise_floor = client.register_script(scripts.RAISE_FLOOR)
        self._append = client.register_script(scripts.APPEND)
        self._compare_and_set = client.register_script(scripts.COMPARE_AND_SET)

    @classmethod
    def from_url(cls, url: str, prefix: str, clock: Clock) -> RedisStore:
        """A store on a new client for ``url`` (no I/O until the first call)."""
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
        )
        return cls(client, prefix, clock)

    async def close(self) -> None:
        with map_redis_errors():
            await self._client.aclose()

    # -- users ---------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        user_keys = [keys.user(self._p, user.id), keys.user_by_name(self._p, user.name), keys.users(self._p)]
        with map_redis_errors():
            added = await self._add_user(keys=user_keys, args=[user.id, user.model_dump_json()])
        if not added:
            raise Conflict(f"user {user.name!r} or its id already exists")

    async def get_user(self, user_id: UserId) -> User | None:
        with map_redis_errors():
            raw = await self._client.get(keys.user(self._p, user_id))
            return None if raw is None else User.model_validate_json(raw)

    async def user_by_name(self, name: str) -> User | None:
        with map_redis_errors():
            user_id = await self._client.get(keys.user_by_name(self._p, name))
        if user_id is None:
            return None
        user = await self.get_user(UserId(_text(user_id)))
        return user if user is not None and user.name == name else None

    async def list_users(self) -> Sequence[User]:
        with map_redis_errors():
            ids = await self._client.smembers(keys.users(self._p))
            raws = await self._client.mget([keys.user(self._p, UserId(_text(i))) for i in ids]) if ids else []
            users = [User.model_validate_json(raw) for raw in raws if raw is not None]
        return sorted(users, key=lambda u: u.name)

    async def update_user(self, user: User) -> None:
        user_key = keys.user(self._p, user.id)
        for _ in range(UPDATE_RETRIES):
            with map_redis_errors():
                current = await self._client.get(user_key)
                if current is None:
                    raise NotFound(f"no user {user.id}")
                old_name = User.model_validate_json(current).name
                name_keys = [keys.user_by_name(self._p, old_name), keys.user_by_name(self._p, user.name)]
                outcome = _text(
                    await self._update_user(
                        keys=[user_key, *name_keys], args=[user.id, current, user.model_dump_json()]
                    )
                )
            if outcome == "ok":
                return
            if outcome == "missing":
                raise NotFound(f"no user {user.id}")
            if outcome == "conflict":
                raise Conflict(f"user name {user.name!r} is taken")
        raise Unavailable(f"store: user {user.id} kept changing during the update")

    # -- factors -------------------------------------------------------------------------------

    async def add_factor(self, factor: Factor) -> None:
        factor_keys = [
            keys.factor(self._p, factor.id),
            keys.factors_of_user(self._p, factor.user_id),
            *_credential_key(self._p, factor),
        ]
        with map_redis_errors():
            added = await self._add_factor(keys=factor_keys, args=[factor.id, factor.model_dump_json()])
        if not added:
            raise Conflict("the factor or its credential is already registered")

    async def get_factor(self, factor_id: FactorId) -> Factor | None:
        with map_redis_errors():
            raw = await self._client.get(keys.factor(self._p, factor_id))
            return None if raw is None else _FACTOR.validate_json(raw)

    async def factor_by_credential(self, credential_id: str) -> Factor | None:
        with map_redis_errors():
            factor_id = await self._client.get(keys.factor_by_credential(self._p, credential_id))
        if factor_id is None:
            return None
        factor = await self.get_factor(FactorId(_text(factor_id)))
        if isinstance(factor, PasskeyFactor) and factor.credential_id == credential_id:
            return factor
        return None

    async def factors_of(self, user_id: UserId) -> Sequence[Factor]:
        with map_redis_errors():
            ids = await self._client.smembers(keys.factors_of_user(self._p, user_id))
            raws = (
                await self._client.mget([keys.factor(self._p, FactorId(_text(i))) for i in ids])
                if ids
                else []
            )
            factors = [_FACTOR.validate_json(raw) for raw in raws if raw is not None]
        return sorted((f for f in factors if f.user_id == user_id), key=lambda f: (f.created_at, f.id))

    async def update_factor(self, factor: Factor) -> None:
        stored = await self.get_factor(factor.id)
        if stored is None:
            raise NotFound(f"no factor {factor.id}")
        check_same_factor(stored, factor)
        with map_redis_errors():
            updated = await self._client.set(
                keys.factor(self._p, factor.id), factor.model_dump_json(), xx=True
            )
        if not updated:
            raise NotFound(f"no factor {factor.id}")

    async def remove_factor(self, factor_id: FactorId) -> None:
        await self._remove(factor_id)

    async def remove_factors_of(self, user_id: UserId) -> int:
        with map_redis_errors():
            ids = await self._client.smembers(keys.factors_of_user(self._p, user_id))
        removed = 0
        for raw_id in ids:
            removed += await self._remove(FactorId(_text(raw_id)), user_id)
        return removed

    async def _remove(self, factor_id: FactorId, user_id: UserId | None = None) -> int:
        """Delete the factor and its index entries; ``user_id`` cleans a dangling set member."""
        factor = await self.get_factor(factor_id)
        owner = factor.user_id if factor is not None else user_id
        if owner is None:
            return 0
        factor_keys = [keys.factor(self._p, factor_id), keys.factors_of_user(self._p, owner)]
        if factor is not None:
            factor_keys += _credential_key(self._p, factor)
        with map_redis_errors():
            return int(await self._remove_factor(keys=factor_keys, args=[factor_id]))

    # -- login sessions ------------------------------------------------------------------------

    async def put_login(self, login: LoginSession, ttl_s: float) -> None:
        await self._put_listed(
            keys.logins_of_user(self._p, login.user_id),
            login.id,
            keys.login(self._p, login.id),
            login.model_dump_json(),
            _ttl_ms(ttl_s),
        )

    async def get_login(self, login_id: LoginSessionId) -> LoginSession | None:
        with map_redis_errors():
            raw = await self._client.get(keys.login(self._p, login_id))
            return None if raw is None else LoginSession.model_validate_json(raw)

    async def logins_of(self, user_id: UserId) -> Sequence[LoginSession]:
        logins = await self._listed(
            keys.logins_of_user(self._p, user_id),
            lambda member: keys.login(self._p, LoginSessionId(member)),
            LoginSession.model_validate_json,
            lambda login: login.user_id == user_id,
        )
        return sorted(logins, key=lambda s: (s.created_at, s.id))

    async def delete_login(self, login_id: LoginSessionId) -> None:
        with map_redis_errors():
            raw = await self._client.getdel(keys.login(self._p, login_id))
            if raw is not None:
                user_id = LoginSession.model_validate_json(raw).user_id
                await self._client.srem(keys.logins_of_user(self._p, user_id), login_id)

    # -- links ---------------------------------------------------------------------------------

    async def put_link(self, link: Link, ttl_s: float) -> None:
        index = keys.links_of_session(self._p, link.session_id)
        record = keys.link(self._p, link.id)
        if not await self._put_listed(
            index, link.id, record, link.model_dump_json(), _ttl_ms(ttl_s), new=True
        ):
            raise Conflict("a link with this id exists")

    async def get_link(self, link_id: LinkId) -> Link | None:
        with map_redis_errors():
            raw = await self._client.get(keys.link(self._p, link_id))
            return None if raw is None else Link.model_validate_json(raw)

    async def claim_link(self, link_id: LinkId, user_id: UserId, now: float) -> Link | None:
        _, written = await self._change_link(link_id, lambda link: link_rules.claimed(link, user_id, now))
        return written

    async def revoke_link(self, link_id: LinkId, by: str, now: float) -> Link | None:
        current, written = await self._change_link(link_id, lambda link: link_rules.revoked(link, by, now))
        return written or current

    async def links_of_session(self, session_id: SessionId) -> Sequence[Link]:
        return await self._listed(
            keys.links_of_session(self._p, session_id),
            lambda member: keys.link(self._p, LinkId(member)),
            Link.model_validate_json,
            lambda link: link.session_id == session_id,
        )

    async def _change_link(
        self, link_id: LinkId, change: Callable[[Link], Link | None]
    ) -> tuple[Link | None, Link | None]:
        """Read, decide, compare-and-set until no one else changed the link meanwhile.

        Returns (the link as read, the link as written or None if ``change`` wrote nothing).
        """
        key = keys.link(self._p, link_id)
        for _ in range(UPDATE_RETRIES):
            with map_redis_errors():
                raw = await self._client.get(key)
                if raw is None:
                    return None, None
                current = Link.model_validate_json(raw)
                new = change(current)
                if new is None:
                    return current, None
                if await self._compare_and_set(keys=[key], args=[raw, new.model_dump_json()]):
                    return current, new
        raise Unavailable(f"store: link {link_id[:12]} kept changing")

    # -- indexed ephemeral records ---------------------------------------------------------------

    async def _put_listed(
        self, index: str, member: str, key: str, value: str, ttl_ms: int, *, new: bool = False
    ) -> bool:
        """Write ``value`` at ``key`` for ``ttl_ms``, listed in the ``index`` set.

        The index TTL only grows, so it covers its longest-lived member. The index is written
        first: if the record write fails, ``_listed`` prunes the dangling member. With ``new``,
        an existing record is left alone and False returned.
        """
        with map_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.sadd(index, member)
                pipe.pexpire(index, ttl_ms, nx=True)
                pipe.pexpire(index, ttl_ms, gt=True)
                pipe.set(key, value, px=ttl_ms, nx=new)
                *_, written = await pipe.execute()
        return bool(written)

    async def _listed(
        self,
        index: str,
        key_of: Callable[[str], str],
        parse: Callable[[bytes | str], _R],
        belongs: Callable[[_R], bool],
    ) -> list[_R]:
        """The live records listed in ``index``; members whose record expired are pruned."""
        live: list[_R] = []
        stale: list[str] = []
        with map_redis_errors():
            members = [_text(m) for m in await self._client.smembers(index)]
            raws = await self._client.mget([key_of(m) for m in members]) if members else []
            for member, raw in zip(members, raws, strict=True):
                record = None if raw is None else parse(raw)
                if record is not None and belongs(record):
                    live.append(record)
                else:
                    stale.append(member)
            if stale:
                await self._client.srem(index, *stale)
        return live

    # -- challenges ----------------------------------------------------------------------------

    async def put_challenge(self, challenge_id: ChallengeId, payload: bytes, ttl_s: float) -> None:
        ttl_ms = _ttl_ms(ttl_s)
        with map_redis_errors():
            await self._client.set(keys.challenge(self._p, challenge_id), payload, px=ttl_ms)

    async def take_challenge(self, challenge_id: ChallengeId) -> bytes | None:
        with map_redis_errors():
            raw = await self._client.getdel(keys.challenge(self._p, challenge_id))
        return raw.encode() if isinstance(raw, str) else raw

    # -- counters ------------------------------------------------------------------------------

    async def incr(self, name: str, ttl_s: float) -> int:
        ttl_ms = _ttl_ms(ttl_s)
        with map_redis_errors():
            return int(await self._incr(keys=[keys.counter(self._p, name)], args=[ttl_ms]))

    async def get_count(self, name: str) -> int:
        with map_redis_errors():
            raw = await self._client.get(keys.counter(self._p, name))
        return 0 if raw is None else int(raw)

    async def reset(self, name: str) -> None:
        with map_redis_errors():
            await self._client.delete(keys.counter(self._p, name))

    async def raise_floor(self, name: str, value: int, ttl_s: float) -> bool:
        ttl_ms = _ttl_ms(ttl_s)
        check_floor(value)
        with map_redis_errors():
            return bool(await self._raise_floor(keys=[keys.counter(self._p, name)], args=[value, ttl_ms]))

    # -- audit ---------------------------------------------------------------------------------

    async def append(self, event: AuditEvent) -> AuditEvent:
        audit_keys = [keys.audit_seq(self._p), keys.audit_stream(self._p)]
        with map_redis_errors():
            seq = int(await self._append(keys=audit_keys, args=[event.model_dump_json(exclude={"seq"})]))
        return event.model_copy(update={"seq": seq})

    async def events(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> Sequence[AuditEvent]:
        found: list[AuditEvent] = []
        start = max(after_seq, 0) + 1
        filtered = subject is not None or bool(type_prefix)
        batch = AUDIT_SCAN_BATCH if filtered else limit
        while len(found) < limit:
            with map_redis_errors():
                entries = (
                    await self._client.xrange(keys.audit_stream(self._p), f"{start}-0", "+", count=batch)
                    or []
                )
                for entry_id, fields in entries:
                    if entry_id is None or not fields:
                        continue
                    seq = int(_text(entry_id).split("-", 1)[0])
                    start = seq + 1
                    event = AuditEvent.model_validate_json(fields.get(b"event", b"")).model_copy(
                        update={"seq": seq}
                    )
                    if subject is not None and event.subject != subject:
                        continue
                    if type_prefix and not event.type.startswith(type_prefix):
                        continue
                    found.append(event)
                    if len(found) == limit:
                        break
            if len(entries) < batch:
                break
        return found
