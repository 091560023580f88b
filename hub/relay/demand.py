"""Demand leases: while a stream has viewers, tell its agent to send full rate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from glimpser.hub.store.replies import StreamKey
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.errors import TransportError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import Demand

_LOGGER = logging.getLogger(__name__)

PublishDemand = Callable[[str, str, Demand], Awaitable[None]]


class DemandLeases:
    """One renewal task per watched stream: publish at once, then every ttl/3 until released."""

    def __init__(self, publish: PublishDemand, hub_id: str, ttl: float) -> None:
        self._publish = publish
        self._demand = Demand(hub_id=hub_id, ttl=ttl)
        self._tasks: dict[StreamKey, asyncio.Task[None]] = {}
        self._log = RateLimitedLog(_LOGGER)

    def hold(self, key: StreamKey) -> None:
        """Start renewing the lease for ``key`` (no-op if already held)."""
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._renew(key), name=f"demand {key}")

    async def release(self, key: StreamKey) -> None:
        """Stop renewing; the agent falls back to its idle rate when the lease expires."""
        task = self._tasks.pop(key, None)
        if task is not None:
            await cancel_and_wait(task)

    async def aclose(self) -> None:
        """Release every lease and await their tasks."""
        for key in list(self._tasks):
            await self.release(key)

    def held(self) -> list[StreamKey]:
        """Streams whose lease is being renewed."""
        return list(self._tasks)

    async def _renew(self, key: StreamKey) -> None:
        # Renewing at ttl/3 lets two renewals get lost before the agent's lease runs out.
        period = self._demand.ttl / 3
        while True:
            try:
                await self._publish(key[0], key[1], self._demand)
            except TransportError as err:
                self._log.warning(f"demand:{key}", "cannot renew demand for %s.%s: %s", *key, err)
            await asyncio.sleep(period)
