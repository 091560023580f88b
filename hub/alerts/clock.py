"""Injectable time: the engine and dispatcher read ``now`` and sleep only through a Clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time and sleeping, replaceable in tests."""

    def now(self) -> datetime:
        """Timezone-aware now."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: UTC now and asyncio.sleep."""

    def now(self) -> datetime:
        """Timezone-aware now in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when ``advance`` is called; sleepers wake in deadline order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        """The current manual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock is advanced past now + ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._sleepers, (self._now + timedelta(seconds=seconds), next(self._seq), future)
        )
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (lets tests wait until a timer is armed)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking due sleepers, and let their tasks run a little."""
        self._now += timedelta(seconds=seconds)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        # Give woken tasks a few loop turns to act before the test looks.
        for _ in range(5):
            await asyncio.sleep(0)
