"""The SQLite database: WAL, migrations, its own thread, transactions, error wrapping."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from glimpser.hub.store.db import MIGRATIONS, Database
from glimpser.shared.errors import StorageError


async def test_open_sets_wal_foreign_keys_and_schema(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db") as db:
        mode = await db.run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        fks = await db.run(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0])
        assert (mode, fks) == ("wal", 1)
        assert await db.schema_version() == len(MIGRATIONS)


async def test_calls_run_on_one_thread_that_is_not_the_loop(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db") as db:
        names = {await db.run(lambda _c: threading.current_thread().name) for _ in range(5)}
    assert len(names) == 1
    assert names != {threading.current_thread().name}


async def test_migrations_apply_once_and_only_the_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    first = ("CREATE TABLE a (x INTEGER);",)
    async with Database(path, migrations=first) as db:
        assert await db.schema_version() == 1
    async with Database(path, migrations=(*first, "CREATE TABLE b (y INTEGER);")) as db:
        assert await db.schema_version() == 2
        tables = await db.run(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        )
    assert {"a", "b", "schema_version"} <= tables


async def test_failed_migration_rolls_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    broken = ("CREATE TABLE a (x INTEGER); CREATE TABLE a (x INTEGER);",)
    with pytest.raises(StorageError):
        async with Database(path, migrations=broken):
            pass
    async with Database(path, migrations=("CREATE TABLE a (x INTEGER);",)) as db:
        assert await db.schema_version() == 1


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    async with Database(path, migrations=("SELECT 1;", "SELECT 2;")):
        pass
    with pytest.raises(StorageError, match="newer"):
        async with Database(path, migrations=("SELECT 1;",)):
            pass


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db", migrations=("CREATE TABLE t (x INTEGER);",)) as db:

        def insert_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await db.transaction(insert_then_fail)
        await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (2)"))
        rows = await db.run(lambda c: c.execute("SELECT x FROM t").fetchall())
    assert rows == [(2,)]


async def test_sqlite_errors_become_storage_errors(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db") as db:
        with pytest.raises(StorageError) as info:
            await db.run(lambda c: c.execute("SELECT * FROM no_such_table"))
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_use_after_close_is_a_storage_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "hub.db")
    async with db:
        pass
    with pytest.raises(StorageError, match="not open"):
        await db.run(lambda c: c.execute("SELECT 1"))
