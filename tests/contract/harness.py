"""The contract suite's view of one backend: its store, how time passes for it, how it restarts.

The embedded store reads the injected ``FixedClock``; Redis expires keys on its own clock in real
seconds. ``Harness.elapse(s)`` advances the clock and, for Redis, also waits ``s`` seconds of real
time (a deadline loop), so one test body checks expiry on both.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio

from gateway.core.clock import FixedClock
from gateway.core.ports import Store
from gateway.store import EmbeddedStore, RedisStore

TEST_PREFIX = "rcgtest"
SHORT_TTL_S = 0.3  # real seconds on Redis: each expiry test waits this long
LONG_TTL_S = 3600.0  # never reached during a test
# Redis decides expiry on its own millisecond clock: wait a little past the TTL.
EXPIRY_MARGIN_S = 0.05


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Harness:
    """One backend under test: its store, how time passes for it, and how to reopen it."""

    backend: str
    store: Store
    clock: FixedClock
    open_again: Callable[[], Awaitable[Store]]
    open_unreachable: Callable[[], Awaitable[Store]]
    opened: list[Store] = field(default_factory=list)

    async def elapse(self, seconds: float) -> None:
        self.clock.advance(seconds)
        if self.backend == "redis":
            deadline = time.monotonic() + seconds + EXPIRY_MARGIN_S
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(left)

    async def reopen(self) -> Store:
        """Close the store and open a new one on the same data, as a restart would."""
        await self.store.close()
        self.store = await self.open_again()
        self.opened.append(self.store)
        return self.store

    async def unreachable(self) -> Store:
        store = await self.open_unreachable()
        self.opened.append(store)
        return store


async def redis_harness(url: str, clock: FixedClock) -> Harness:
    admin = redis.asyncio.Redis.from_url(url)
    try:
        # The server is private to the test session (tests/conftest.py); flush only its database.
        await admin.flushdb()
    finally:
        await admin.aclose()

    async def open_again() -> Store:
        return RedisStore.from_url(url, TEST_PREFIX, clock)

    async def open_unreachable() -> Store:
        return RedisStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", TEST_PREFIX, clock)

    store = await open_again()
    return Harness("redis", store, clock, open_again, open_unreachable, [store])


async def embedded_harness(data_dir: Path, clock: FixedClock) -> Harness:
    path = EmbeddedStore.path_in(data_dir)

    async def open_again() -> Store:
        return await EmbeddedStore.open(path, clock)

    async def open_unreachable() -> Store:
        not_a_dir = data_dir / "plain-file"
        not_a_dir.write_bytes(b"")
        return await EmbeddedStore.open(EmbeddedStore.path_in(not_a_dir), clock)

    store = await open_again()
    return Harness("embedded", store, clock, open_again, open_unreachable, [store])
