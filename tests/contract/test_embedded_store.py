"""Embedded-only guarantees: one file shared by several processes, private on disk, purged lazily."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.core.clock import FixedClock
from gateway.core.errors import Unavailable
from gateway.core.ids import ChallengeId, UserId
from gateway.store.embedded import PURGE_INTERVAL_S, EmbeddedStore
from gateway.store.sqlite_schema import DB_FILE_MODE, SCHEMA_VERSION
from tests.contract.records import T0, a_link, a_login, a_user

PROCESS_TIMEOUT_S = 30.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return EmbeddedStore.path_in(tmp_path / "data")


@pytest.fixture
async def two_stores(db_path: Path, clock: FixedClock) -> AsyncIterator[tuple[EmbeddedStore, EmbeddedStore]]:
    """Two connections on one file, each with its own worker thread: two processes, as SQLite sees it."""
    first = await EmbeddedStore.open(db_path, clock)
    second = await EmbeddedStore.open(db_path, clock)
    yield first, second
    await first.close()
    await second.close()


def count_rows(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


async def test_a_second_store_on_the_file_shares_ephemeral_data(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    server, cli = two_stores
    login = a_login(a_user())
    await server.put_login(login, 60)
    await server.put_challenge(ChallengeId("chl_1"), b"x", 60)
    await server.incr("fail:ada", 60)
    assert await cli.get_login(login.id) == login
    assert await cli.get_count("fail:ada") == 1
    assert await cli.take_challenge(ChallengeId("chl_1")) == b"x"
    assert await server.take_challenge(ChallengeId("chl_1")) is None


async def test_concurrent_takes_through_two_connections_let_exactly_one_win(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    cid = ChallengeId("chl_race")
    await two_stores[0].put_challenge(cid, b"once", 60)
    taken = await asyncio.gather(*(two_stores[i % 2].take_challenge(cid) for i in range(20)))
    assert [t for t in taken if t is not None] == [b"once"]


async def test_concurrent_raises_through_two_connections_let_exactly_one_win(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    won = await asyncio.gather(*(two_stores[i % 2].raise_floor("totp:fac_1", 7, 60) for i in range(20)))
    assert won.count(True) == 1


async def test_concurrent_claims_through_two_connections_let_exactly_one_win(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    link = a_link()
    await two_stores[0].put_link(link, 600)
    claims = await asyncio.gather(
        *(two_stores[i % 2].claim_link(link.id, UserId(f"usr_{i}"), T0) for i in range(20))
    )
    assert len([c for c in claims if c is not None]) == 1


async def test_a_user_added_by_another_process_is_seen_at_once(db_path: Path, clock: FixedClock) -> None:
    server = await EmbeddedStore.open(db_path, clock)
    try:
        script = textwrap.dedent(f"""
            import asyncio
            from pathlib import Path
            from gateway.core.clock import FixedClock
            from gateway.core.ids import UserId
            from gateway.core.models import User
            from gateway.store.embedded import EmbeddedStore

            async def main() -> None:
                store = await EmbeddedStore.open(Path({str(db_path)!r}), FixedClock({T0}))
                await store.add_user(User(id=UserId("usr_cli"), name="cli", created_at={T0}))
                await store.close()

            asyncio.run(main())
        """)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
        assert await asyncio.wait_for(proc.wait(), PROCESS_TIMEOUT_S) == 0
        user = await server.get_user(UserId("usr_cli"))
        assert user is not None and user.name == "cli"
    finally:
        await server.close()


async def test_the_database_file_is_readable_only_by_its_owner(db_path: Path, clock: FixedClock) -> None:
    store = await EmbeddedStore.open(db_path, clock)
    await store.close()
    assert db_path.stat().st_mode & 0o777 == DB_FILE_MODE


async def test_expired_rows_are_purged_by_a_later_write(db_path: Path, clock: FixedClock) -> None:
    store = await EmbeddedStore.open(db_path, clock)
    try:
        await store.put_challenge(ChallengeId("chl_old"), b"x", 1)
        clock.advance(PURGE_INTERVAL_S + 1)
        await store.put_challenge(ChallengeId("chl_new"), b"y", 1)
    finally:
        await store.close()
    assert count_rows(db_path, "challenges") == 1


async def test_a_file_from_a_newer_gateway_is_refused(db_path: Path, clock: FixedClock) -> None:
    store = await EmbeddedStore.open(db_path, clock)
    await store.close()
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(Unavailable, match="newer"):
        await EmbeddedStore.open(db_path, clock)


async def test_a_closed_store_raises_unavailable(db_path: Path, clock: FixedClock) -> None:
    store = await EmbeddedStore.open(db_path, clock)
    await store.close()
    with pytest.raises(Unavailable):
        await store.get_user(UserId("usr_ada"))
