"""Per-stream frame channels, viewer accounting and the demand lease that viewers imply."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.channel import FrameChannel, build_part
from glimpser.hub.relay.demand import DemandLeases
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.codec import DecodedFrame
from glimpser.shared.errors import GlimpserError

_LOGGER = logging.getLogger(__name__)


class ViewerLimitError(GlimpserError):
    """A stream already has the maximum number of viewers."""


class Relay:
    """Owns a FrameChannel per watched stream; channels exist only while someone watches."""

    def __init__(self, demand: DemandLeases, metrics: HubMetrics, max_viewers: int) -> None:
        self._demand = demand
        self._metrics = metrics
        self._max_viewers = max_viewers
        self._channels: dict[StreamKey, FrameChannel] = {}
        self._closed = False

    def publish(self, key: StreamKey, jpeg: bytes) -> None:
        """Fan a new frame out to the stream's viewers; free when nobody watches."""
        channel = self._channels.get(key)
        if channel is None:
            return
        channel.publish(build_part(jpeg))
        self._metrics.frames_relayed += 1

    @asynccontextmanager
    async def watch(
        self, key: StreamKey, latest: DecodedFrame | None
    ) -> AsyncIterator[FrameChannel]:
        """Register a viewer of ``key`` (primed with ``latest``); ViewerLimitError at the cap."""
        if self._closed:
            raise ViewerLimitError("the hub is shutting down")
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = FrameChannel()
            if latest is not None:
                channel.publish(build_part(latest.jpeg))
        if channel.viewers >= self._max_viewers:
            raise ViewerLimitError(
                f"stream {key[0]}.{key[1]} already has {self._max_viewers} viewers"
            )
        channel.viewers += 1
        self._demand.hold(key)
        try:
            yield channel
        finally:
            channel.viewers -= 1
            if channel.viewers == 0 and self._channels.get(key) is channel:
                del self._channels[key]
                await self._demand.release(key)

    def viewers(self, key: StreamKey) -> int:
        """Viewers currently watching ``key``."""
        channel = self._channels.get(key)
        return channel.viewers if channel else 0

    def total_viewers(self) -> int:
        """Viewers across every stream."""
        return sum(c.viewers for c in self._channels.values())

    def close_viewers(self) -> None:
        """End every MJPEG response (first step of shutdown) and refuse new viewers."""
        self._closed = True
        for channel in self._channels.values():
            channel.close()

    async def aclose(self) -> None:
        """Close viewers and release every demand lease."""
        self.close_viewers()
        await self._demand.aclose()
