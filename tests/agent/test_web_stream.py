"""Website streams through the StreamRunner and the Agent: real Chromium, pages on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
import pytest
from aiohttp import web

from glimpser.agent.app import Agent
from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.config import AgentSettings
from glimpser.agent.sources.base import Source, build_source
from glimpser.agent.sources.browser import BrowserManager, BrowserSettings, find_chromium
from glimpser.shared.backoff import Backoff
from glimpser.shared.codec import decode_frame
from glimpser.shared.models import Demand, StreamStatus, Template
from tests.agent.conftest import FakePublisher
from tests.conftest import skip_or_fail
from tests.helpers import free_port, wait_for

COLOURS = ["#ff0000", "#00ff00", "#0000ff"]
BGR = {"#ff0000": (0, 0, 255), "#00ff00": (0, 255, 0), "#0000ff": (255, 0, 0)}
FAST = BrowserSettings(restart_base=0.2, restart_cap=1.0, close_timeout=5)


@dataclass
class Site:
    """The test server: its base URL and a gate that holds ``/hang`` until opened."""

    base: str = ""
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base + path


def _page(colour: str) -> web.Response:
    html = f"<!doctype html><body style='margin:0;background:{colour}'></body>"
    return web.Response(text=html, content_type="text/html")


@pytest.fixture
def chromium() -> str:
    """The system Chromium; skipped locally (failed on CI) when it is not installed."""
    path: str | None = find_chromium()
    if path is None:
        skip_or_fail("Chromium is not installed: apt-get install chromium")
    assert path is not None
    return path


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """``/red`` (static), ``/cycle`` (a new colour every second) and ``/hang`` on 127.0.0.1."""
    state = Site()

    async def red(request: web.Request) -> web.Response:
        return _page("#ff0000")

    async def cycle(request: web.Request) -> web.Response:
        return _page(COLOURS[int(time.time()) % 3])

    async def hang(request: web.Request) -> web.Response:
        await state.gate.wait()
        return _page("#0000ff")

    app = web.Application()
    app.router.add_get("/red", red)
    app.router.add_get("/cycle", cycle)
    app.router.add_get("/hang", hang)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        state.gate.set()
        await runner.cleanup()


@pytest.fixture
async def browsers(chromium: str) -> AsyncIterator[BrowserManager]:
    """The agent's shared browser, as the Agent owns it."""
    async with BrowserManager(FAST) as manager:
        yield manager


def web_template(url: str, **extra: Any) -> Template:
    """A small, fast website template."""
    source: dict[str, Any] = {"kind": "website", "url": url, "viewport_width": 200}
    source.update(viewport_height=200, **extra.pop("source", {}))
    base: dict[str, Any] = {"id": "page", "name": "Page", "source": source, "fps": 5}
    base["keepalive"] = 1
    base.update(extra)
    return Template.model_validate(base)


def web_runner(tpl: Template, publisher: FakePublisher, browsers: BrowserManager) -> StreamRunner:
    """A runner that builds its source the way the Agent does."""

    def factory(template: Template) -> Source:
        return build_source(template, browsers)

    backoff = Backoff(base=0.2, cap=0.5)
    return StreamRunner(tpl, "edge", publisher, source_factory=factory, backoff=backoff)


def centre(jpeg: bytes) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """(width, height) of a JPEG and its centre pixel (BGR)."""
    image = np.asarray(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), np.uint8)
    height, width = image.shape[:2]
    b, g, r = (int(c) for c in image[height // 2, width // 2])
    return (width, height), (b, g, r)


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour, strict=True))


# ---------------------------------------------------------------- through the runner


async def test_page_becomes_an_active_stream_at_the_template_size(
    site: Site, browsers: BrowserManager, publisher: FakePublisher
) -> None:
    tpl = web_template(site.url("/red"), width=120, height=90)
    async with web_runner(tpl, publisher, browsers) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
        await wait_for(lambda: publisher.frames and publisher.snapshots, timeout=10)
        assert (runner.state.width, runner.state.height) == (120, 90)
    frame = decode_frame(publisher.frames[0][1])
    size, pixel = centre(frame.jpeg)
    assert size == (120, 90) and near(pixel, BGR["#ff0000"])
    size, pixel = centre(publisher.snapshots[0])  # the snapshot follows the stream's size
    assert size == (120, 90) and near(pixel, BGR["#ff0000"])
    assert publisher.last.source == "website"


