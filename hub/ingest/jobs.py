"""One worker task that runs the ingest's database writes in arrival order, off the router.

``Router.route`` is synchronous and must never wait on SQLite or the disk, so it submits small
async jobs here. Drop policy: the queue is bounded; when it is full the *new* job is dropped and
counted by kind (``glimpser_hub_jobs_dropped_total``). Dropping the newest keeps the order of
what was accepted; stream states are retained and repeat, agent template lists are retained and
re-sent on reconnect, and a dropped capture is logged at WARNING by its submitter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from glimpser.hub.metrics import HubMetrics
from glimpser.shared.aio import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
DRAIN_TIMEOUT = 5.0


class JobQueue:
    """A bounded FIFO of async jobs and the one task that runs them, one at a time."""

    def __init__(self, metrics: HubMetrics, maxsize: int = 1000) -> None:
        self._metrics = metrics
        self._queue: asyncio.Queue[tuple[str, Job]] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None

    def submit(self, kind: str, job: Job) -> bool:
        """Queue ``job``; False (and counted) when the queue is full or the worker is not up."""
        if self._task is None:
            self._metrics.jobs_dropped[kind] += 1
            return False
        try:
            self._queue.put_nowait((kind, job))
        except asyncio.QueueFull:
            self._metrics.jobs_dropped[kind] += 1
            return False
        return True

    def depth(self) -> int:
        """Jobs waiting right now."""
        return self._queue.qsize()

    async def join(self) -> None:
        """Return once every job submitted so far has run (tests and shutdown)."""
        await self._queue.join()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="hub ingest jobs")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Run what is queued (bounded by DRAIN_TIMEOUT), then stop the worker."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                await self._queue.join()
        except TimeoutError:
            _LOGGER.warning("stopping with %d ingest jobs not run", self._queue.qsize())
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            kind, job = await self._queue.get()
            try:
                await job()
            except Exception:  # one failed write must not stop the ones behind it
                self._metrics.jobs_failed[kind] += 1
                _LOGGER.exception("ingest job %s failed", kind)
            finally:
                self._queue.task_done()
