"""The embedded store's SQLite file: its tables, its pragmas, and the one way a process opens it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from gateway.core.errors import Unavailable

DB_FILE_NAME = "rcgate.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0  # how long a write waits for another process's lock before Unavailable
DB_FILE_MODE = 0o600  # the file holds TOTP secrets and password hashes
DATA_DIR_MODE = 0o700
MIN_SQLITE = (3, 35, 0)  # RETURNING

# Durable tables hold a record's pydantic JSON in ``body`` plus the columns that are looked up or
# must be unique; ephemeral tables add ``expires_at`` (clock seconds).
TABLES = (
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS factors ("
    " id TEXT PRIMARY KEY, user_id TEXT NOT NULL, credential_id TEXT UNIQUE, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS factors_by_user ON factors (user_id)",
    "CREATE TABLE IF NOT EXISTS audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, subject TEXT, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_by_subject ON audit (subject, seq)",
    "CREATE TABLE IF NOT EXISTS logins ("
    " id TEXT PRIMARY KEY, user_id TEXT NOT NULL, body TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS logins_by_user ON logins (user_id)",
    "CREATE INDEX IF NOT EXISTS logins_by_expiry ON logins (expires_at)",
    "CREATE TABLE IF NOT EXISTS links ("
    " id TEXT PRIMARY KEY, session_id TEXT NOT NULL, body TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS links_by_session ON links (session_id)",
    "CREATE INDEX IF NOT EXISTS links_by_expiry ON links (expires_at)",
    "CREATE TABLE IF NOT EXISTS challenges ("
    " id TEXT PRIMARY KEY, payload BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS challenges_by_expiry ON challenges (expires_at)",
    "CREATE TABLE IF NOT EXISTS counters ("
    " name TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS counters_by_expiry ON counters (expires_at)",
)
EPHEMERAL_TABLES = ("logins", "links", "challenges", "counters")


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (created with mode 0600 if absent) in WAL and autocommit mode, schema ready.

    Raises ``Unavailable`` if the file was written by a newer gateway; lets ``sqlite3`` and OS
    errors through for the caller to map.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise Unavailable(f"store: sqlite {sqlite3.sqlite_version} is older than 3.35")
    path.parent.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, DB_FILE_MODE))
    # isolation_level=None: autocommit, every statement is its own transaction.
    # timeout: the busy timeout, how long to wait for another process's write lock.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise Unavailable(f"store: {path} has schema {version}, newer than this gateway")
        for statement in TABLES:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn
