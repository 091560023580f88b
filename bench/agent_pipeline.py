#!/usr/bin/env python3
"""Agent pipeline CPU (DESIGN §7): one real StreamRunner, 1280x720 at 10 fps, motion detection on.

The synthetic ``motion`` pattern (an object always crossing a static scene) stands in for the
camera; a publisher that discards everything stands in for MQTT, so only the agent's own work
is measured. Two phases of ``--seconds`` each: no viewer (keep-alive frames only), then with a
demand lease (every capture encoded and published). CPU is this process's user+system time
(every thread) over wall time, as % of one core. Per-frame costs are timed separately on the
same frames, one stage at a time, on the calling thread.

    python bench/agent_pipeline.py [--seconds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import cv2

from glimpser.agent.capture.motion import MotionDetector
from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.encode.jpeg import encode, thumbnail
from glimpser.agent.sources.synthetic import SyntheticSource
from glimpser.shared.models import Demand, Event, StreamState, Template, TestSource

WIDTH, HEIGHT, FPS = 1280, 720, 10


class Discard:
    """A Publisher that drops everything and counts frames."""

    def __init__(self) -> None:
        self.frames = 0
        self.events = 0

    def publish_frame(self, stream_id: str, payload: bytes) -> None:
        self.frames += 1

    def publish_capture(self, stream_id: str, payload: bytes) -> None:
        pass

    def publish_snapshot(self, stream_id: str, jpeg: bytes) -> None:
        pass

    def publish_stream_state(self, state: StreamState) -> None:
        pass

    def publish_event(self, event: Event) -> None:
        self.events += 1

    def publish_motion(self, stream_id: str, motion: bool) -> None:
        pass


def template() -> Template:
    """The DESIGN §7 stream: 1280x720 test pattern at 10 fps with motion detection."""
    source = {"kind": "test", "pattern": "motion", "width": WIDTH, "height": HEIGHT}
    return Template.model_validate(
        {"id": "bench", "name": "Bench", "source": source, "fps": FPS, "motion": {}}
    )


def cpu() -> float:
    """CPU seconds of this process, every thread."""
    return time.process_time()


async def phase(runner: StreamRunner, out: Discard, seconds: float, watched: bool) -> None:
    """Run one phase and print its CPU share and rates."""
    if watched:
        runner.handle_demand(Demand(hub_id="bench", ttl=seconds + 5))
    frames0, published0 = runner.state.frames, out.frames
    wall0, cpu0 = time.monotonic(), cpu()
    await asyncio.sleep(seconds)
    wall, used = time.monotonic() - wall0, cpu() - cpu0
    captured, published = runner.state.frames - frames0, out.frames - published0
    label = "with a viewer" if watched else "no viewer"
    print(
        f"{label:14} CPU {100 * used / wall:5.1f} % of one core | captured {captured / wall:4.1f} "
        f"fps | published {published / wall:4.1f} fps | {1000 * used / max(1, captured):5.2f} ms "
        f"CPU per captured frame"
    )


def per_stage(count: int = 100) -> None:
    """Median CPU ms of each stage on the same frames, one stage at a time."""
    tpl = template()
    assert tpl.motion is not None
    assert isinstance(tpl.source, TestSource)
    source = SyntheticSource(tpl.source)
    source.open()
    frames = [source.read() for _ in range(count)]
    images = [f.image for f in frames if f.image is not None]
    detector = MotionDetector(tpl.motion)
    stages: dict[str, Callable[[int], object]] = {
        "source read (synthetic render)": lambda i: source.read(),
        "motion update (BGR -> 213x120 grey)": lambda i: detector.update(images[i]),
        "JPEG encode 1280x720 q80": lambda i: encode(frames[i], None, tpl.quality),
        "thumbnail 640x360": lambda i: thumbnail(frames[i]),
    }
    for name, fn in stages.items():
        costs = []
        for i in range(count):
            t0 = cpu()
            fn(i)
            costs.append(1000 * (cpu() - t0))
        print(f"  {name:38} {statistics.median(costs):6.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (agent: 1)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    print(
        f"agent pipeline {WIDTH}x{HEIGHT} @ {FPS} fps, motion on, OpenCV {cv2.__version__} "
        f"threads {cv2.getNumThreads()}, {args.seconds:g} s per phase"
    )
    out = Discard()
    async with StreamRunner(template(), "bench", out) as runner:
        await asyncio.sleep(2.0)  # warm up: first frames, background seeded
        await phase(runner, out, args.seconds, watched=False)
        await phase(runner, out, args.seconds, watched=True)
    print(f"motion events: {out.events}")
    print("per-frame CPU by stage (median):")
    per_stage()


if __name__ == "__main__":
    asyncio.run(main())
