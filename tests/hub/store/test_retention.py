"""Retention: the pure planner, then the executor, reconcile and worker on real files."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from glimpser.hub.store.captures import CaptureRow, CaptureStore, SqliteCaptureIndex
from glimpser.hub.store.db import Database
from glimpser.hub.store.retention import (
    RetentionPlan,
    RetentionSettings,
    RetentionWorker,
    apply_plan,
    plan_retention,
    reconcile,
    template_policies,
)
from glimpser.hub.store.templates import SqliteTemplates
from glimpser.shared.models import FrameMeta, RetentionPolicy, Template
from tests.helpers import wait_for

DAY = 86400.0
NOW = 1_800_000_000.0
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 996 + b"\xff\xd9"  # 1002 bytes


def row(n: int, template: str = "t1", *, age: float | None = None, size: int = 100,
        pinned: bool = False, saved_ago: float = 3600.0) -> CaptureRow:  # fmt: skip
    """Capture n; by default captured n seconds after 'one day + 1000 s ago', saved an hour ago."""
    at = NOW - (age if age is not None else DAY + 1000 - n)
    return CaptureRow(f"c{n:04d}", template, at, NOW - saved_ago, size, pinned, f"p/{n}")


def plan(rows: list[CaptureRow], policies: dict[str, RetentionPolicy] | None = None,
         free: int | None = None, **settings: object) -> RetentionPlan:  # fmt: skip
    return plan_retention(
        rows, policies=policies or {}, settings=RetentionSettings(**settings),  # type: ignore[arg-type]
        free_bytes=free, now=NOW,
    )  # fmt: skip


def ids(*ns: int) -> tuple[str, ...]:
    return tuple(f"c{n:04d}" for n in ns)


# --------------------------------------------------------------------------- planner


def test_no_limits_delete_nothing() -> None:
    assert plan([row(n) for n in range(5)]).ids == ()


def test_per_template_count_deletes_oldest_first() -> None:
    rows = [row(n) for n in range(5)] + [row(10 + n, "t2") for n in range(5)]
    result = plan(rows, {"t1": RetentionPolicy(max_count=3)})
    assert result.ids == ids(0, 1)
    assert result.reasons["c0000"] == "template t1 max_count"


def test_age_limit_follows_now() -> None:
    rows = [row(1, age=3 * DAY), row(2, age=1.5 * DAY), row(3, age=0.5 * DAY)]
    assert plan(rows, {"t1": RetentionPolicy(max_age_days=1)}).ids == ids(1, 2)
    assert plan(rows, {"t1": RetentionPolicy(max_age_days=2)}).ids == ids(1)


def test_bytes_limit() -> None:
    rows = [row(n, size=1000) for n in range(5)]
    result = plan(rows, {"t1": RetentionPolicy(max_bytes=2500)})
    assert result.ids == ids(0, 1, 2) and result.bytes == 3000


def test_global_limits_apply_across_templates_after_per_template_ones() -> None:
    rows = [row(n, "t1" if n % 2 else "t2") for n in range(10)]
    result = plan(rows, {"t1": RetentionPolicy(max_count=2)},
                  global_policy=RetentionPolicy(max_count=4))  # fmt: skip
    # t1 (odd) keeps 7 and 9; then the global limit drops the oldest t2 ones down to 4 total.
    assert set(result.ids) == set(ids(1, 3, 5, 0, 2, 4))
    assert result.reasons["c0000"] == "global max_count"


def test_free_disk_floor_deletes_until_enough_is_free() -> None:
    rows = [row(n, size=100) for n in range(10)]
    assert plan(rows, free=1000, min_free_bytes=800).ids == ()
    result = plan(rows, free=100, min_free_bytes=350)
    assert result.ids == ids(0, 1, 2) and result.reasons["c0002"] == "free disk floor"
    # Bytes already freed by a limit count toward the floor.
    both = plan(rows, {"t1": RetentionPolicy(max_count=8)}, free=100, min_free_bytes=350)
    assert both.ids == ids(0, 1, 2)


def test_pinned_are_never_deleted_nor_counted() -> None:
    rows = [row(n, pinned=n < 3, age=10 * DAY) for n in range(6)]
    policy = {"t1": RetentionPolicy(max_age_days=1, max_count=1)}
    result = plan(rows, policy, free=0, min_free_bytes=10**12)
    assert result.ids == ids(3, 4, 5)
    counted = plan(rows, {"t1": RetentionPolicy(max_count=3)})
    assert counted.ids == ()  # three unpinned rows, limit three: pinned ones don't count


def test_fresh_captures_are_never_deleted() -> None:
    rows = [row(n, saved_ago=2.0, age=10 * DAY) for n in range(3)]
    assert plan(rows, {"t1": RetentionPolicy(max_age_days=1, max_count=1)},
                free=0, min_free_bytes=10**9).ids == ()  # fmt: skip
    assert plan(rows, {"t1": RetentionPolicy(max_count=1)}, fresh_seconds=1.0).ids == ids(0, 1)


# --------------------------------------------------------------------------- on disk


class Clock:
    """A settable clock for saved_at and the worker's now."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(tmp_path / "hub.db") as database:
        yield database


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(db: Database, tmp_path: Path, clock: Clock) -> CaptureStore:
    return CaptureStore(SqliteCaptureIndex(db), tmp_path / "data", clock=clock)


