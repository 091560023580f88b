"""Capture history: JPEG files under ``<data_dir>/captures`` plus an index in the database.

Order of operations is what keeps files and rows consistent without a cross-resource
transaction: a file is written to a temp name, fsynced and renamed *before* its row is inserted,
and a row is deleted only *after* its file is gone. The only leftovers a crash can cause are a
file with no row (cleaned by ``reconcile`` after a grace period) or a row whose file is gone
(likewise). File names come only from validated ids and timestamps, never from user text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from glimpser.hub.store.db import Database
from glimpser.shared.errors import GlimpserError, NotFoundError, ProtocolError, StorageError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import FrameMeta, Model

__all__ = [
    "CAPTURES_DIR",
    "CapturePage",
    "CaptureRecord",
    "CaptureRepository",
    "CaptureRow",
    "CaptureStore",
    "CaptureUsage",
    "InvalidCursorError",
    "SqliteCaptureIndex",
    "UsageFigures",
    "is_temp_name",
]

log = logging.getLogger(__name__)

CAPTURES_DIR = "captures"
MAX_PAGE = 500
# Same rule as FrameMeta.capture_id: the id becomes part of a file name.
_CAPTURE_ID_RE = re.compile(r"\A[a-z0-9]{8,64}\Z")
_JPEG_SOI = b"\xff\xd8\xff"
# Seconds since the epoch we accept as a capture time (1970 .. 2286): keeps file names sane.
_MAX_TIMESTAMP = 10_000_000_000.0

CaptureStatus = Literal["ok", "failed"]
CaptureReason = Literal["interval", "event", "manual"]


class InvalidCursorError(GlimpserError, ValueError):
    """A pagination cursor was not one this store handed out."""


class CaptureRecord(Model):
    """One capture as indexed; ``path`` is relative to the hub's data dir."""

    id: str
    stream_id: str
    agent_id: str
    template_id: str
    captured_at: datetime
    saved_at: datetime
    size: int = Field(ge=0)
    width: int | None = None
    height: int | None = None
    path: str
    status: CaptureStatus = "ok"
    error: str | None = None
    pinned: bool = False
    reason: CaptureReason | None = None
    seq: int | None = None


class CapturePage(Model):
    """One page of captures, newest first; pass ``next_cursor`` back for the next page."""

    items: list[CaptureRecord]
    next_cursor: str | None = None


class UsageFigures(Model):
    """How many captures and how many bytes."""

    count: int = 0
    bytes: int = 0


class CaptureUsage(Model):
    """Disk use of the capture history, in total and per template."""

    total: UsageFigures
    per_template: dict[str, UsageFigures]


@dataclass(frozen=True, slots=True)
class CaptureRow:
    """The few index fields retention and reconciliation need."""

    id: str
    template_id: str
    captured_at: float
    saved_at: float
    size: int
    pinned: bool
    path: str


class CaptureRepository(Protocol):
    """The capture index; SQLite today, PostgreSQL later (DESIGN §10)."""

    async def find(self, capture_id: str) -> CaptureRecord | None: ...

    async def insert(self, record: CaptureRecord) -> CaptureRecord: ...

    async def page(
        self,
        filters: dict[str, Any],
        limit: int,
        after: tuple[float, str] | None,
    ) -> list[CaptureRecord]: ...

    async def set_pinned(self, capture_id: str, pinned: bool) -> CaptureRecord | None: ...

    async def usage(self) -> CaptureUsage: ...

    async def rows(self) -> list[CaptureRow]: ...

    async def remove(
        self, ids: list[str], unlink: Callable[[str], None], *, only_unpinned: bool
    ) -> list[CaptureRow]: ...

    async def remove_rows(self, ids: list[str]) -> list[str]: ...

    async def unlink_unindexed(
        self, paths: list[str], unlink: Callable[[str], None]
    ) -> list[str]: ...


_COLUMNS = (
    "id, stream_id, agent_id, template_id, captured_at, saved_at, size, width, height, path, "
    "status, error, pinned, reason, seq"
)
_ROW_COLUMNS = "id, template_id, captured_at, saved_at, size, pinned, path"


