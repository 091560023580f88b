"""Capture retention: pure planning, a careful executor, reconciliation and a periodic worker.

Planning (``plan_retention``) is a pure function of the index rows, the policies, the free-disk
figure and ``now``, so every rule is unit-testable without a disk. Pinned captures are outside
every limit (they neither count nor get deleted); captures saved in the last ``fresh_seconds`` are
counted but never deleted, so a file the ingest path is still handing over is safe.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from glimpser.hub.store.captures import CaptureRow, CaptureStore
from glimpser.hub.store.templates import TemplateRepository
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.models import RetentionPolicy

__all__ = [
    "ReconcileReport",
    "RetentionPlan",
    "RetentionResult",
    "RetentionSettings",
    "RetentionWorker",
    "apply_plan",
    "disk_free",
    "plan_retention",
    "reconcile",
    "template_policies",
]

log = logging.getLogger(__name__)

DAY = 86400.0
BATCH = 200


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """Hub-wide retention knobs (per-template limits live in each template's RetentionPolicy)."""

    global_policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    min_free_bytes: int = 0
    fresh_seconds: float = 10.0
    orphan_grace: float = 300.0


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Capture ids to delete, oldest first, with why each goes."""

    ids: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)
    bytes: int = 0


def plan_retention(
    rows: Iterable[CaptureRow],
    *,
    policies: Mapping[str, RetentionPolicy],
    settings: RetentionSettings,
    free_bytes: int | None,
    now: float,
) -> RetentionPlan:
    """Which captures to delete: per-template limits, then global limits, then the disk floor."""
    planner = _Planner(rows, now, settings.fresh_seconds)
    for template_id, group in planner.by_template().items():
        policy = policies.get(template_id)
        if policy is not None:
            planner.enforce(group, policy, f"template {template_id}")
    planner.enforce(planner.rows, settings.global_policy, "global")
    if free_bytes is not None and settings.min_free_bytes > 0:
        planner.free_up(settings.min_free_bytes - free_bytes)
    return planner.plan()


class _Planner:
    """Marks the oldest deletable rows until each limit holds (or nothing deletable remains)."""

    def __init__(self, rows: Iterable[CaptureRow], now: float, fresh_seconds: float) -> None:
        self.now = now
        self.fresh_before = now - fresh_seconds
        self.rows = sorted((r for r in rows if not r.pinned), key=lambda r: (r.captured_at, r.id))
        self.doomed: dict[str, str] = {}
        self.doomed_bytes = 0

    def by_template(self) -> dict[str, list[CaptureRow]]:
        groups: dict[str, list[CaptureRow]] = {}
        for row in self.rows:
            groups.setdefault(row.template_id, []).append(row)
        return groups

    def enforce(self, rows: Sequence[CaptureRow], policy: RetentionPolicy, scope: str) -> None:
        if policy.max_age_days is not None:
            cutoff = self.now - policy.max_age_days * DAY
            for row in self._live(rows):
                if row.captured_at < cutoff:
                    self._mark(row, f"{scope} max_age_days")
        if policy.max_count is not None:
            excess = len(self._live(rows)) - policy.max_count
            for row in self._live(rows):
                if excess <= 0:
                    break
                if self._mark(row, f"{scope} max_count"):
                    excess -= 1
        if policy.max_bytes is not None:
            live = self._live(rows)
            excess = sum(r.size for r in live) - policy.max_bytes
            for row in live:
                if excess <= 0:
                    break
                if self._mark(row, f"{scope} max_bytes"):
                    excess -= row.size

    def free_up(self, needed: int) -> None:
        # Bytes the limits above already free count toward the floor.
        needed -= self.doomed_bytes
        for row in self._live(self.rows):
            if needed <= 0:
                break
            if self._mark(row, "free disk floor"):
                needed -= row.size

    def plan(self) -> RetentionPlan:
        ids = tuple(r.id for r in self.rows if r.id in self.doomed)
        return RetentionPlan(ids=ids, reasons=dict(self.doomed), bytes=self.doomed_bytes)

    def _live(self, rows: Sequence[CaptureRow]) -> list[CaptureRow]:
        return [r for r in rows if r.id not in self.doomed]

    def _mark(self, row: CaptureRow, reason: str) -> bool:
        if row.saved_at > self.fresh_before:
            return False
        self.doomed[row.id] = reason
        self.doomed_bytes += row.size
        return True


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Index rows whose file had vanished, and unindexed files, that reconcile removed."""

    rows_removed: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass removed."""

    removed: tuple[CaptureRow, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)
    reconcile: ReconcileReport | None = None

    @property
    def freed_bytes(self) -> int:
        """Bytes of the capture files removed by the plan."""
        return sum(r.size for r in self.removed)


async def apply_plan(store: CaptureStore, plan: RetentionPlan) -> list[CaptureRow]:
    """Delete the planned captures (file, then row); pinned-since-planning ones are spared."""
    removed: list[CaptureRow] = []
    for start in range(0, len(plan.ids), BATCH):
        # Batches keep the DB thread free for other requests between chunks.
        batch = list(plan.ids[start : start + BATCH])
        removed += await store.index.remove(batch, store.unlink, only_unpinned=True)
    return removed


async def reconcile(store: CaptureStore, *, grace: float, now: float) -> ReconcileReport:
    """Drop rows whose file is gone and unindexed files older than ``grace`` seconds."""
    rows = await store.index.rows()
    gone = await asyncio.to_thread(_missing_files, store, rows)
    rows_removed = await store.index.remove_rows(gone)
    indexed = {r.path for r in rows}
    cutoff = now - grace
    # Only files older than the grace period: a file just renamed into place is indexed right
    # after, and unlink_unindexed re-checks the index on the DB thread before unlinking.
    candidates = await asyncio.to_thread(
        lambda: [rel for rel, mtime in store.files() if rel not in indexed and mtime < cutoff]
    )
    files_removed = await store.index.unlink_unindexed(candidates, store.unlink)
    return ReconcileReport(tuple(rows_removed), tuple(files_removed))


def _missing_files(store: CaptureStore, rows: Iterable[CaptureRow]) -> list[str]:
    return [r.id for r in rows if not (store.data_dir / r.path).is_file()]


def disk_free(path: Path) -> int:
    """Bytes free for unprivileged users on the filesystem holding ``path``."""
    return shutil.disk_usage(path).free


async def template_policies(templates: TemplateRepository) -> dict[str, RetentionPolicy]:
    """Each stored template's capture retention policy, by template id."""
    policies: dict[str, RetentionPolicy] = {}
    offset = 0
    while True:
        page, total = await templates.list(offset=offset, limit=1000)
        for record in page:
            policies[record.template.id] = record.template.capture.retention
        offset += len(page)
        if not page or offset >= total:
            return policies


class RetentionWorker:
    """Runs retention every ``interval`` seconds (reconcile every ``reconcile_every`` passes)."""

    def __init__(
        self,
        store: CaptureStore,
        policies: Callable[[], Awaitable[Mapping[str, RetentionPolicy]]],
        settings: RetentionSettings | None = None,
        *,
        interval: float = 300.0,
        reconcile_every: int = 12,
        free_disk: Callable[[Path], int] = disk_free,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0 or reconcile_every < 1:
            raise ValueError("interval must be > 0 and reconcile_every >= 1")
        self.store = store
        self.settings = settings or RetentionSettings()
        self.interval = interval
        self.reconcile_every = reconcile_every
        self._policies = policies
        self._free_disk = free_disk
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._loop(), name="capture-retention")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        await cancel_and_wait(self._task)
        self._task = None

    async def run_once(self, *, with_reconcile: bool = False) -> RetentionResult:
        """One pass: plan, apply, optionally reconcile; logs what it removed."""
        now = self._clock()
        rows = await self.store.index.rows()
        free = await asyncio.to_thread(self._free_bytes)
        plan = plan_retention(
            rows, policies=await self._policies(), settings=self.settings, free_bytes=free, now=now
        )
        removed = await apply_plan(self.store, plan)
        report = None
        if with_reconcile:
            report = await reconcile(self.store, grace=self.settings.orphan_grace, now=now)
        result = RetentionResult(tuple(removed), plan.reasons, report)
        _log_result(result)
        self.passes += 1
        return result

    def _free_bytes(self) -> int | None:
        if self.settings.min_free_bytes <= 0:
            return None
        self.store.data_dir.mkdir(parents=True, exist_ok=True)
        return self._free_disk(self.store.data_dir)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once(with_reconcile=self.passes % self.reconcile_every == 0)
            except Exception:
                # One failed pass (disk error, locked DB) must not end retention for good.
                log.exception("capture retention pass failed; retrying in %.0f s", self.interval)
                self.passes += 1
            await asyncio.sleep(self.interval)


def _log_result(result: RetentionResult) -> None:
    if result.removed:
        why = Counter(result.reasons.get(r.id, "?") for r in result.removed)
        log.info(
            "retention removed %d captures (%d bytes): %s",
            len(result.removed),
            result.freed_bytes,
            ", ".join(f"{n} by {reason}" for reason, n in sorted(why.items())),
        )
    report = result.reconcile
    if report is not None and (report.rows_removed or report.files_removed):
        log.warning(
            "reconcile removed %d index rows with no file and %d files with no row",
            len(report.rows_removed),
            len(report.files_removed),
        )
