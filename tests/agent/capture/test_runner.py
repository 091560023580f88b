"""StreamRunner with real sources and a recording Publisher (the seam to the transport)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import cv2
import numpy as np
import pytest

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.sources.base import CapturedFrame
from glimpser.agent.sources.synthetic import SyntheticSource
from glimpser.shared.backoff import Backoff
from glimpser.shared.codec import decode_frame
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Command, Demand, FrameMeta, StreamStatus, Template
from glimpser.shared.models import TestSource as PatternSpec
from tests.agent.conftest import FakePublisher
from tests.helpers import wait_for


def _template(**extra: Any) -> Template:
    base: dict[str, Any] = {
        "id": "cam",
        "name": "Cam",
        "source": {"kind": "test", "pattern": "motion", "width": 320, "height": 240},
        "fps": 10,
        "keepalive": 0.5,
    }
    base.update(extra)
    return Template.model_validate(base)


async def test_goes_active_at_the_configured_rate(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(), "edge", publisher, state_every=0.5) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        statuses = [s.status for s in publisher.states]
        assert statuses[:3] == [StreamStatus.INACTIVE, StreamStatus.STARTING, StreamStatus.ACTIVE]
        await asyncio.sleep(2.0)
        state = runner.state
        assert 6 <= state.fps <= 12, state.fps  # measured, generous for noisy machines
        assert state.configured_fps == 10
        assert 12 <= state.frames <= 25
        assert (state.width, state.height) == (320, 240)
        assert state.last_frame_at is not None and state.started_at is not None
        # Periodic states while active, so fps / last_frame_at advance for the hub.
        assert sum(s.status is StreamStatus.ACTIVE for s in publisher.states) >= 3
    assert publisher.last.status is StreamStatus.INACTIVE


async def test_published_frames_are_jpegs_with_metadata(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(width=160, height=120), "edge", publisher):
        await wait_for(lambda: len(publisher.frames) >= 2, timeout=5)
    first, second = (decode_frame(p) for _, p in publisher.frames[:2])
    assert (first.width, first.height) == (160, 120)
    assert first.meta is not None and second.meta is not None
    assert (first.meta.seq, second.meta.seq) == (0, 1)
    assert abs(first.meta.captured_at - time.time()) < 10
    image = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (120, 160, 3)
    thumb = cv2.imdecode(np.frombuffer(publisher.snapshots[0], np.uint8), cv2.IMREAD_COLOR)
    # The retained snapshot shows the stream's own size, never the bigger native picture.
    assert thumb is not None and thumb.shape == (120, 160, 3)


async def test_idle_publishes_keepalive_frames_only(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(fps=20), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        start = time.monotonic()
        await asyncio.sleep(2.0)
        published = publisher.frames_since(start)
        captured = runner.state.frames
    assert captured >= 25  # capture keeps the template rate
    assert 2 <= published <= 6, published  # 2 s / 0.5 s keep-alive, with slack
    assert 2 <= len(publisher.snapshots) <= 7


async def test_demand_lease_raises_the_rate_then_lapses(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(fps=20), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        runner.handle_demand(Demand(hub_id="hub-a", ttl=1.0))
        start = time.monotonic()
        await wait_for(lambda: runner.state.demand, timeout=2)
        await asyncio.sleep(1.0)
        watched = publisher.frames_since(start)
        assert watched >= 12, watched  # ~20 in 1 s at 20 fps
        assert any(s.demand for s in publisher.states)
        await wait_for(lambda: not runner.state.demand, timeout=2)
        after = time.monotonic()
        await asyncio.sleep(1.5)
        assert publisher.frames_since(after) <= 4
        assert not publisher.last.demand


async def test_demand_fps_caps_the_published_rate(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(fps=20), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        runner.handle_demand(Demand(hub_id="hub-a", ttl=5, fps=5))
        start = time.monotonic()
        await asyncio.sleep(1.5)
        assert 4 <= publisher.frames_since(start) <= 11


async def test_stop_then_start(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        runner.handle_command(Command(action="stop", request_id="r-stop"))
        await wait_for(lambda: publisher.status_is(StreamStatus.INACTIVE), timeout=5)
        statuses = [s.status for s in publisher.states]
        assert StreamStatus.STOPPING in statuses
        stopped = publisher.last
        assert stopped.desired == "stopped" and stopped.request_id == "r-stop"
        frames = runner.state.frames
        await asyncio.sleep(0.5)
        assert runner.state.frames == frames, "still capturing after stop"
        runner.handle_command(Command(action="start", request_id="r-start"))
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        assert publisher.last.request_id == "r-start" and publisher.last.desired == "started"


async def test_snapshot_command_is_answered(publisher: FakePublisher) -> None:
    template = _template(fps=None, interval=30, keepalive=60)  # nothing due for a long time
    async with StreamRunner(template, "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        frames, snapshots = len(publisher.frames), len(publisher.snapshots)
        runner.handle_command(Command(action="snapshot", request_id="snap-1"))
        await wait_for(lambda: publisher.last.request_id == "snap-1", timeout=3)
        assert len(publisher.frames) == frames + 1
        assert len(publisher.snapshots) == snapshots + 1


async def test_snapshot_of_a_stopped_stream(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(enabled=False), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.INACTIVE), timeout=5)
        runner.handle_command(Command(action="snapshot", request_id="snap-2"))
        await wait_for(lambda: publisher.last.request_id == "snap-2", timeout=3)
        assert len(publisher.frames) == 1 and len(publisher.snapshots) == 1
        assert publisher.last.status is StreamStatus.INACTIVE


class FlakySource:
    """A real test pattern that fails while ``broken`` is set (a camera unplugged)."""

    broken = False

    def __init__(self) -> None:
        self._inner = SyntheticSource(PatternSpec(width=64, height=48))
        self.name = "flaky camera"

    def open(self) -> None:
        if FlakySource.broken:
            raise SourceError("cannot open flaky camera: unplugged")
        self._inner.open()

    def read(self) -> CapturedFrame:
        if FlakySource.broken:
            raise SourceError("lost flaky camera")
        return self._inner.read()

    def close(self) -> None:
        self._inner.close()


async def test_error_retry_and_recovery(
    publisher: FakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="glimpser.agent.capture.runner")
    runner = StreamRunner(
        _template(),
        "edge",
        publisher,
        source_factory=lambda _t: FlakySource(),
        backoff=Backoff(base=0.05, cap=0.1),
    )
    FlakySource.broken = False
    async with runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        FlakySource.broken = True
        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=5)
        assert publisher.last.error == "lost flaky camera"
        await asyncio.sleep(0.5)  # several retries
        FlakySource.broken = False
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        assert publisher.last.error is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    repeats = [r for r in caplog.records if r.levelno == logging.DEBUG and "still" in r.message]
    assert len(warnings) == 1 and "lost flaky camera" in warnings[0].message
    assert repeats, "retries should log quietly at DEBUG"


def _captures(publisher: FakePublisher) -> list[FrameMeta]:
    metas = [decode_frame(p).meta for _, p in publisher.captures]
    assert all(m is not None for m in metas)
    return [m for m in metas if m is not None]


async def test_interval_captures(publisher: FakePublisher) -> None:
    template = _template(fps=20, width=160, height=120, capture={"interval": 1})
    async with StreamRunner(template, "edge", publisher):
        await wait_for(lambda: len(publisher.captures) >= 3, timeout=5)
    metas = _captures(publisher)
    assert {m.reason for m in metas} == {"interval"}
    assert len({m.capture_id for m in metas}) == len(metas)
    assert [m.seq for m in metas] == list(range(len(metas)))
    times = [at for at, _ in publisher.captures]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.8 <= gap <= 1.6 for gap in gaps), gaps  # generous: 1 s on a 50 ms grid
    frame = decode_frame(publisher.captures[0][1])
    assert (frame.width, frame.height) == (160, 120)  # the template's size


async def test_snapshot_command_makes_a_manual_capture(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(), "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        assert publisher.captures == []  # no capture policy: no history
        runner.handle_command(Command(action="snapshot", request_id="snap-1"))
        await wait_for(lambda: publisher.captures, timeout=5)
        await wait_for(lambda: runner.state.request_id == "snap-1", timeout=5)
        runner.handle_command(Command(action="stop"))
        await wait_for(lambda: publisher.status_is(StreamStatus.INACTIVE), timeout=5)
        runner.handle_command(Command(action="snapshot", request_id="snap-2"))
        await wait_for(lambda: len(publisher.captures) == 2, timeout=5)
    metas = _captures(publisher)
    assert [(m.reason, m.request_id) for m in metas] == [("manual", "snap-1"), ("manual", "snap-2")]
    assert metas[0].capture_id != metas[1].capture_id


async def test_event_capture_hook(publisher: FakePublisher) -> None:
    template = _template(capture={"on_events": ["motion"]})
    async with StreamRunner(template, "edge", publisher) as runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=5)
        assert not runner.capture_event("page_changed")  # not in the policy
        assert runner.capture_event("motion")
        await wait_for(lambda: publisher.captures, timeout=5)
    assert [m.reason for m in _captures(publisher)] == ["event"]


async def test_link_up_sends_a_frame_at_the_next_capture(publisher: FakePublisher) -> None:
    async with StreamRunner(_template(keepalive=60), "edge", publisher) as runner:
        await wait_for(lambda: len(publisher.frames) == 1, timeout=5)
        await asyncio.sleep(0.3)
        assert len(publisher.frames) == 1  # keep-alive is a minute away
        runner.link_up()
        await wait_for(lambda: len(publisher.frames) == 2, timeout=2)


# Last in the file: its stuck reader thread wakes 3 s later, best after the file's work.
async def test_close_is_bounded_with_a_stuck_source(publisher: FakePublisher) -> None:
    class Stuck(FlakySource):
        def read(self) -> CapturedFrame:
            time.sleep(3)  # a blocking read in a dead connection
            return super().read()

    FlakySource.broken = False
    runner = StreamRunner(
        _template(), "edge", publisher, source_factory=lambda _t: Stuck(), close_timeout=0.3
    )
    async with runner:
        await asyncio.sleep(0.2)
        start = time.monotonic()
    assert time.monotonic() - start < 2
    assert publisher.last.status is StreamStatus.INACTIVE