class SqliteCaptureIndex:
    """CaptureRepository on the hub's SQLite database.

    ``remove`` and ``unlink_unindexed`` run their file operations on the database thread, so no
    other index write (a pin, an insert) can interleave between the check and the unlink.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, capture_id: str) -> CaptureRecord | None:
        """The indexed capture, or None."""
        return await self._db.run(lambda conn: _find(conn, capture_id))

    async def insert(self, record: CaptureRecord) -> CaptureRecord:
        """Index ``record``; if its id is already indexed, return the stored one unchanged."""

        def write(conn: sqlite3.Connection) -> CaptureRecord:
            conn.execute(
                f"INSERT INTO captures ({_COLUMNS}) VALUES ({', '.join('?' * 15)}) "
                "ON CONFLICT (id) DO NOTHING",
                _params(record),
            )
            stored = _find(conn, record.id)
            if stored is None:  # pragma: no cover - the row was just written
                raise StorageError(f"capture {record.id!r} vanished right after insert")
            return stored

        return await self._db.run(write)

    async def page(
        self, filters: dict[str, Any], limit: int, after: tuple[float, str] | None
    ) -> list[CaptureRecord]:
        """Up to ``limit`` records matching ``filters``, newest first, strictly after ``after``."""
        clauses, params = _where(filters)
        if after is not None:
            clauses.append("(captured_at < ? OR (captured_at = ? AND id < ?))")
            params += [after[0], after[0], after[1]]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT {_COLUMNS} FROM captures {where} ORDER BY captured_at DESC, id DESC LIMIT ?"

        def read(conn: sqlite3.Connection) -> builtins.list[CaptureRecord]:
            return [_record(r) for r in conn.execute(sql, [*params, limit]).fetchall()]

        return await self._db.run(read)

    async def set_pinned(self, capture_id: str, pinned: bool) -> CaptureRecord | None:
        """Pin or unpin; None when the id is unknown."""

        def write(conn: sqlite3.Connection) -> CaptureRecord | None:
            conn.execute("UPDATE captures SET pinned = ? WHERE id = ?", (int(pinned), capture_id))
            return _find(conn, capture_id)

        return await self._db.run(write)

    async def usage(self) -> CaptureUsage:
        """Count and bytes per template and in total."""

        def read(conn: sqlite3.Connection) -> CaptureUsage:
            rows = conn.execute(
                "SELECT template_id, COUNT(*), COALESCE(SUM(size), 0) FROM captures "
                "GROUP BY template_id ORDER BY template_id"
            ).fetchall()
            per = {t: UsageFigures(count=c, bytes=b) for t, c, b in rows}
            total = UsageFigures(count=sum(c for _, c, _ in rows), bytes=sum(b for *_, b in rows))
            return CaptureUsage(total=total, per_template=per)

        return await self._db.run(read)

    async def rows(self) -> builtins.list[CaptureRow]:
        """Every indexed capture, oldest first, with the fields retention needs."""

        def read(conn: sqlite3.Connection) -> builtins.list[CaptureRow]:
            cur = conn.execute(f"SELECT {_ROW_COLUMNS} FROM captures ORDER BY captured_at, id")
            return [_row(r) for r in cur.fetchall()]

        return await self._db.run(read)

    async def remove(
        self, ids: builtins.list[str], unlink: Callable[[str], None], *, only_unpinned: bool
    ) -> builtins.list[CaptureRow]:
        """For each id: unlink its file, then delete its row; returns what was removed.

        A row stays when its file cannot be unlinked (logged), so no row ever outlives a file by
        choice; ``only_unpinned`` re-checks the pin here, after any pin that raced the caller.
        """

        def write(conn: sqlite3.Connection) -> builtins.list[CaptureRow]:
            removed: builtins.list[CaptureRow] = []
            for capture_id in ids:
                found = conn.execute(
                    f"SELECT {_ROW_COLUMNS} FROM captures WHERE id = ?", (capture_id,)
                ).fetchone()
                if found is None:
                    continue
                row = _row(found)
                if only_unpinned and row.pinned:
                    continue
                try:
                    unlink(row.path)
                except OSError as err:
                    log.warning("cannot delete capture file %s: %s", row.path, err)
                    continue
                # Autocommit per row: a crash after the unlink leaves at most this one row
                # without its file, which reconcile removes.
                conn.execute("DELETE FROM captures WHERE id = ?", (capture_id,))
                removed.append(row)
            return removed

        return await self._db.run(write)

    async def remove_rows(self, ids: builtins.list[str]) -> builtins.list[str]:
        """Delete the rows ``ids`` (their files are known gone); returns the ids deleted."""

        def write(conn: sqlite3.Connection) -> builtins.list[str]:
            done = []
            for capture_id in ids:
                if conn.execute("DELETE FROM captures WHERE id = ?", (capture_id,)).rowcount:
                    done.append(capture_id)
            return done

        return await self._db.run(write)

    async def unlink_unindexed(
        self, paths: builtins.list[str], unlink: Callable[[str], None]
    ) -> builtins.list[str]:
        """Unlink each path that no row refers to; returns the paths unlinked."""

        def write(conn: sqlite3.Connection) -> builtins.list[str]:
            done = []
            for rel in paths:
                if conn.execute("SELECT 1 FROM captures WHERE path = ?", (rel,)).fetchone():
                    continue
                try:
                    unlink(rel)
                except OSError as err:
                    log.warning("cannot delete orphan capture file %s: %s", rel, err)
                    continue
                done.append(rel)
            return done

        return await self._db.run(write)


class CaptureStore:
    """Capture files on disk and their index, kept consistent with each other."""

    def __init__(
        self,
        index: CaptureRepository,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.data_dir = data_dir.resolve()
        self.captures_dir = self.data_dir / CAPTURES_DIR
        self._clock = clock
        self._saving: dict[str, _Inflight] = {}

    async def save(
        self,
        *,
        stream_id: str,
        agent_id: str,
        template_id: str,
        jpeg: bytes,
        meta: FrameMeta,
        width: int | None = None,
        height: int | None = None,
    ) -> CaptureRecord:
        """Store a capture; saving an id that is already stored returns it and writes nothing."""
        for value, what in ((stream_id, "stream id"), (agent_id, "agent id"),
                            (template_id, "template id")):  # fmt: skip
            validate_id(value, what)
        capture_id = _capture_id(meta.capture_id)
        captured_at = _capture_time(meta.captured_at)
        if not jpeg.startswith(_JPEG_SOI):
            raise ProtocolError(f"capture {capture_id!r} is not a JPEG")
        async with self._saving_lock(capture_id):
            existing = await self.index.find(capture_id)
            if existing is not None:
                return existing
            rel = _relative_path(agent_id, stream_id, captured_at, capture_id)
            target = self._resolve(rel)
            await asyncio.to_thread(_write_atomic, target, jpeg)
            record = CaptureRecord(
                id=capture_id,
                stream_id=stream_id,
                agent_id=agent_id,
                template_id=template_id,
                captured_at=datetime.fromtimestamp(captured_at, UTC),
                saved_at=datetime.fromtimestamp(self._clock(), UTC),
                size=len(jpeg),
                width=width,
                height=height,
                path=rel,
                reason=meta.reason,
                seq=meta.seq,
            )
            try:
                return await self.index.insert(record)
            except BaseException:
                # Not indexed: take the file back so it does not wait for reconcile as an orphan.
                await asyncio.to_thread(_unlink_quietly, target)
                raise

    async def list(
        self,
        *,
        stream_id: str | None = None,
        template_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pinned: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> CapturePage:
        """Captures newest first; ``since`` is inclusive, ``until`` exclusive."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        filters: dict[str, Any] = {
            "stream_id": stream_id,
            "template_id": template_id,
            "agent_id": agent_id,
            "since": _aware(since, "since").timestamp() if since else None,
            "until": _aware(until, "until").timestamp() if until else None,
            "pinned": pinned,
        }
        after = decode_cursor(cursor) if cursor else None
        items = await self.index.page(filters, limit + 1, after)
        more = len(items) > limit
        items = items[:limit]
        next_cursor = encode_cursor(items[-1]) if more else None
        return CapturePage(items=items, next_cursor=next_cursor)

    async def get(self, capture_id: str) -> CaptureRecord:
        """The capture ``capture_id``; NotFoundError when unknown."""
        record = await self.index.find(capture_id)
        if record is None:
            raise NotFoundError(f"unknown capture {capture_id!r}")
        return record

    async def path_of(self, capture_id: str) -> Path:
        """Absolute path of the capture's JPEG; NotFoundError if unknown or its file is gone."""
        path = self._resolve((await self.get(capture_id)).path)
        if not await asyncio.to_thread(path.is_file):
            raise NotFoundError(f"capture {capture_id!r} has no file any more")
        return path

    async def delete(self, capture_id: str) -> None:
        """Delete the capture's file, then its row (pinned or not)."""
        await self.get(capture_id)
        removed = await self.index.remove([capture_id], self.unlink, only_unpinned=False)
        if not removed:
            # Either someone else deleted it meanwhile, or the unlink failed (logged).
            if await self.index.find(capture_id) is not None:
                raise StorageError(f"cannot delete the file of capture {capture_id!r}")
            raise NotFoundError(f"unknown capture {capture_id!r}")

    async def pin(self, capture_id: str, pinned: bool = True) -> CaptureRecord:
        """Pin (retention never deletes it) or unpin a capture."""
        record = await self.index.set_pinned(capture_id, pinned)
        if record is None:
            raise NotFoundError(f"unknown capture {capture_id!r}")
        return record

    async def usage(self) -> CaptureUsage:
        """Count and bytes per template and in total."""
        return await self.index.usage()

    def unlink(self, rel: str) -> None:
        """Remove the file at ``rel`` (relative to the data dir); a missing file is fine."""
        _unlink_quietly(self._resolve(rel))

    def files(self) -> Iterator[tuple[str, float]]:
        """Finished capture files under the captures dir: (relative path, mtime); blocking."""
        if not self.captures_dir.is_dir():
            return
        for dirpath, _dirs, names in os.walk(self.captures_dir):
            for name in names:
                if is_temp_name(name):
                    continue
                full = Path(dirpath) / name
                try:
                    mtime = full.stat().st_mtime
                except FileNotFoundError:
                    continue
                yield full.relative_to(self.data_dir).as_posix(), mtime

    def _resolve(self, rel: str) -> Path:
        path = (self.data_dir / rel).resolve()
        # Defence in depth: ids are validated, but a tampered row must not reach outside.
        if not path.is_relative_to(self.captures_dir):
            raise StorageError(f"capture path {rel!r} is outside the captures directory")
        return path

    @asynccontextmanager
    async def _saving_lock(self, capture_id: str) -> AsyncIterator[None]:
        # Two concurrent saves of one id must not both write: the second waits, then finds it.
        # The entry lives while anyone holds or awaits it (a released lock is not yet re-taken
        # by its next waiter, so lock.locked() cannot tell).
        entry = self._saving.setdefault(capture_id, _Inflight())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._saving[capture_id]


