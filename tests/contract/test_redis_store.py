"""Redis-only guarantees: key layout and TTLs, and that no redis-py exception escapes unmapped."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
import redis.exceptions

from gateway.core.clock import FixedClock
from gateway.core.errors import Unavailable
from gateway.core.ids import ChallengeId, UserId
from gateway.store.redis import RedisStore, map_redis_errors
from tests.contract.harness import closed_port
from tests.contract.records import T0, a_link, a_login, a_passkey, a_totp, a_user, an_event

PREFIX = "rcgkeys"
# A cluster redirection carries "<slot> <host>:<port>"; every other error takes any message.
_MESSAGES = {redis.exceptions.AskError: "1 127.0.0.1:7000", redis.exceptions.MovedError: "1 127.0.0.1:7000"}
REDIS_EXCEPTIONS = sorted(
    (cls for _, cls in inspect.getmembers(redis.exceptions, inspect.isclass) if issubclass(cls, Exception)),
    key=lambda cls: cls.__name__,
)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    r = redis.asyncio.Redis.from_url(redis_url)
    await r.flushdb()  # the private test server's database, nothing else
    yield r
    await r.aclose()


async def exercise_every_operation(store: RedisStore) -> None:
    user = a_user()
    await store.add_user(user)
    await store.update_user(user.model_copy(update={"name": "ada.l"}))
    await store.add_factor(a_passkey(user))
    await store.add_factor(a_totp(user))
    await store.put_login(a_login(user), 60)
    await store.put_challenge(ChallengeId("chl_1"), b"x", 60)
    await store.incr("fail:ada", 60)
    await store.raise_floor("totp:fac_1", 5, 60)
    await store.append(an_event("user.added", user.id))
    await store.put_link(a_link(), 60)
    await store.claim_link(a_link().id, user.id, T0)


@pytest.mark.parametrize("exc_type", REDIS_EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_redis_exception_maps_to_unavailable(exc_type: type[Exception]) -> None:
    with pytest.raises(Unavailable) as caught, map_redis_errors():
        raise exc_type(_MESSAGES.get(exc_type, "boom"))
    assert isinstance(caught.value.__cause__, exc_type)


async def test_connection_refused_surfaces_as_unavailable(clock: FixedClock) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", PREFIX, clock)
    try:
        with pytest.raises(Unavailable) as caught:
            await store.get_user(UserId("usr_ada"))
        assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    finally:
        await store.close()


async def test_every_key_starts_with_the_prefix(client: redis.asyncio.Redis, clock: FixedClock) -> None:
    await exercise_every_operation(RedisStore(client, PREFIX, clock))
    names = [k.decode() async for k in client.scan_iter()]
    assert names
    assert all(name.startswith(f"{PREFIX}:") for name in names), names


async def test_every_ephemeral_key_has_a_ttl_and_no_durable_key_has_one(
    client: redis.asyncio.Redis, clock: FixedClock
) -> None:
    await exercise_every_operation(RedisStore(client, PREFIX, clock))
    durable, ephemeral = {}, {}
    async for key in client.scan_iter():
        name = key.decode()
        is_durable = name.startswith((f"{PREFIX}:{{dir}}:", f"{PREFIX}:{{audit}}:"))
        (durable if is_durable else ephemeral)[name] = await client.pttl(name)
    assert ephemeral and all(ttl > 0 for ttl in ephemeral.values()), ephemeral
    assert durable and all(ttl == -1 for ttl in durable.values()), durable


@pytest.mark.parametrize("prefix", ["", "rcg:", "rcg{x}"])
def test_a_prefix_that_would_break_the_key_layout_is_refused(prefix: str, clock: FixedClock) -> None:
    client = redis.asyncio.Redis()
    with pytest.raises(ValueError, match="prefix"):
        RedisStore(client, prefix, clock)


def test_a_client_that_decodes_responses_is_refused(clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(redis.asyncio.Redis(decode_responses=True), PREFIX, clock)
