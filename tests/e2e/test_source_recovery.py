"""A camera URL that goes away puts the stream in error; it recovers when the camera returns."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cameras import camera as mjpeg_camera
from tests.e2e.deploy import deployed, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@contextlib.asynccontextmanager
async def camera(port: int) -> AsyncIterator[None]:
    """An HTTP MJPEG camera at 10 fps on 127.0.0.1:port while the context is open."""
    async with mjpeg_camera(port, interval=0.1, shutdown_timeout=0.5):
        yield


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