async def test_static_page_sends_only_keepalives_even_when_watched(
    site: Site, browsers: BrowserManager, publisher: FakePublisher
) -> None:
    async with web_runner(web_template(site.url("/red")), publisher, browsers) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
        runner.handle_demand(Demand(hub_id="hub", ttl=30))
        start, captured = time.monotonic(), runner.state.frames
        await asyncio.sleep(3.2)
        shots = runner.state.frames - captured
        sent = publisher.frames_since(start)
    assert shots >= 8  # the page was screenshotted all along...
    assert 2 <= sent <= 5, sent  # ...but sent only at the 1 s keep-alive
    assert [e for e in publisher.events if e.type == "page_changed"] == []


async def test_changing_page_emits_page_changed_with_a_capture(
    site: Site, browsers: BrowserManager, publisher: FakePublisher
) -> None:
    tpl = web_template(site.url("/cycle"), keepalive=30, capture={"on_events": ["page_changed"]})
    async with web_runner(tpl, publisher, browsers):
        await wait_for(lambda: len(publisher.events) >= 2, timeout=15)
    changes = [e for e in publisher.events if e.type == "page_changed"]
    assert len(changes) >= 2
    assert all(float(e.data["fraction"] or 0) > 0.9 for e in changes)
    metas = [decode_frame(p).meta for _, p in publisher.captures]
    captures = {m.capture_id for m in metas if m is not None}
    assert {e.data["capture_id"] for e in changes} <= captures
    # Each change went out as a frame at once, though no viewer watches and the keep-alive is long.
    assert len(publisher.frames) >= len(changes)
    colours = {centre(decode_frame(p).jpeg)[1] for _, p in publisher.frames[1:]}
    assert len(colours) >= 2


async def test_page_that_never_loads_is_an_error_until_it_does(
    site: Site, browsers: BrowserManager, publisher: FakePublisher
) -> None:
    tpl = web_template(site.url("/hang"), source={"timeout": 1})
    async with web_runner(tpl, publisher, browsers):
        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=20)
        error = publisher.last.error or ""
        assert "timed out after 1 s" in error and "/hang" in error, error
        site.gate.set()
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
        assert publisher.last.error is None
        await wait_for(lambda: publisher.frames, timeout=10)


async def test_killed_chromium_recovers_by_itself(
    site: Site, browsers: BrowserManager, publisher: FakePublisher
) -> None:
    async with web_runner(web_template(site.url("/red")), publisher, browsers) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
        pid = browsers.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed, frames = time.monotonic(), runner.state.frames
        await wait_for(lambda: browsers.pid not in (None, pid), timeout=20)
        await wait_for(lambda: runner.state.frames >= frames + 5, timeout=20)
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=10)
        assert publisher.frames_since(killed) >= 1
        assert browsers.health().launches == 2


# ---------------------------------------------------------------- through the Agent


def _chromium_descendants() -> set[int]:
    pids: set[int] = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "chrom" in proc.name():
                pids.add(proc.pid)
        except psutil.Error:
            continue
    return pids


async def test_agent_runs_a_website_and_leaves_no_chromium(
    site: Site, chromium: str, tmp_path: Path
) -> None:
    settings = AgentSettings.model_validate(
        {
            "agent_id": "edge",
            # No broker listens there: streams run anyway, the link retries in the background.
            "broker": {"host": "127.0.0.1", "port": free_port()},
            "data_dir": str(tmp_path),
            "browser": {"executable_path": chromium, "close_timeout": 5},
            "templates": [web_template(site.url("/red")).model_dump()],
        }
    )
    async with Agent(settings) as agent:
        runner = agent.runners["page"]
        await wait_for(lambda: runner.state.status is StreamStatus.ACTIVE, timeout=20)
        await wait_for(lambda: runner.state.frames >= 2, timeout=10)
        health = agent.browsers.health()
        assert health.running and health.executable == chromium and health.contexts == 1
        tree = {p.pid for p in agent.browsers.processes()}
        assert tree and tree <= _chromium_descendants()
    assert not any(psutil.pid_exists(pid) and _alive(pid) for pid in tree)
    assert _chromium_descendants() == set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
