"""The embedded store: every record, durable and ephemeral, in one SQLite file in the data dir.

Theory of operation
-------------------
The CLI (``rcgate users add``) runs in its own process against the same data dir as a running
server, so nothing lives in process memory: login sessions, links, challenges and counters are
rows with an ``expires_at`` column, compared with the injected clock on every read (an expired
row is invisible) and purged lazily, at most once per ``PURGE_INTERVAL_S``, by a later write.

Each process holds one connection in WAL mode (readers never block the writer) and waits up to
``sqlite_schema.BUSY_TIMEOUT_S`` for another process's write lock. Every write is a single SQL statement in
autocommit mode, so it is its own transaction and needs no lock of ours: single-use take is
``DELETE … RETURNING``, ``incr`` and ``raise_floor`` are ``INSERT … ON CONFLICT DO UPDATE …
RETURNING``, and claiming or revoking a link is an ``UPDATE … WHERE body = <as read>``
compare-and-set around the pure rules of ``link_rules``. Two processes cannot both win. All
sqlite calls run on one worker thread per store, so the event loop never blocks and the
connection is only ever used by the thread that made it.

``sqlite3`` and OS errors become ``Unavailable``; unique-constraint failures become ``Conflict``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from gateway.core.clock import Clock
from gateway.core.errors import BadRequest, Conflict, NotFound, Unavailable
from gateway.core.ids import ChallengeId, FactorId, LinkId, LoginSessionId, SessionId, UserId
from gateway.core.models import AuditEvent, Factor, Link, LoginSession, PasskeyFactor, User
from gateway.store import link_rules, sqlite_schema
from gateway.store.limits import FACTOR_IDENTITY_CHANGED, check_floor, check_ttl

PURGE_INTERVAL_S = 60.0  # expired ephemeral rows are deleted at most this often (clock seconds)

_T = TypeVar("_T")
_FACTOR: TypeAdapter[Factor] = TypeAdapter(Factor)
_Params = tuple[str | float | None, ...]


def _fetch_one(conn: sqlite3.Connection, sql: str, params: _Params, parse: Callable[[str], _T]) -> _T | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else parse(row[0])


def _fetch_all(conn: sqlite3.Connection, sql: str, params: _Params, parse: Callable[[str], _T]) -> list[_T]:
    return [parse(body) for (body,) in conn.execute(sql, params).fetchall()]


def _credential_of(factor: Factor) -> str | None:
    return factor.credential_id if isinstance(factor, PasskeyFactor) else None


class EmbeddedStore:
    """The ``Store`` port over SQLite; build with ``await EmbeddedStore.open(path, clock)``."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rcgate-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._next_purge_at = float("-inf")

    @classmethod
    def path_in(cls, data_dir: Path) -> Path:
        """Where the database file of ``data_dir`` lives."""
        return data_dir / sqlite_schema.DB_FILE_NAME

    @classmethod
    async def open(cls, path: Path, clock: Clock) -> EmbeddedStore:
        store = cls(path, clock)
        try:
            await store.init()
        except BaseException:
            await store.close()
            raise
        return store

    async def init(self) -> None:
        """Create the file (mode 0600), switch to WAL and create or check the schema."""
        self._conn = await self._submit(lambda: sqlite_schema.connect(self._path))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._submit(conn.close)
        self._executor.shutdown(wait=False)

    async def _submit(self, fn: Callable[[], _T]) -> _T:
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except RuntimeError as exc:  # the executor was shut down by close()
            raise Unavailable("store: closed") from exc
        try:
            return await future
        except (sqlite3.Error, OSError) as exc:
            raise Unavailable(f"store: sqlite failed: {exc}") from exc
        except ValidationError as exc:
            raise Unavailable("store: a stored record does not parse") from exc

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        if conn is None:
            raise Unavailable("store: not open")
        return await self._submit(lambda: fn(conn))

    def _purge_if_due(self, conn: sqlite3.Connection, now: float) -> None:
        if now < self._next_purge_at:
            return
        self._next_purge_at = now + PURGE_INTERVAL_S
        for table in sqlite_schema.EPHEMERAL_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608 constant names

    # -- users ---------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO users (id, name, body) VALUES (?, ?, ?)",
                    (user.id, user.name, user.model_dump_json()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"user {user.name!r} or its id already exists") from exc

        await self._run(op)

    async def get_user(self, user_id: UserId) -> User | None:
        sql = "SELECT body FROM users WHERE id = ?"
        return await self._run(lambda c: _fetch_one(c, sql, (user_id,), User.model_validate_json))

    async def user_by_name(self, name: str) -> User | None:
        sql = "SELECT body FROM users WHERE name = ?"
        return await self._run(lambda c: _fetch_one(c, sql, (name,), User.model_validate_json))

    async def list_users(self) -> Sequence[User]:
        users = await self._run(
            lambda c: _fetch_all(c, "SELECT body FROM users", (), User.model_validate_json)
        )
        return sorted(users, key=lambda u: u.name)

    async def update_user(self, user: User) -> None:
        def op(conn: sqlite3.Connection) -> int:
            try:
                return conn.execute(
                    "UPDATE users SET name = ?, body = ? WHERE id = ?",
                    (user.name, user.model_dump_json(), user.id),
                ).rowcount
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"user name {user.name!r} is taken") from exc

        if await self._run(op) == 0:
            raise NotFound(f"no user {user.id}")

    # -- factors -------------------------------------------------------------------------------

    async def add_factor(self, factor: Factor) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO factors (id, user_id, credential_id, body) VALUES (?, ?, ?, ?)",
                    (factor.id, factor.user_id, _credential_of(factor), factor.model_dump_json()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("the factor or its credential is already registered") from exc

        await self._run(op)

    async def get_factor(self, factor_id: FactorId) -> Factor | None:
        sql = "SELECT body FROM factors WHERE id = ?"
        return await self._run(lambda c: _fetch_one(c, sql, (factor_id,), _FACTOR.validate_json))

    async def factor_by_credential(self, credential_id: str) -> Factor | None:
        sql = "SELECT body FROM factors WHERE credential_id = ?"
        return await self._run(lambda c: _fetch_one(c, sql, (credential_id,), _FACTOR.validate_json))

    async def factors_of(self, user_id: UserId) -> Sequence[Factor]:
        sql = "SELECT body FROM factors WHERE user_id = ?"
        factors = await self._run(lambda c: _fetch_all(c, sql, (user_id,), _FACTOR.validate_json))
        return sorted(factors, key=lambda f: (f.created_at, f.id))

    async def update_factor(self, factor: Factor) -> None:
        def op(conn: sqlite3.Connection) -> None:
            updated = conn.execute(
                "UPDATE factors SET body = ? WHERE id = ? AND user_id = ? AND credential_id IS ?",
                (factor.model_dump_json(), factor.id, factor.user_id, _credential_of(factor)),
            ).rowcount
            if updated:
                return
            if conn.execute("SELECT 1 FROM factors WHERE id = ?", (factor.id,)).fetchone() is None:
                raise NotFound(f"no factor {factor.id}")
            raise BadRequest(FACTOR_IDENTITY_CHANGED)

        await self._run(op)

    async def remove_factor(self, factor_id: FactorId) -> None:
        await self._run(lambda c: c.execute("DELETE FROM factors WHERE id = ?", (factor_id,)))

    async def remove_factors_of(self, user_id: UserId) -> int:
        return await self._run(
            lambda c: c.execute("DELETE FROM factors WHERE user_id = ?", (user_id,)).rowcount
        )

    # -- login sessions ------------------------------------------------------------------------

    async def put_login(self, login: LoginSession, ttl_s: float) -> None:
        check_ttl(ttl_s)
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO logins (id, user_id, body, expires_at) VALUES (?, ?, ?, ?)",
                (login.id, login.user_id, login.model_dump_json(), now + ttl_s),
            )
            self._purge_if_due(conn, now)

        await self._run(op)

    async def get_login(self, login_id: LoginSessionId) -> LoginSession | None:
        sql = "SELECT body FROM logins WHERE id = ? AND expires_at > ?"
        params = (login_id, self._clock.now())
        return await self._run(lambda c: _fetch_one(c, sql, params, LoginSession.model_validate_json))

    async def logins_of(self, user_id: UserId) -> Sequence[LoginSession]:
        sql = "SELECT body FROM logins WHERE user_id = ? AND expires_at > ?"
        params = (user_id, self._clock.now())
        logins = await self._run(lambda c: _fetch_all(c, sql, params, LoginSession.model_validate_json))
        return sorted(logins, key=lambda s: (s.created_at, s.id))

    async def delete_login(self, login_id: LoginSessionId) -> None:
        await self._run(lambda c: c.execute("DELETE FROM logins WHERE id = ?", (login_id,)))

    # -- links ---------------------------------------------------------------------------------

    async def put_link(self, link: Link, ttl_s: float) -> None:
        check_ttl(ttl_s)
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> bool:
            # An expired row that the purge has not reached yet does not count as a duplicate.
            row = conn.execute(
                "INSERT INTO links (id, session_id, body, expires_at)"
                " VALUES (:id, :session, :body, :expires_at)"
                " ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, body = excluded.body,"
                "  expires_at = excluded.expires_at WHERE links.expires_at <= :now"
                " RETURNING id",
                {
                    "id": link.id,
                    "session": link.session_id,
                    "body": link.model_dump_json(),
                    "expires_at": now + ttl_s,
                    "now": now,
                },
            ).fetchone()
            self._purge_if_due(conn, now)
            return row is not None

        if not await self._run(op):
            raise Conflict("a link with this id exists")

    async def get_link(self, link_id: LinkId) -> Link | None:
        sql = "SELECT body FROM links WHERE id = ? AND expires_at > ?"
        params = (link_id, self._clock.now())
        return await self._run(lambda c: _fetch_one(c, sql, params, Link.model_validate_json))

    async def claim_link(self, link_id: LinkId, user_id: UserId, now: float) -> Link | None:
        _, written = await self._change_link(link_id, lambda link: link_rules.claimed(link, user_id, now))
        return written

    async def revoke_link(self, link_id: LinkId, by: str, now: float) -> Link | None:
        current, written = await self._change_link(link_id, lambda link: link_rules.revoked(link, by, now))
        return written or current

    async def links_of_session(self, session_id: SessionId) -> Sequence[Link]:
        sql = "SELECT body FROM links WHERE session_id = ? AND expires_at > ?"
        params = (session_id, self._clock.now())
        return await self._run(lambda c: _fetch_all(c, sql, params, Link.model_validate_json))

    async def _change_link(
        self, link_id: LinkId, change: Callable[[Link], Link | None]
    ) -> tuple[Link | None, Link | None]:
        """Read, decide, and write only if the row still holds what was read (compare-and-set).

        Returns (the link as read, the link as written or None if ``change`` wrote nothing). A
        write lost to another process is retried on the fresh row.
        """
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> tuple[Link | None, Link | None]:
            while True:
                row = conn.execute(
                    "SELECT body FROM links WHERE id = ? AND expires_at > ?", (link_id, now)
                ).fetchone()
                if row is None:
                    return None, None
                current = Link.model_validate_json(row[0])
                new = change(current)
                if new is None:
                    return current, None
                if conn.execute(
                    "UPDATE links SET body = ? WHERE id = ? AND body = ?",
                    (new.model_dump_json(), link_id, row[0]),
                ).rowcount:
                    return current, new

        return await self._run(op)

    # -- challenges ----------------------------------------------------------------------------

    async def put_challenge(self, challenge_id: ChallengeId, payload: bytes, ttl_s: float) -> None:
        check_ttl(ttl_s)
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO challenges (id, payload, expires_at) VALUES (?, ?, ?)",
                (challenge_id, payload, now + ttl_s),
            )
            self._purge_if_due(conn, now)

        await self._run(op)

    async def take_challenge(self, challenge_id: ChallengeId) -> bytes | None:
        now = self._clock.now()
        row = await self._run(
            lambda c: c.execute(
                "DELETE FROM challenges WHERE id = ? RETURNING payload, expires_at", (challenge_id,)
            ).fetchone()
        )
        if row is None or row[1] <= now:
            return None
        return bytes(row[0])

    # -- counters ------------------------------------------------------------------------------

    async def incr(self, name: str, ttl_s: float) -> int:
        check_ttl(ttl_s)
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> int:
            (value,) = conn.execute(
                "INSERT INTO counters (name, value, expires_at) VALUES (:name, 1, :expires_at)"
                " ON CONFLICT (name) DO UPDATE SET"
                "  value = CASE WHEN expires_at <= :now THEN 1 ELSE value + 1 END,"
                "  expires_at = CASE WHEN expires_at <= :now THEN excluded.expires_at ELSE expires_at END"
                " RETURNING value",
                {"name": name, "expires_at": now + ttl_s, "now": now},
            ).fetchone()
            self._purge_if_due(conn, now)
            return int(value)

        return await self._run(op)

    async def get_count(self, name: str) -> int:
        now = self._clock.now()
        row = await self._run(
            lambda c: c.execute(
                "SELECT value FROM counters WHERE name = ? AND expires_at > ?", (name, now)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def reset(self, name: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM counters WHERE name = ?", (name,)))

    async def raise_floor(self, name: str, value: int, ttl_s: float) -> bool:
        check_ttl(ttl_s)
        check_floor(value)
        now = self._clock.now()

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "INSERT INTO counters (name, value, expires_at) VALUES (:name, :value, :expires_at)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
                "  WHERE counters.value < excluded.value OR counters.expires_at <= :now"
                " RETURNING value",
                {"name": name, "value": value, "expires_at": now + ttl_s, "now": now},
            ).fetchone()
            self._purge_if_due(conn, now)
            return row is not None

        return await self._run(op)

    # -- audit ---------------------------------------------------------------------------------

    async def append(self, event: AuditEvent) -> AuditEvent:
        body = event.model_dump_json(exclude={"seq"})
        (seq,) = await self._run(
            lambda c: c.execute(
                "INSERT INTO audit (type, subject, body) VALUES (?, ?, ?) RETURNING seq",
                (event.type, event.subject, body),
            ).fetchone()
        )
        return event.model_copy(update={"seq": int(seq)})

    async def events(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> Sequence[AuditEvent]:
        if limit <= 0:
            return []
        sql = "SELECT seq, body FROM audit WHERE seq > ?"
        params: list[str | int] = [after_seq]
        if subject is not None:
            sql += " AND subject = ?"
            params.append(subject)
        if type_prefix:
            sql += " AND substr(type, 1, ?) = ?"
            params += [len(type_prefix), type_prefix]
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)

        def op(conn: sqlite3.Connection) -> list[AuditEvent]:
            rows = conn.execute(sql, params).fetchall()
            return [
                AuditEvent.model_validate_json(body).model_copy(update={"seq": seq}) for seq, body in rows
            ]

        return await self._run(op)
