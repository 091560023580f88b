"""A camera URL that goes away puts the stream in error; it recovers when the camera returns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web

from tests.e2e.deploy import deployed, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _jpeg(i: int) -> bytes:
    img = np.zeros((240, 320, 3), np.uint8)
    cv2.putText(img, f"cam {i}", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


async def _mjpeg(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Type": "multipart/x-mixed-replace; boundary=cam"}
    )
    await resp.prepare(request)
    i = 0
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while True:
            body = _jpeg(i)
            await resp.write(
                b"--cam\r\nContent-Type: image/jpeg\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
                + b"\r\n"
            )
            i += 1
            await asyncio.sleep(0.1)
    return resp


@contextlib.asynccontextmanager
async def camera(port: int) -> AsyncIterator[None]:
    """An HTTP MJPEG camera on 127.0.0.1:port while the context is open."""
    app = web.Application()
    app.router.add_get("/video.mjpg", _mjpeg)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


async def test_camera_down_error_then_recovers(broker: Any, tmp_path: Path) -> None:
    port = free_port()
    tpl = {
        "id": "ipcam",
        "name": "IP camera",
        "source": {"kind": "http", "url": f"http://127.0.0.1:{port}/video.mjpg"},
        "fps": 5,
        "keepalive": 2,
    }
    async with deployed(tmp_path, broker.host, broker.port, [tpl]) as dep:
        # Camera not there yet: a readable error, not a placeholder.
        info = await dep.wait_status("ipcam", "error", timeout=30)
        assert info["error"] and "127.0.0.1" in info["error"], info

        async with camera(port):
            info = await dep.wait_status("ipcam", "active", timeout=60)
            assert info["resolution"] == "320x240"

        info = await dep.wait_status("ipcam", "error", timeout=60)
        assert info["error"]

        async with camera(port):
            await dep.wait_status("ipcam", "active", timeout=60)