async def fill(store: CaptureStore, count: int, template: str = "t1", start: int = 0) -> None:
    for n in range(start, start + count):
        meta = FrameMeta(seq=n, captured_at=NOW - DAY + n, capture_id=f"cap{n:06d}")
        await store.save(stream_id=template, agent_id="pi1", template_id=template, jpeg=JPEG,
                         meta=meta)  # fmt: skip


async def assert_disk_matches_index(store: CaptureStore) -> None:
    """No orphan file, no orphan row: finished files on disk == paths in the index."""
    on_disk = {rel for rel, _ in store.files()}
    indexed = {r.path for r in await store.index.rows()}
    assert on_disk == indexed


def worker(store: CaptureStore, clock: Clock, policies: dict[str, RetentionPolicy],
           free: int = 10**12, **settings: object) -> RetentionWorker:  # fmt: skip
    async def get_policies() -> dict[str, RetentionPolicy]:
        return policies

    return RetentionWorker(
        store, get_policies, RetentionSettings(**settings),  # type: ignore[arg-type]
        free_disk=lambda _path: free, clock=clock,
    )  # fmt: skip


async def test_worker_pass_removes_files_and_rows_together(
    store: CaptureStore, clock: Clock
) -> None:
    await fill(store, 10)
    await fill(store, 4, "t2", start=100)
    await store.pin("cap000000")
    # A file still being written: hidden temp name next to real captures.
    temp = store.captures_dir / "pi1" / "t1" / ".incoming.jpg.tmp-abcd"
    temp.write_bytes(b"partial")
    clock.now = NOW + 60
    result = await worker(store, clock, {"t1": RetentionPolicy(max_count=3)}).run_once()
    assert {r.id for r in result.removed} == {f"cap{n:06d}" for n in range(1, 7)}
    assert result.freed_bytes == 6 * len(JPEG)
    assert temp.read_bytes() == b"partial"
    remaining = {r.id for r in await store.index.rows()}
    assert "cap000000" in remaining and len(remaining) == 4 + 4
    await assert_disk_matches_index(store)


async def test_worker_free_disk_floor_and_fresh_capture(store: CaptureStore, clock: Clock) -> None:
    await fill(store, 5)
    clock.now = NOW + 3600
    await fill(store, 1, start=50)  # saved "now": fresh
    w = worker(store, clock, {}, free=0, min_free_bytes=10**9)
    result = await w.run_once()
    assert len(result.removed) == 5
    assert [r.id for r in await store.index.rows()] == ["cap000050"]
    await assert_disk_matches_index(store)


