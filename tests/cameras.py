"""A fake HTTP MJPEG camera on 127.0.0.1 for source and end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import cv2
import numpy as np
from aiohttp import web


def numbered_jpeg(i: int) -> bytes:
    """A 320x240 JPEG showing ``cam <i>``."""
    image = np.zeros((240, 320, 3), np.uint8)
    cv2.putText(image, f"cam {i}", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def _handler(interval: float) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def mjpeg(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=cam"}
        )
        await resp.prepare(request)
        i = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                body = numbered_jpeg(i)
                await resp.write(
                    b"--cam\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                    + b"\r\n"
                )
                i += 1
                await asyncio.sleep(interval)
        return resp

    return mjpeg


@contextlib.asynccontextmanager
async def camera(
    port: int, interval: float = 0.05, shutdown_timeout: float = 0.2
) -> AsyncIterator[None]:
    """An HTTP MJPEG camera at ``http://127.0.0.1:<port>/video.mjpg`` while the context is open."""
    app = web.Application()
    app.router.add_get("/video.mjpg", _handler(interval))
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield
    finally:
        await runner.cleanup()
