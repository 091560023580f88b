"""The MJPEG response: one write per part, a stalled viewer is dropped, never waited on."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.channel import CONTENT_TYPE, FrameChannel

_LOGGER = logging.getLogger(__name__)

_HEADERS = {
    "Content-Type": CONTENT_TYPE,
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    # Tell nginx-style proxies not to buffer an endless response.
    "X-Accel-Buffering": "no",
}


async def stream_parts(
    request: web.Request, channel: FrameChannel, metrics: HubMetrics, write_timeout: float
) -> web.StreamResponse:
    """Write the channel's newest part each time one appears, until the viewer or hub leaves."""
    response = web.StreamResponse(headers=_HEADERS)
    await response.prepare(request)
    seen = 0
    try:
        while (item := await channel.next_part(seen)) is not None:
            seen, part = item
            async with asyncio.timeout(write_timeout):
                await response.write(part)
            metrics.parts_sent += 1
    except TimeoutError:
        metrics.viewers_dropped += 1
        _LOGGER.info("dropped MJPEG viewer %s: socket stalled", request.remote)
        # Abort rather than close: a graceful close would wait on the same full buffer.
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        pass  # the viewer went away; nothing to report
    return response