async def test_worker_age_limit_driven_by_the_clock(store: CaptureStore, clock: Clock) -> None:
    await fill(store, 3)
    policies = {"t1": RetentionPolicy(max_age_days=2)}
    clock.now = NOW + 0.5 * DAY
    assert (await worker(store, clock, policies).run_once()).removed == ()
    clock.now = NOW + 1.5 * DAY
    assert len((await worker(store, clock, policies).run_once()).removed) == 3
    await assert_disk_matches_index(store)


async def test_global_bytes_limit_on_disk(store: CaptureStore, clock: Clock) -> None:
    await fill(store, 4)
    await fill(store, 4, "t2", start=10)
    clock.now = NOW + 60
    w = worker(store, clock, {}, global_policy=RetentionPolicy(max_bytes=3 * len(JPEG)))
    await w.run_once()
    usage = await store.usage()
    assert usage.total.bytes <= 3 * len(JPEG) and usage.total.count == 3
    await assert_disk_matches_index(store)


async def test_apply_plan_spares_a_capture_pinned_after_planning(
    store: CaptureStore, clock: Clock
) -> None:
    await fill(store, 3)
    rows = await store.index.rows()
    policies = {"t1": RetentionPolicy(max_count=1)}
    the_plan = plan_retention(
        rows, policies=policies, settings=RetentionSettings(), free_bytes=None, now=NOW + 60
    )
    assert len(the_plan.ids) == 2
    await store.pin(the_plan.ids[0])
    removed = await apply_plan(store, the_plan)
    assert [r.id for r in removed] == [the_plan.ids[1]]
    await assert_disk_matches_index(store)


async def test_reconcile_removes_both_kinds_of_orphans(store: CaptureStore) -> None:
    await fill(store, 3)
    rows = await store.index.rows()
    (store.data_dir / rows[0].path).unlink()  # row without file
    stray = store.captures_dir / "pi1" / "t1" / "stray.jpg"  # file without row
    stray.write_bytes(JPEG)
    young = store.captures_dir / "pi1" / "young.jpg"  # too recent to judge
    young.write_bytes(JPEG)
    temp = store.captures_dir / ".x.jpg.tmp-0000"
    temp.write_bytes(b"")
    old = time.time() - 3600
    os.utime(stray, (old, old))
    os.utime(temp, (old, old))

    report = await reconcile(store, grace=300, now=time.time())
    assert report.rows_removed == (rows[0].id,)
    assert report.files_removed == ("captures/pi1/t1/stray.jpg",)
    assert young.exists() and temp.exists()
    young.unlink()
    await assert_disk_matches_index(store)


async def test_reconcile_never_deletes_an_indexed_file(store: CaptureStore) -> None:
    await fill(store, 2)
    report = await reconcile(store, grace=0, now=time.time() + 10**6)
    assert report.files_removed == () and report.rows_removed == ()
    assert len(await store.index.rows()) == 2


async def test_worker_runs_periodically_and_stops(store: CaptureStore, clock: Clock) -> None:
    await fill(store, 4)
    clock.now = NOW + 60
    w = worker(store, clock, {"t1": RetentionPolicy(max_count=1)})
    w.interval = 0.01
    async with w:
        await wait_for(lambda: w.passes >= 3, timeout=5)
    passes = w.passes
    assert len(await store.index.rows()) == 1
    await assert_disk_matches_index(store)
    assert w.passes == passes  # stopped with the context


async def test_policies_come_from_templates(db: Database) -> None:
    templates = SqliteTemplates(db)
    await templates.create(Template.model_validate({
        "id": "cam1", "name": "Cam", "source": {"kind": "test"},
        "capture": {"interval": 60, "retention": {"max_count": 5}},
    }))  # fmt: skip
    await templates.create(Template.model_validate(
        {"id": "cam2", "name": "Cam 2", "source": {"kind": "test"}}
    ))  # fmt: skip
    policies = await template_policies(templates)
    assert policies["cam1"].max_count == 5
    assert policies["cam2"] == RetentionPolicy()