@dataclass(slots=True)
class _Inflight:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def is_temp_name(name: str) -> bool:
    """True for a file still being written (hidden temp name); such files are never touched."""
    return name.startswith(".")


def encode_cursor(record: CaptureRecord) -> str:
    """An opaque cursor pointing just after ``record`` in newest-first order."""
    raw = json.dumps([record.captured_at.timestamp(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (captured_at, id) key inside a cursor; InvalidCursorError when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, capture_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as err:
        raise InvalidCursorError("invalid cursor") from err
    ok_time = isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
    if not ok_time or not isinstance(capture_id, str) or not _CAPTURE_ID_RE.match(capture_id):
        raise InvalidCursorError("invalid cursor")
    return float(at), capture_id


# --------------------------------------------------------------------------- helpers


def _aware(value: datetime, what: str) -> datetime:
    # A naive datetime would be read as the hub's local time: refuse rather than guess.
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value


def _capture_id(value: str | None) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not _CAPTURE_ID_RE.match(value):
        raise ProtocolError(f"invalid capture id {value!r}: use 8-64 characters a-z, 0-9")
    return value


def _capture_time(value: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"invalid capture time {value!r}")
    if not 0 < value < _MAX_TIMESTAMP:
        raise ProtocolError(f"capture time {value!r} is out of range")
    return float(value)


def _relative_path(agent_id: str, stream_id: str, captured_at: float, capture_id: str) -> str:
    when = datetime.fromtimestamp(captured_at, UTC)
    name = f"{when:%Y%m%dT%H%M%S}Z-{capture_id}.jpg"
    return f"{CAPTURES_DIR}/{agent_id}/{stream_id}/{when:%Y-%m-%d}/{name}"


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` via a fsynced temp file in the same directory."""
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as err:
        _unlink_quietly(tmp)
        raise StorageError(f"cannot write capture file {target}: {err}") from err


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def _where(filters: dict[str, Any]) -> tuple[builtins.list[str], builtins.list[Any]]:
    clauses: builtins.list[str] = []
    params: builtins.list[Any] = []
    for column in ("stream_id", "template_id", "agent_id"):
        if filters.get(column) is not None:
            clauses.append(f"{column} = ?")
            params.append(filters[column])
    if filters.get("since") is not None:
        clauses.append("captured_at >= ?")
        params.append(filters["since"])
    if filters.get("until") is not None:
        clauses.append("captured_at < ?")
        params.append(filters["until"])
    if filters.get("pinned") is not None:
        clauses.append("pinned = ?")
        params.append(int(filters["pinned"]))
    return clauses, params


def _find(conn: sqlite3.Connection, capture_id: str) -> CaptureRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM captures WHERE id = ?", (capture_id,)).fetchone()
    return _record(row) if row else None


def _params(r: CaptureRecord) -> tuple[Any, ...]:
    return (
        r.id, r.stream_id, r.agent_id, r.template_id, r.captured_at.timestamp(),
        r.saved_at.timestamp(), r.size, r.width, r.height, r.path, r.status, r.error,
        int(r.pinned), r.reason, r.seq,
    )  # fmt: skip


def _record(row: tuple[Any, ...]) -> CaptureRecord:
    (cid, stream, agent, template, at, saved, size, w, h, path, status, error, pinned, reason,
     seq) = row  # fmt: skip
    return CaptureRecord(
        id=cid, stream_id=stream, agent_id=agent, template_id=template,
        captured_at=datetime.fromtimestamp(at, UTC), saved_at=datetime.fromtimestamp(saved, UTC),
        size=size, width=w, height=h, path=path, status=status, error=error,
        pinned=bool(pinned), reason=reason, seq=seq,
    )  # fmt: skip


def _row(row: tuple[Any, ...]) -> CaptureRow:
    cid, template, at, saved, size, pinned, path = row
    return CaptureRow(cid, template, at, saved, size, bool(pinned), path)
