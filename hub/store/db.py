"""The hub's SQLite database: one connection, owned by one thread, with versioned migrations.

Every SQLite call runs on a dedicated single-thread executor, so nothing blocks the event loop and
the connection is never shared between threads. The repositories (``templates.py``,
``captures.py``) are written against small Protocols so a PostgreSQL implementation can replace
them for multi-hub setups (DESIGN §10).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from glimpser.shared.errors import StorageError
from glimpser.shared.threadowner import ThreadOwned

__all__ = ["MIGRATIONS", "Database"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Ordered: migration N (1-based) brings the schema from version N-1 to N. Never edit a shipped
# script; append a new one. Timestamps are REAL UNIX seconds (UTC) so keyset pagination compares
# numbers, not strings.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE templates (
        id                 TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        name_key           TEXT NOT NULL UNIQUE,   -- casefolded name: unique case-insensitively
        agent_id           TEXT,
        kind               TEXT NOT NULL,
        enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        owner              TEXT NOT NULL CHECK (owner IN ('hub', 'agent')),
        desired            TEXT NOT NULL DEFAULT 'started'
                           CHECK (desired IN ('started', 'stopped')),
        execution_status   TEXT,
        last_executed_at   REAL,
        last_error_message TEXT,
        created_at         REAL NOT NULL,
        updated_at         REAL NOT NULL,
        revision           INTEGER NOT NULL DEFAULT 1,
        search_text        TEXT NOT NULL,          -- lowercased id, name, notes and tags
        body               TEXT NOT NULL           -- Template.model_dump_json(): THE schema
    );
    CREATE INDEX templates_agent ON templates (agent_id);
    CREATE INDEX templates_kind ON templates (kind);

    CREATE TABLE agent_revisions (
        agent_id TEXT PRIMARY KEY,
        revision INTEGER NOT NULL
    );

    CREATE TABLE captures (
        id          TEXT PRIMARY KEY,
        stream_id   TEXT NOT NULL,
        agent_id    TEXT NOT NULL,
        template_id TEXT NOT NULL,
        captured_at REAL NOT NULL,
        saved_at    REAL NOT NULL,
        size        INTEGER NOT NULL,
        width       INTEGER,
        height      INTEGER,
        path        TEXT NOT NULL UNIQUE,          -- relative to the data dir
        status      TEXT NOT NULL DEFAULT 'ok',
        error       TEXT,
        pinned      INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
        reason      TEXT,
        seq         INTEGER
    );
    CREATE INDEX captures_time ON captures (captured_at, id);
    CREATE INDEX captures_stream_time ON captures (stream_id, captured_at, id);
    CREATE INDEX captures_template_time ON captures (template_id, captured_at, id);
    """,
    """
    -- Small facts about the hub itself, e.g. that the seed templates were created once.
    CREATE TABLE hub_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)


class Database(ThreadOwned):
    """Async context manager over one SQLite connection living on its own thread."""

    _thread_name = "hub-db"
    _what = "database"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> None:
        super().__init__()
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._migrations = tuple(migrations)
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the DB thread; sqlite3 errors become StorageError."""
        return await self._submit(lambda: self._call(fn))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction: committed on return, rolled back on raise."""
        return await self.run(lambda conn: _in_transaction(conn, fn))

    async def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return await self.run(_read_version)

    # ------------------------------------------------------------------ DB thread only

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits implicitly.
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise StorageError(f"cannot open database {self.path}: {err}") from err
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"database {self.path} refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL is durable across application crashes in WAL mode; only power loss can drop
            # the last transactions (https://www.sqlite.org/pragma.html#pragma_synchronous).
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, self._migrations, self.path)
        except sqlite3.Error as err:
            conn.close()
            raise StorageError(f"cannot prepare database {self.path}: {err}") from err
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("PRAGMA optimize")
        except sqlite3.Error as err:
            log.debug("PRAGMA optimize failed on close: %s", err)
        finally:
            self._conn.close()
            self._conn = None

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StorageError("database is not open")
        try:
            return fn(self._conn)
        except sqlite3.Error as err:
            raise StorageError(f"database error: {err}") from err


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    # IMMEDIATE takes the write lock up front, so check-then-write inside fn cannot race another
    # connection (another process or a later replica) between the check and the write.
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR); a second ROLLBACK
        # would then fail and hide the original error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _read_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection, migrations: Sequence[str], path: Path) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL DEFAULT (strftime('%s', 'now')))"
    )
    current = _read_version(conn)
    if current > len(migrations):
        raise StorageError(
            f"database {path} has schema version {current}, newer than this hub knows "
            f"({len(migrations)}): upgrade Glimpser"
        )
    for version, script in enumerate(migrations[current:], start=current + 1):
        # executescript() commits any open transaction first, so BEGIN/COMMIT live in the script
        # itself: a failing migration rolls back whole and the version row is never written.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n;"
                f"INSERT INTO schema_version (version) VALUES ({version});\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("database %s migrated to schema version %d", path, version)
