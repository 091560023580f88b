"""Capture files and index: save, list with filters and cursors, get, delete, pin, usage."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from glimpser.hub.store.captures import (
    CaptureRecord,
    CaptureRepository,
    CaptureStore,
    InvalidCursorError,
    SqliteCaptureIndex,
    is_temp_name,
)
from glimpser.hub.store.db import Database
from glimpser.shared.errors import InvalidIdError, NotFoundError, ProtocolError
from glimpser.shared.models import FrameMeta

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"
T0 = 1_700_000_000.0


def capture_id(n: int) -> str:
    return f"cap{n:08d}"


def meta(n: int, at: float | None = None) -> FrameMeta:
    return FrameMeta(seq=n, captured_at=T0 + n if at is None else at, capture_id=capture_id(n))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CaptureStore]:
    async with Database(tmp_path / "hub.db") as db:
        yield CaptureStore(SqliteCaptureIndex(db), tmp_path / "data")


async def save(
    store: CaptureStore, n: int, *, stream: str = "s1", template: str = "t1", size: int = 0
) -> CaptureRecord:
    body = JPEG + b"\x00" * size
    return await store.save(
        stream_id=stream, agent_id="pi1", template_id=template, jpeg=body, meta=meta(n),
        width=640, height=480,
    )  # fmt: skip


def files_on_disk(store: CaptureStore) -> set[str]:
    """Every file under the data dir, temp files included, relative to it."""
    out = set()
    for dirpath, _dirs, names in os.walk(store.data_dir):
        for name in names:
            out.add((Path(dirpath) / name).relative_to(store.data_dir).as_posix())
    return out


def test_sqlite_index_is_a_capture_repository(tmp_path: Path) -> None:
    impl: CaptureRepository = SqliteCaptureIndex(Database(tmp_path / "x.db"))
    assert impl is not None


async def test_save_writes_file_then_index(store: CaptureStore) -> None:
    record = await save(store, 1)
    assert record.id == capture_id(1) and record.size == len(JPEG) and not record.pinned
    assert record.captured_at == datetime.fromtimestamp(T0 + 1, UTC)
    assert (record.width, record.height, record.seq) == (640, 480, 1)
    path = await store.path_of(record.id)
    assert path.read_bytes() == JPEG
    assert path.is_relative_to(store.captures_dir)
    assert record.path.startswith("captures/pi1/s1/")
    assert files_on_disk(store) == {record.path}  # no temp file left behind
    assert await store.get(record.id) == record


async def test_saving_the_same_id_twice_is_idempotent(store: CaptureStore) -> None:
    first = await save(store, 1)
    again = await store.save(
        stream_id="s1", agent_id="pi1", template_id="t1", jpeg=JPEG + b"different",
        meta=meta(1, at=T0 + 999),
    )  # fmt: skip
    assert again == first
    assert (await store.path_of(first.id)).read_bytes() == JPEG
    assert files_on_disk(store) == {first.path}


async def test_concurrent_saves_of_one_id_write_once(store: CaptureStore) -> None:
    results = await asyncio.gather(*(save(store, 7) for _ in range(5)))
    assert len({r.model_dump_json() for r in results}) == 1
    assert (await store.usage()).total.count == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream_id", "../etc"),
        ("stream_id", "a/b"),
        ("agent_id", ".."),
        ("template_id", "UPPER"),
        ("agent_id", "x" * 64),
    ],
)
async def test_hostile_ids_are_rejected(store: CaptureStore, field: str, value: str) -> None:
    kwargs = {"stream_id": "s1", "agent_id": "pi1", "template_id": "t1", field: value}
    with pytest.raises(InvalidIdError):
        await store.save(
            stream_id=kwargs["stream_id"], agent_id=kwargs["agent_id"],
            template_id=kwargs["template_id"], jpeg=JPEG, meta=meta(1),
        )  # fmt: skip
    assert files_on_disk(store) == set()


async def test_hostile_capture_ids_and_bad_input_are_rejected(store: CaptureStore) -> None:
    for bad in ("../../../../tmp/x", "ABCDEFGH1", "short", "a" * 65):
        hostile = FrameMeta.model_construct(seq=0, captured_at=T0, capture_id=bad)
        with pytest.raises(ProtocolError, match="capture id"):
            await store.save(stream_id="s1", agent_id="pi1", template_id="t1", jpeg=JPEG,
                             meta=hostile)  # fmt: skip
    with pytest.raises(ProtocolError, match="not a JPEG"):
        await store.save(stream_id="s1", agent_id="pi1", template_id="t1", jpeg=b"<html>",
                         meta=meta(1))  # fmt: skip
    for at in (float("nan"), float("inf"), -5.0, 1e12):
        odd = FrameMeta.model_construct(seq=0, captured_at=at, capture_id="abcdefgh")
        with pytest.raises(ProtocolError, match="capture time"):
            await store.save(stream_id="s1", agent_id="pi1", template_id="t1", jpeg=JPEG,
                             meta=odd)  # fmt: skip
    assert files_on_disk(store) == set()


async def test_capture_without_id_gets_one(store: CaptureStore) -> None:
    record = await store.save(stream_id="s1", agent_id="pi1", template_id="t1", jpeg=JPEG,
                              meta=FrameMeta(seq=1, captured_at=T0))  # fmt: skip
    assert len(record.id) == 32


async def test_list_newest_first_with_cursor_paging(store: CaptureStore) -> None:
    for n in range(12):
        await save(store, n)
    # Equal timestamps must still page without loss or repeats: keyset on (captured_at, id).
    for n in range(12, 17):
        await store.save(stream_id="s1", agent_id="pi1", template_id="t1", jpeg=JPEG,
                         meta=meta(n, at=T0 + 5))  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list(limit=5, cursor=cursor)
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 17
    times = [(await store.get(i)).captured_at for i in seen]
    assert times == sorted(times, reverse=True)


async def test_list_filters(store: CaptureStore) -> None:
    for n in range(6):
        await save(store, n, stream="s1" if n < 4 else "s2", template="t1" if n < 4 else "t2")
    assert len((await store.list(stream_id="s2")).items) == 2
    assert len((await store.list(template_id="t1")).items) == 4
    since = datetime.fromtimestamp(T0 + 2, UTC)
    until = datetime.fromtimestamp(T0 + 4, UTC)
    window = await store.list(since=since, until=until)
    assert [r.id for r in window.items] == [capture_id(3), capture_id(2)]
    await store.pin(capture_id(1))
    assert [r.id for r in (await store.list(pinned=True)).items] == [capture_id(1)]
    assert (await store.list(stream_id="nope")).items == []


async def test_bad_cursor_and_limit_are_rejected(store: CaptureStore) -> None:
    for bad in ("garbage!", "bm90IGpzb24", "WzEsICIuLi8uLiJd"):
        with pytest.raises(InvalidCursorError):
            await store.list(cursor=bad)
    with pytest.raises(ValueError):
        await store.list(limit=0)
    with pytest.raises(ValueError, match="timezone"):
        await store.list(since=datetime(2024, 1, 1))  # naive on purpose


async def test_delete_removes_file_and_row(store: CaptureStore) -> None:
    keep = await save(store, 1)
    gone = await save(store, 2)
    await store.pin(gone.id)
    await store.delete(gone.id)  # an explicit delete wins over the pin
    with pytest.raises(NotFoundError):
        await store.get(gone.id)
    with pytest.raises(NotFoundError):
        await store.delete(gone.id)
    assert files_on_disk(store) == {keep.path}


async def test_pin_and_unpin(store: CaptureStore) -> None:
    record = await save(store, 1)
    assert (await store.pin(record.id)).pinned
    assert not (await store.pin(record.id, False)).pinned
    with pytest.raises(NotFoundError):
        await store.pin("unknown1", True)


async def test_path_of_a_vanished_file_is_not_found(store: CaptureStore) -> None:
    record = await save(store, 1)
    (store.data_dir / record.path).unlink()
    with pytest.raises(NotFoundError, match="no file"):
        await store.path_of(record.id)


async def test_usage_per_template_and_total(store: CaptureStore) -> None:
    await save(store, 1, template="t1", size=10)
    await save(store, 2, template="t1", size=20)
    await save(store, 3, template="t2")
    usage = await store.usage()
    assert usage.total.count == 3
    assert usage.total.bytes == 3 * len(JPEG) + 30
    assert usage.per_template["t1"].count == 2
    assert usage.per_template["t2"].bytes == len(JPEG)


async def test_index_survives_a_restart(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db") as db:
        record = await save(CaptureStore(SqliteCaptureIndex(db), tmp_path / "data"), 1)
        await CaptureStore(SqliteCaptureIndex(db), tmp_path / "data").pin(record.id)
    async with Database(tmp_path / "hub.db") as db:
        again = await CaptureStore(SqliteCaptureIndex(db), tmp_path / "data").get(record.id)
    assert again == record.model_copy(update={"pinned": True})


def test_temp_names_are_hidden_files() -> None:
    assert is_temp_name(".20240101T000000Z-abcdefgh.jpg.tmp-1234")
    assert not is_temp_name("20240101T000000Z-abcdefgh.jpg")
