"""Motion detection through the StreamRunner: scripted scenes, a recording Publisher."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import cv2
import numpy as np
import pytest

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.sources.base import CapturedFrame
from glimpser.shared.codec import decode_frame
from glimpser.shared.models import Command, Demand, Event, StreamStatus, Template
from tests.agent.conftest import FakePublisher
from tests.helpers import wait_for

WIDTH, HEIGHT = 320, 240


class Scene:
    """A static textured scene; the test moves a block through it, adds noise or light."""

    def __init__(self, noise: float = 0.0) -> None:
        rng = np.random.default_rng(7)
        coarse = rng.integers(40, 150, (HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8)
        scene = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        self._base = np.asarray(scene, dtype=np.int16)
        self._rng = rng
        self._noise = noise
        self.moving = False
        self.brightness = 0
        self.reads = 0

    @property
    def name(self) -> str:
        return "scripted scene"

    def open(self) -> None:
        pass

    def read(self) -> CapturedFrame:
        self.reads += 1
        image = self._base + self.brightness
        if self._noise:
            image += self._rng.normal(0, self._noise, image.shape).astype(np.int16)
        frame = np.clip(image, 0, 255).astype(np.uint8)
        if self.moving:  # a 40x60 block walking right, 8 px a frame
            x = (self.reads * 8) % (WIDTH - 40)
            frame[90:150, x : x + 40] = (20, 20, 230)
        return CapturedFrame.from_image(frame)

    def close(self) -> None:
        pass


def _template(**extra: Any) -> Template:
    base: dict[str, Any] = {
        "id": "yard",
        "name": "Yard",
        "source": {"kind": "test", "width": WIDTH, "height": HEIGHT},
        "fps": 20,
        "keepalive": 5,
        "motion": {"off_delay": 0.4, "min_frames": 3},
    }
    base.update(extra)
    return Template.model_validate(base)


def _motion_events(publisher: FakePublisher) -> list[Event]:
    return [e for e in publisher.events if e.type == "motion"]


async def test_motion_on_then_off_with_events_and_an_event_capture(
    publisher: FakePublisher,
) -> None:
    scene = Scene(noise=3)
    tpl = _template(capture={"on_events": ["motion"]})
    async with StreamRunner(tpl, "edge", publisher, source_factory=lambda _t: scene) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        await asyncio.sleep(0.3)  # a quiet background first
        assert publisher.motion == [False]  # announced at start, retained for HA
        frames_before = len(publisher.frames)
        scene.moving = True
        await wait_for(lambda: publisher.motion[-1], timeout=5)
        assert runner.events.motion
        await asyncio.sleep(0.5)
        scene.moving = False
        await wait_for(lambda: not publisher.motion[-1], timeout=5)
        assert publisher.motion == [False, True, False]
        # No viewer: motion ran at the capture rate, yet only the motion frame went out.
        assert runner.state.frames >= 20
        assert len(publisher.frames) - frames_before == 1
    start, end = _motion_events(publisher)
    assert start.data["phase"] == "start" and end.data["phase"] == "end"
    assert 0 < float(start.data["fraction"] or 0) < 0.5
    assert float(end.data["peak_fraction"] or 0) >= float(start.data["fraction"] or 0)
    assert 0.4 <= float(end.data["duration"] or 0) < 5
    assert end.data["start_id"] == start.id
    assert start.data["capture_id"] == end.data["capture_id"]
    (capture,) = [decode_frame(p) for _, p in publisher.captures]
    assert capture.meta is not None and capture.meta.reason == "event"
    assert capture.meta.capture_id == start.data["capture_id"]


async def test_no_capture_id_when_the_policy_keeps_none(publisher: FakePublisher) -> None:
    scene = Scene()
    async with StreamRunner(_template(), "edge", publisher, source_factory=lambda _t: scene):
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        scene.moving = True
        await wait_for(lambda: publisher.motion[-1], timeout=5)
    (start, end) = _motion_events(publisher)
    assert "capture_id" not in start.data and publisher.captures == []
    # Stopping mid-episode ends it: nobody is left with a stale ON.
    assert end.data["interrupted"] == "stream stopped" and publisher.motion[-1] is False


async def test_noise_and_a_light_change_are_not_motion(
    publisher: FakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="glimpser.agent.capture.events")
    scene = Scene(noise=6)
    tpl = _template(capture={"on_events": ["motion"]})
    async with StreamRunner(tpl, "edge", publisher, source_factory=lambda _t: scene) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        await asyncio.sleep(0.8)
        scene.brightness = 90  # the lights go on
        await asyncio.sleep(0.8)
        scene.brightness = 0  # and off again
        await asyncio.sleep(0.8)
        assert runner.state.frames >= 30
    assert _motion_events(publisher) == [] and publisher.captures == []
    assert publisher.motion == [False]
    assert any("background reset" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "background" in r.message)


async def test_motion_runs_the_same_while_watched(publisher: FakePublisher) -> None:
    scene = Scene()
    async with StreamRunner(_template(), "edge", publisher, source_factory=lambda _t: scene) as r:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        r.handle_demand(Demand(hub_id="hub", ttl=30))
        scene.moving = True
        await wait_for(lambda: publisher.motion[-1], timeout=5)
        scene.moving = False
        await wait_for(lambda: not publisher.motion[-1], timeout=5)
        assert len(publisher.frames) >= 10  # full rate for the viewer meanwhile
        r.handle_command(Command(action="stop"))
        await wait_for(lambda: publisher.status_is(StreamStatus.INACTIVE), timeout=5)
    assert [e.data["phase"] for e in _motion_events(publisher)] == ["start", "end"]
