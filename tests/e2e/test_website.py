"""A website template on a real agent: a real Chromium screenshots a page the test serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
import pytest
from aiohttp import web

from tests.e2e.deploy import Deployment, deployed, eventually, free_port
from tests.transports import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


class Page:
    """A page whose background colour the test controls."""

    def __init__(self) -> None:
        self.colour = "rgb(0, 128, 255)"

    async def handle(self, request: web.Request) -> web.Response:
        html = (
            "<html><body style='margin:0;background:" + self.colour + "'>"
            "<div id='banner' style='position:fixed;top:0;left:0;width:100%;height:60px;"
            "background:red'>cookies?</div></body></html>"
        )
        return web.Response(text=html, content_type="text/html")


@contextlib.asynccontextmanager
async def serve(page: Page) -> AsyncIterator[int]:
    """Serve ``page`` on a free loopback port."""
    app = web.Application()
    app.router.add_get("/", page.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def website(port: int) -> dict[str, Any]:
    """A small website template that removes the banner."""
    return {
        "id": "status-page",
        "name": "Status page",
        "source": {
            "kind": "website",
            "url": f"http://127.0.0.1:{port}/",
            "viewport_width": 400,
            "viewport_height": 300,
            "remove_selectors": ["#banner"],
            "timeout": 10,
            "change_threshold": 0.05,
        },
        "interval": 1,
        "keepalive": 3,
    }


def _chromium_pids(agent_pid: int) -> list[int]:
    children = psutil.Process(agent_pid).children(recursive=True)
    return [p.pid for p in children if "chrom" in p.name().lower()]


async def _snapshot(dep: Deployment) -> np.ndarray:
    assert dep.http is not None
    async with dep.http.get(f"{dep.url}/api/stream/status-page/snapshot") as resp:
        assert resp.status == 200
        body = await resp.read()
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


async def test_page_stream_changes_and_survives_a_browser_crash(
    broker: Any, tmp_path: Path
) -> None:
    page = Page()
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        async with serve(page) as port:
            hub = {"agents": ["edge-1"]}
            async with deployed(tmp_path, broker.host, broker.port, [website(port)], hub) as dep:
                await _page_case(dep, page, receiver)
    finally:
        await receiver.stop()


async def _page_case(dep: Deployment, page: Page, receiver: WebhookReceiver) -> None:
    info = await dep.wait_status("status-page", "active", timeout=60)
    assert info["source"] == "website" and info["resolution"] == "400x300"
    image = await _snapshot(dep)
    assert image.shape[:2] == (300, 400)
    b, g, r = (int(v) for v in image[10, 200])  # where the removed red banner was
    assert abs(b - 255) < 20 and abs(g - 128) < 20 and r < 20, (b, g, r)

    status, _ = await dep.send(
        "POST",
        "/api/alert-rules",
        {"name": "page changed", "events": ["page_changed"], "channels": [receiver.channel]},
    )
    assert status == 201
    page.colour = "rgb(255, 255, 0)"

    async def changed() -> bool:
        return any(r.doc["alert"]["type"] == "page_changed" for r in receiver.received)

    await eventually(changed, timeout=30)

    async def yellow() -> bool:
        b, g, r = (int(v) for v in (await _snapshot(dep))[150, 200])
        return b < 30 and g > 220 and r > 220

    await eventually(yellow, timeout=20)

    assert dep.agent is not None and dep.agent.proc is not None
    pids = _chromium_pids(dep.agent.proc.pid)
    assert pids, "no Chromium under the agent"
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    await asyncio.sleep(1)
    before = await dep.stream("status-page")
    assert before is not None

    async def recovered() -> bool:
        now = await dep.stream("status-page")
        return bool(
            now
            and now["status"] == "active"
            and now["last_frame_at"] > before["last_frame_at"]
            and _chromium_pids(dep.agent.proc.pid)  # type: ignore[union-attr]
        )

    await eventually(recovered, timeout=60)
