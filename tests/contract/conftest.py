"""Contract-suite fixtures: the ``harness`` and ``store`` of each backend, embedded and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.core.clock import FixedClock
from gateway.core.ports import Store
from tests.contract.harness import Harness, embedded_harness, redis_harness

BACKENDS = ("embedded", "redis")


@pytest.fixture(params=BACKENDS)
async def harness(
    request: pytest.FixtureRequest, clock: FixedClock, tmp_path: Path
) -> AsyncIterator[Harness]:
    if request.param == "redis":
        h = await redis_harness(request.getfixturevalue("redis_url"), clock)
    else:
        h = await embedded_harness(tmp_path / "data", clock)
    yield h
    for store in h.opened:
        await store.close()


@pytest.fixture
def store(harness: Harness) -> Store:
    return harness.store
